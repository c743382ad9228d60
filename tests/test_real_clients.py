"""Real, independent peers: ``socat`` against ``xsock echo-server``, ``curl`` against HTTP.

These prove that what xsock_green puts on the wire is what other programs
expect, with no xsock_green code on the other side.  Each test is skipped,
with the reason, only when its tool is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli import XSOCK, Child

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

needs_socat = pytest.mark.skipif(
    shutil.which("socat") is None, reason="socat is not installed (apt-get install socat)"
)
needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)


@needs_socat
@pytest.mark.parametrize("transport", ["tcp", "udp", "unix"])
def test_socat_talks_to_xsock_echo_server(transport: str, short_tmp: str) -> None:
    where = os.path.join(short_tmp, "s.sock") if transport == "unix" else "127.0.0.1:0"
    with Child([*XSOCK, "echo-server", f"--{transport}", where, "-v"]) as server:
        if transport == "unix":
            server.wait_for(r"^listening on unix ")
            address = f"UNIX-CONNECT:{where}"
        else:
            address = f"{transport.upper()}:127.0.0.1:{server.port()}"
        # socat's stdin stays open, so it keeps its connection (or its UDP
        # socket) until the test has read both echoes.
        with Child(["socat", "-", address], stdin=subprocess.PIPE) as socat:
            for text in ("hello from socat", "second line"):
                socat.write(text.encode() + b"\n")
                assert socat.readline() == text
            socat.close_stdin()
            if transport != "udp":  # end of input ends a stream; UDP has no end
                status, rest, err = socat.finish()
                assert (status, rest, err) == (0, "", "")
        server.proc.terminate()
        status, _rest, err = server.finish()
    assert status == 0
    assert "Traceback" not in err
    if transport == "udp":
        assert err.count("datagram of ") == 2
    else:
        assert "connection 1 from " in err
        assert "connection 1 closed after 29 bytes" in err


@needs_socat
def test_socat_talks_to_xsock_echo_server_with_two_workers() -> None:
    with Child([*XSOCK, "echo-server", "--tcp", "127.0.0.1:0", "--workers", "2", "-v"]) as server:
        port = server.port()
        for i in range(24):
            line = f"hello worker, this is socat {i}\n".encode()
            done = subprocess.run(
                ["socat", "-", f"TCP:127.0.0.1:{port}"], input=line, capture_output=True, timeout=10
            )
            assert (done.returncode, done.stdout, done.stderr) == (0, line, b"")
        server.proc.terminate()
        status, rest, err = server.finish()
    assert (status, rest) == (0, "")
    assert "Traceback" not in err
    assert err.endswith("echo-server: stopped by SIGTERM\n")
    # Each worker numbers its own connections: two "connection 1" lines, two workers served.
    assert err.count("connection 1 from 127.0.0.1:") == 2, err
    assert err.count(" closed after ") == 24


@needs_curl
def test_curl_fetches_from_the_http_example() -> None:
    with Child([sys.executable, str(EXAMPLES / "http_server.py"), "--count", "2"]) as server:
        port = server.port()
        done = subprocess.run(
            [
                "curl",
                *("--silent", "--show-error", "--max-time", "10"),
                *("--write-out", r"\n[%{http_code} %{num_connects}]\n"),
                f"http://127.0.0.1:{port}/",
                f"http://127.0.0.1:{port}/hello",
            ],
            capture_output=True,
            timeout=20,
        )
        status, _rest, err = server.finish()
    assert (done.returncode, done.stderr) == (0, b"")
    out = done.stdout.decode()
    page, hello = out.split("[200 1]\n")
    assert "<h1>Hello from xsock_green" in page
    # The second page came over the same, persistent connection.
    assert hello == "hello from xsock_green\n\n[200 0]\n"
    assert (status, err) == (0, "")
