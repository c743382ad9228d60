"""Scale: one process holds 10,000 concurrent loopback connections.

The server process (``scripts/scale.py``) serves 10,000 connections that a
second process opens to it, so each needs 10,000 descriptors and more; both
raise their soft ``RLIMIT_NOFILE`` to the hard limit.  Where the hard limit
is lower than that, the test runs with as many connections as fit (and says
so); below 5,000 it skips.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "scale.py")
TARGET = 10_000
#: Descriptors the interpreter, the hub and the listener need besides the connections.
OVERHEAD = 64
#: Resident memory per served connection (a socket, its greenlet) we call reasonable.
MAX_PER_CONNECTION = 32 * 1024


@pytest.mark.hang_limit(90)
def test_ten_thousand_concurrent_connections() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = TARGET + OVERHEAD
    count = min(TARGET, hard - OVERHEAD)
    if count < TARGET // 2:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} allows only {count} connections")
    proc = subprocess.run(
        [sys.executable, SCRIPT, str(count)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    note = "" if count == TARGET else f" (hard RLIMIT_NOFILE {hard}: {TARGET} do not fit)"
    print(
        f"{result['connections']} concurrent connections{note}: {result['seconds']} s, "
        f"{result['rss_per_connection']} bytes of RSS per connection"
    )
    assert result["connections"] == count
    assert result["fds_after"] == result["fds_before"] - 1  # the listener is closed
    # (fds_before counts the listener, opened before the measurement)
    assert result["watchers_after"] == result["watchers_before"]
    assert 0 < result["rss_per_connection"] < MAX_PER_CONNECTION
    assert result["seconds"] < 30
