"""Real, independent peers: ``socat`` against ``xsock echo-server`` and the chat
example, ``curl`` against HTTP, ``redis-cli`` against the Redis example.

These prove that what xsock_green puts on the wire is what other programs
expect, with no xsock_green code on the other side.  Each test is skipped,
with the reason, only when its tool is missing (``.ci/run`` installs both).
"""

from __future__ import annotations

import os
import shutil
import signal
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
needs_redis_cli = pytest.mark.skipif(
    shutil.which("redis-cli") is None,
    reason="redis-cli is not installed (apt-get install redis-tools)",
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


@needs_socat
def test_socat_clients_chat_through_the_chat_example() -> None:
    with Child([sys.executable, str(EXAMPLES / "chat_server.py")]) as server:
        address = f"TCP:127.0.0.1:{server.port()}"
        with Child(["socat", "-", address], stdin=subprocess.PIPE) as alice:
            # Bob starts once Alice is in, so that the numbers are known.
            assert alice.readline() == "* welcome, client 1; 0 other(s) here"
            with Child(["socat", "-", address], stdin=subprocess.PIPE) as bob:
                assert alice.readline() == "* client 2 joined"  # bob is connected now
                assert bob.readline() == "* welcome, client 2; 1 other(s) here"
                bob.write(b"hello from socat\n")
                assert alice.readline() == "client 2: hello from socat"
                alice.write(b"hi bob\n")
                assert bob.readline() == "client 1: hi bob"
                bob.close_stdin()  # socat half-closes; the server sees bob leave
                assert alice.readline() == "* client 2 left"
                assert bob.finish() == (0, "", "")
            server.proc.send_signal(signal.SIGTERM)
            assert alice.readline() == "* server shutting down"
            alice.close_stdin()
            assert alice.finish() == (0, "", "")
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    assert out.endswith(
        "client 2 left\nstopped by SIGTERM\nchat server stopped after 2 client(s)\n"
    )


@needs_redis_cli
def test_redis_cli_talks_to_the_redis_example() -> None:
    with Child([sys.executable, str(EXAMPLES / "redis_server.py"), "--count", "7"]) as server:
        port = str(server.port())

        def cli(*args: str, input: bytes | None = None) -> str:
            done = subprocess.run(
                ["redis-cli", "-h", "127.0.0.1", "-p", port, *args],
                input=input,
                capture_output=True,
                timeout=20,
            )
            assert (done.returncode, done.stderr) == (0, b""), done
            return done.stdout.decode()

        assert cli("PING") == "PONG\n"
        assert cli("SET", "greeting", "hello world") == "OK\n"
        assert cli("GET", "greeting") == "hello world\n"
        assert cli("INCR", "visits") == "1\n"
        # Mass insertion: 2,000 RESP commands in one stream, replies counted.
        commands = b"".join(
            b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\nv\r\n" % (len(k), k)
            for k in (b"key:%d" % i for i in range(2000))
        )
        piped = cli("--pipe", input=commands)
        assert "errors: 0, replies: 2000" in piped, piped
        assert cli("DBSIZE") == "2002\n"
        assert cli("GET", "key:1999") == "v\n"
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "redis server stopped: 2002 key(s)"
