"""SPEC sections 1-2: xsock_green in monkey-patched legacy programs.

Patching is process-wide, so every scenario runs in its own interpreter
(``scripts/legacy.py``): patch_all() before importing xsock_green and after
it; an xsock_green server serving standard-library clients in patched
threads; xsock_green clients of a ``socketserver`` server.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "legacy.py")


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("scenario", ["echo", "threads", "socketserver"])
def test_legacy_program_under_patch_all(scenario: str, when: str) -> None:
    proc = subprocess.run(
        [sys.executable, SCRIPT, scenario, when],
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.returncode == 0, report
    assert proc.stdout.startswith("OK "), report
    assert "Traceback" not in proc.stderr, report
    print(proc.stdout.strip())


def test_import_never_patches() -> None:
    code = (
        "import gevent.monkey, xsock_green, xsock_green.socket;"
        "assert not gevent.monkey.is_anything_patched();"
        "import socket, _socket; assert socket.socket.__module__ == 'socket';"
        "print('clean')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "clean"), proc.stderr
