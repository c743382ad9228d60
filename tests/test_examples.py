"""Every script in examples/ runs as a user runs it, and says what it should.

Servers listen on port 0 and print the port; the test reads it and points the
matching client (another example, or the standard library) at it.  Servers
end by themselves thanks to ``--count``; the status of every process is
checked.
"""

from __future__ import annotations

import ast
import hashlib
import http.client
import os
import re
import signal
import socket as std_socket
import sys
import threading
from pathlib import Path

import pytest
from test_cli import Child

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PY = sys.executable

#: Every example and the test that runs it; a new example needs a line here.
COVERED = {
    "tcp_echo_server.py": "test_tcp_echo_server_and_client",
    "tcp_echo_client.py": "test_tcp_echo_server_and_client",
    "udp_echo_server.py": "test_udp_echo_server_and_client",
    "udp_echo_client.py": "test_udp_echo_server_and_client",
    "unix_echo.py": "test_unix_echo",
    "wait_accept.py": "test_wait_accept",
    "concurrent_echo.py": "test_concurrent_echo",
    "file_server.py": "test_file_server_and_client",
    "file_client.py": "test_file_server_and_client",
    "http_server.py": "test_http_server",
    "monkey_mix.py": "test_monkey_mix",
    "chat_server.py": "test_chat_server",
    "redis_server.py": "test_redis_server",
}


def example(name: str, *args: str) -> list[str]:
    return [PY, str(EXAMPLES / name), *args]


def test_every_example_is_covered_and_documented() -> None:
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py"))
    assert scripts == sorted(COVERED)
    for name in scripts:
        assert COVERED[name] in globals(), COVERED[name]
        source = (EXAMPLES / name).read_text()
        doc = ast.get_docstring(ast.parse(source)) or ""
        assert "Try it" in doc and f"python examples/{name}" in doc, name
        assert '"--count"' in source, f"{name} has no --count"
        if name != "unix_echo.py":  # unix paths have no host or port
            assert '"--host", default="127.0.0.1"' in source, name
            assert '"--port"' in source, name


def test_seed_ports_quote_their_lua_original() -> None:
    for name, lua in [
        ("tcp_echo_server.py", 'local server = socket.bind("127.0.0.1", 9091)'),
        ("tcp_echo_client.py", 'local sock = socket.connect("127.0.0.1", 9091)'),
        ("udp_echo_server.py", "sock:recvfrom(buff, 8192, {block = true})"),
        ("udp_echo_client.py", 'sock:sendto("hello", "127.0.0.1", 9091)'),
        ("unix_echo.py", 'socket.bind_unix("/tmp/my.sock")'),
        ("wait_accept.py", "server:wait(socket.EV_ACPT, 5000)"),
    ]:
        doc = ast.get_docstring(ast.parse((EXAMPLES / name).read_text())) or ""
        assert lua in doc, name


def test_tcp_echo_server_and_client() -> None:
    with Child(example("tcp_echo_server.py", "--count", "1")) as server:
        port = str(server.port())
        assert server.lines == [f"Server listening on 127.0.0.1:{port}"]
        with Child(example("tcp_echo_client.py", "--port", port, "--count", "5")) as client:
            assert client.finish() == (
                0,
                "Connected to server\nSent successfully, count: 5\n",
                "",
            )
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "Client connected"
    received = "".join(line.removeprefix("Received: ") for line in lines[1:])
    assert all(line.startswith("Received: ") for line in lines[1:])
    assert received == "hello world.." * 5


def test_udp_echo_server_and_client() -> None:
    with Child(example("udp_echo_server.py", "--count", "3")) as server:
        port = server.port()
        with Child(example("udp_echo_client.py", "--port", str(port), "--count", "3")) as client:
            status, out, err = client.finish()
            assert (status, err) == (0, "")
            echoes = out.splitlines()
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    assert [line.split(" from ")[0] for line in echoes] == [
        f"Echo {i}: hello udp {i}" for i in (1, 2, 3)
    ]
    assert all(line.endswith(f" from 127.0.0.1:{port}") for line in echoes)
    got = [line for line in out.splitlines() if line.startswith("Received")]
    assert len(got) == 3
    assert re.fullmatch(r"Received 11 bytes from 127\.0\.0\.1:\d+: hello udp 1", got[0])
    assert out.count("Waiting to receive data...") == 3


def test_unix_echo() -> None:
    with Child(example("unix_echo.py", "--count", "4")) as child:
        status, out, err = child.finish()
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith("Server listening on /")
    path = lines[0].removeprefix("Server listening on ")
    assert lines[1:] == [f"Received: hello unix {i}" for i in range(1, 5)] + [
        "unix echo: 4 messages echoed"
    ]
    assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))


def test_wait_accept() -> None:
    with Child(example("wait_accept.py", "--count", "1", "--timeout", "200")) as server:
        port = server.port()
        # Nobody connects at first: the 200 ms wait times out and says so.
        server.wait_for(r"^no client within 200 ms$", timeout=10)
        with Child(example("tcp_echo_client.py", "--port", str(port), "--count", "3")) as client:
            assert client.finish()[0] == 0
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    assert "Client connected\n" in out
    assert out.endswith("Client done: 39 bytes echoed\n")


def test_concurrent_echo() -> None:
    with Child(example("concurrent_echo.py", "--clients", "20", "--count", "25")) as child:
        port = child.port()
        status, out, err = child.finish(30)
    assert port > 0
    assert (status, err) == (0, "")
    assert re.fullmatch(r"20 clients x 25 messages: 500 echoes correct in \d+\.\d\d s\n", out)


def test_file_server_and_client(tmp_path: Path) -> None:
    payload = os.urandom(1_500_000)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    copy = tmp_path / "copy.bin"
    with Child(example("file_server.py", "--count", "2", "--file", str(source))) as server:
        port = str(server.port())
        assert server.readline() == f"Serving {source}: 1500000 bytes, sha256 {digest}"
        args = ("--port", port, "--count", "2", "--output", str(copy))
        with Child(example("file_client.py", *args)) as client:
            status, out, err = client.finish(30)
        assert (status, err) == (0, "")
        assert out == f"Received 1500000 bytes, sha256 {digest}\n" * 2
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    sent = out.splitlines()
    assert len(sent) == 2
    assert all(re.fullmatch(r"Sent 1500000 bytes to 127\.0\.0\.1:\d+", line) for line in sent)
    assert copy.read_bytes() == payload


def test_http_server() -> None:
    with Child(example("http_server.py", "--count", "3")) as server:
        port = server.port()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", "/")
            page = conn.getresponse()
            body = page.read().decode()
            assert page.status == 200
            assert page.getheader("Content-Type") == "text/html; charset=utf-8"
            assert "<h1>Hello from xsock_green" in body
            assert page.getheader("Connection") == "keep-alive"
            conn.request("HEAD", "/hello")
            head = conn.getresponse()
            assert head.read() == b""
            assert (head.status, head.getheader("Content-Length")) == (200, "23")
            conn.request("GET", "/missing")
            missing = conn.getresponse()
            assert (missing.status, missing.read()) == (404, b"no page at /missing\n")
            # The third request was the last one --count allows.
            assert missing.getheader("Connection") == "close"
        finally:
            conn.close()
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    log = [line.split(" ", 1)[1] for line in out.splitlines()]
    assert log == [
        f'"GET / HTTP/1.1" 200 {len(body.encode())}',
        '"HEAD /hello HTTP/1.1" 200 23',
        '"GET /missing HTTP/1.1" 404 20',
    ]


def test_monkey_mix() -> None:
    with Child(example("monkey_mix.py", "--clients", "3", "--count", "10")) as child:
        status, out, err = child.finish(30)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "standard socket patched by gevent: True"
    assert re.fullmatch(r"std server listening on 127\.0\.0\.1:\d+", lines[1])
    assert re.fullmatch(r"xsock server listening on 127\.0\.0\.1:\d+", lines[2])
    assert lines[3:] == [
        "xsock -> std: 30 echoes correct",
        "std -> xsock: 30 echoes correct",
        "all echoes correct",
    ]


@pytest.mark.parametrize("name", ["tcp_echo_client.py", "udp_echo_client.py"])
def test_clients_fail_cleanly_without_a_server(name: str) -> None:
    kind = std_socket.SOCK_STREAM if name.startswith("tcp") else std_socket.SOCK_DGRAM
    with std_socket.socket(std_socket.AF_INET, kind) as quiet:
        quiet.bind(("127.0.0.1", 0))
        port = str(quiet.getsockname()[1])
        args = ["--port", port] + (["--count", "1", "--timeout", "200"] if "udp" in name else [])
        with Child(example(name, *args)) as client:
            status, out, err = client.finish()
    assert (status, out) == (1, "")
    assert "Traceback" not in err and len(err.splitlines()) == 1


def _connect(port: int, rcvbuf: int | None = None) -> std_socket.socket:
    sock = std_socket.socket(std_socket.AF_INET, std_socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so the window starts small
        sock.setsockopt(std_socket.SOL_SOCKET, std_socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    return sock


def test_chat_server() -> None:
    """Broadcast reaches the readers; one that never reads is dropped; SIGTERM stops it."""
    with Child(example("chat_server.py", "--queue", "20")) as server:
        port = server.port()
        watcher = _connect(port)
        slow = _connect(port, rcvbuf=4096)
        flooder = _connect(port)
        collector: threading.Thread | None = None
        try:
            watched = watcher.makefile("rb")
            assert watched.readline() == b"* welcome, client 1; 0 other(s) here\n"
            assert watched.readline() == b"* client 2 joined\n"
            assert watched.readline() == b"* client 3 joined\n"
            assert flooder.makefile("rb").readline() == b"* welcome, client 3; 2 other(s) here\n"
            for number in (1, 2, 3):
                assert server.readline().startswith(f"client {number} joined from 127.0.0.1:")
            # The watcher reads while the flooder sends 800 KB that the slow client
            # never reads: the slow one's queue fills and it is dropped.
            lines = [b"%04d " % i + b"x" * 994 + b"\n" for i in range(800)]
            got: list[bytes] = []

            def collect() -> None:
                while True:
                    line = watched.readline()
                    got.append(line)
                    if not line or line == b"client 3: done\n":
                        return

            collector = threading.Thread(target=collect, daemon=True)
            collector.start()
            flooder.sendall(b"".join(lines) + b"done\n")
            collector.join(timeout=30)
            assert not collector.is_alive(), "the watcher did not get every line"
            assert server.readline() == "client 2 dropped: 20 messages waiting"
            assert b"* client 2 dropped (too slow)\n" in got
            got.remove(b"* client 2 dropped (too slow)\n")
            assert got == [b"client 3: " + line for line in [*lines, b"done\n"]]
            server.proc.send_signal(signal.SIGTERM)
            assert watched.readline() == b"* server shutting down\n"
            assert watched.readline() == b""  # then the server closes the connection
            status, out, err = server.finish()
        finally:
            if collector is not None:
                watcher.shutdown(std_socket.SHUT_RDWR)
                collector.join(timeout=5)
            for sock in (watcher, slow, flooder):
                sock.close()
    assert (status, err) == (0, "")
    assert out == "stopped by SIGTERM\nchat server stopped after 3 client(s)\n"


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_redis_server() -> None:
    """RESP commands, pipelined in one send and split byte by byte, and inline ones."""
    with Child(example("redis_server.py", "--count", "2")) as server:
        port = server.port()
        value = b"binary\r\nsafe\x00value"
        requests = b"".join(
            [
                _resp(b"SET", b"key", value),
                _resp(b"GET", b"key"),
                _resp(b"INCR", b"n"),
                _resp(b"incr", b"n"),
                b"PING\r\n",  # inline, as typed into socat
                _resp(b"GET", b"missing"),
                _resp(b"EXISTS", b"key", b"n", b"nope"),
                _resp(b"NOPE"),
                _resp(b"GET"),
                _resp(b"QUIT"),
            ]
        )
        expected = b"".join(
            [
                b"+OK\r\n",
                b"$%d\r\n%s\r\n" % (len(value), value),
                b":1\r\n",
                b":2\r\n",
                b"+PONG\r\n",
                b"$-1\r\n",
                b":2\r\n",
                b"-ERR unknown command 'NOPE', with args beginning with: \r\n",
                b"-ERR wrong number of arguments for 'get' command\r\n",
                b"+OK\r\n",
            ]
        )
        with _connect(port) as pipelined:
            pipelined.sendall(requests)
            assert pipelined.makefile("rb").read() == expected  # read to end of stream
        with _connect(port) as trickle:
            trickle.setsockopt(std_socket.IPPROTO_TCP, std_socket.TCP_NODELAY, 1)
            for i in range(len(requests)):
                trickle.sendall(requests[i : i + 1])
            assert trickle.makefile("rb").read() == expected.replace(b":1\r\n:2", b":3\r\n:4")
        status, out, err = server.finish()
    assert (status, err) == (0, "")
    assert out.splitlines()[-1] == "redis server stopped: 2 key(s)"
