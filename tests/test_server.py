"""SPEC section 8 in one process: ``server.start``, ``start_unix``, ``start_udp``.

The servers run in this process's hub; their clients are xsock_green sockets
in greenlets (or the main greenlet, through the ``run`` fixture) and, where a
second implementation matters, ``socat``.  Events are ordered with events and
bounded polls, never with sleeps; the one sleep here waits for something that
must *not* happen (a third handler under ``max_conns=2``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
from conftest import Runner

from xsock_green import Bytes, Socket, SocketError, server, socket

LONG_MS = 5000

pytestmark = pytest.mark.usefixtures("no_hub_traceback")


def echo(sock: Socket) -> None:
    buff = Bytes(65536)
    while True:
        n, data = sock.recv(buff, None, {"block": True})
        if n <= 0 or data is None or sock.send(data, {"block": True}) < 0:
            return


def until(cond: Callable[[], object], seconds: float = 5.0) -> None:
    """Let the hub run until ``cond()`` holds; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        gevent.sleep(0.001)


def ask(port: int, message: str) -> str:
    sock = socket.connect("127.0.0.1", port, {"timeout": LONG_MS})
    assert sock is not None, "connect failed"
    with sock:
        assert sock.send(message, {"block": True}) == len(message)
        n, data = sock.recv(
            Bytes(256), len(message), {"block": True, "waitall": True, "timeout": LONG_MS}
        )
        assert n == len(message) and data is not None, sock.last_error
        return data.str()


@pytest.fixture
def started() -> Any:
    """``started(handler, **opt)``: a TCP server on 127.0.0.1:0, stopped after the test."""
    servers: list[server.Server] = []

    def make(handler: Callable[[Socket], object], **opt: Any) -> server.Server:
        srv = server.start(handler, "127.0.0.1", 0, opt)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop(0)


# -- handlers -----------------------------------------------------------------


def test_a_handler_per_connection_and_its_socket_is_closed_after(run: Runner, started: Any) -> None:
    seen: list[tuple[Socket, gevent.Greenlet]] = []

    def handler(sock: Socket) -> None:
        seen.append((sock, gevent.getcurrent()))
        echo(sock)

    srv = started(handler)
    port = srv.sockname()[1]
    assert srv.sockname() == ("127.0.0.1", port) and port > 0

    def body() -> None:
        clients = [socket.connect("127.0.0.1", port, {"timeout": LONG_MS}) for _ in range(3)]
        for i, client in enumerate(clients):
            assert client is not None
            assert client.send(f"hello {i}", {"block": True}) == 7
        for i, client in enumerate(clients):
            assert client is not None
            _n, data = client.recv(Bytes(16), 7, {"block": True, "waitall": True})
            assert data is not None and data.str() == f"hello {i}"
        assert srv.connections() == 3
        assert len({glet for _, glet in seen}) == 3  # one greenlet each
        for client in clients:
            assert client is not None
            client.close()
        until(lambda: srv.connections() == 0)
        assert all(sock.rawfd() == -1 for sock, _ in seen), "the server closes each socket"

    run(body)


def test_the_server_closes_the_socket_when_the_handler_returns(run: Runner, started: Any) -> None:
    srv = started(lambda sock: sock.send("bye", {"block": True}))

    def body() -> None:
        client = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
        assert client is not None
        with client:
            buff = Bytes(16)
            _n, data = client.recv(buff, 3, {"block": True, "waitall": True, "timeout": LONG_MS})
            assert data is not None and data.str() == "bye"
            # Nothing else: the server closed its end once the handler returned.
            assert client.recv(buff, None, {"block": True, "timeout": LONG_MS}) == (-1, None)

    run(body)


def test_a_handler_exception_is_logged_once_and_the_server_keeps_serving(
    run: Runner, started: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def handler(sock: Socket) -> None:
        _n, data = sock.recv(Bytes(64), None, {"block": True, "timeout": LONG_MS})
        assert data is not None
        if data.str() == "boom":
            raise ValueError("the handler broke")
        sock.send(data, {"block": True})

    caplog.set_level(logging.DEBUG, logger="xsock_green.server")
    srv = started(handler)
    port = srv.sockname()[1]

    def body() -> None:
        client = socket.connect("127.0.0.1", port, {"timeout": LONG_MS})
        assert client is not None
        with client:
            client.send("boom", {"block": True})
            # The server closed the connection after the handler raised.
            assert client.recv(Bytes(8), None, {"block": True, "timeout": LONG_MS})[0] == -1
        assert ask(port, "still there?") == "still there?"

    run(body)
    records = [r for r in caplog.records if r.name == "xsock_green.server"]
    assert len(records) == 1, [r.getMessage() for r in records]
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and isinstance(record.exc_info[1], ValueError)
    assert "handler" in record.getMessage() and "127.0.0.1:" in record.getMessage()
    assert "the handler broke" in caplog.text and "Traceback" in caplog.text


# -- max_conns -------------------------------------------------------------------


def test_max_conns_runs_at_most_two_handlers_and_serves_all_five_in_turn(
    run: Runner, started: Any
) -> None:
    release = gevent.event.Event()
    active: list[int] = [0]
    peak: list[int] = [0]
    begun: list[str] = []

    def handler(sock: Socket) -> None:
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        try:
            _n, data = sock.recv(Bytes(64), None, {"block": True, "timeout": LONG_MS})
            assert data is not None
            begun.append(data.str())
            release.wait()
            sock.send(f"served {data.str()}", {"block": True})
        finally:
            active[0] -= 1

    srv = started(handler, max_conns=2)
    port = srv.sockname()[1]

    def client(i: int) -> str:
        sock = socket.connect("127.0.0.1", port, {"timeout": LONG_MS})
        assert sock is not None  # the kernel's backlog takes it: connect succeeds
        with sock:
            sock.send(f"c{i}", {"block": True})
            _n, data = sock.recv(Bytes(64), 9, {"block": True, "waitall": True, "timeout": 10000})
            assert data is not None, sock.last_error
            return data.str()

    def body() -> None:
        clients = [gevent.spawn(client, i) for i in range(5)]
        try:
            until(lambda: len(begun) == 2)
            gevent.sleep(0.1)  # a negative check: a third handler must not start
            assert (len(begun), srv.connections(), peak[0]) == (2, 2, 2)
            release.set()
            replies = [glet.get(timeout=10) for glet in clients]
        finally:
            gevent.killall(clients)
        assert sorted(replies) == [f"served c{i}" for i in range(5)]
        assert peak[0] == 2
        assert sorted(begun) == [f"c{i}" for i in range(5)]

    run(body)


# -- stop -------------------------------------------------------------------------


def test_stop_lets_a_handler_finish_sending_8_mib_and_refuses_new_clients(
    run: Runner, started: Any
) -> None:
    payload = os.urandom(8 << 20)
    sending = gevent.event.Event()
    results: list[int] = []

    def handler(sock: Socket) -> None:
        sending.set()
        results.append(sock.send(payload, {"block": True}))

    srv = started(handler)
    port = srv.sockname()[1]

    def body() -> None:
        client = socket.connect("127.0.0.1", port, {"timeout": LONG_MS})
        assert client is not None
        with client:
            sending.wait(5)
            # The handler is blocked in the middle of its send: the client reads nothing yet.
            stopping = gevent.spawn(srv.stop, 10000)
            until(srv.closed)
            assert socket.connect("127.0.0.1", port, {"timeout": LONG_MS}) is None
            buff = Bytes(len(payload))
            n, data = client.recv(
                buff, len(payload), {"block": True, "waitall": True, "timeout": LONG_MS}
            )
            assert n == len(payload) and data is not None and bytes(data) == payload
            assert client.recv(Bytes(8), None, {"block": True, "timeout": LONG_MS}) == (-1, None)
            assert stopping.get(timeout=10) == 0
        assert results == [len(payload)]
        assert srv.stop(0) == 0  # again: nothing to do

    run(body)


def test_stop_0_closes_a_handler_blocked_in_recv(run: Runner, started: Any) -> None:
    waiting = gevent.event.Event()
    got: list[tuple[int, Any]] = []

    def handler(sock: Socket) -> None:
        waiting.set()
        got.append(sock.recv(Bytes(64), None, {"block": True}))
        gevent.sleep(30)  # it would not end by itself: it is killed

    srv = started(handler)

    def body() -> None:
        client = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
        assert client is not None
        with client:
            assert waiting.wait(5)
            started_at = time.perf_counter()
            assert srv.stop(0) == 1
            assert time.perf_counter() - started_at < 1.0
            assert got == [(-1, None)]
            assert srv.connections() == 0 and srv.closed()
            assert client.recv(Bytes(8), None, {"block": True, "timeout": LONG_MS})[0] == -1

    run(body)


def test_stop_waits_for_handlers_that_end_by_themselves(run: Runner, started: Any) -> None:
    go = gevent.event.Event()

    def handler(sock: Socket) -> None:
        go.wait()
        sock.send("done", {"block": True})

    srv = started(handler)

    def body() -> None:
        client = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
        assert client is not None
        with client:
            until(lambda: srv.connections() == 1)
            gevent.spawn_later(0.05, go.set)
            assert srv.stop(LONG_MS) == 0
            _n, data = client.recv(Bytes(8), 4, {"block": True, "waitall": True})
            assert data is not None and data.str() == "done"

    run(body)


def test_new_connects_are_refused_after_stop_and_serve_forever_returns(
    started: Any, spawn: Callable[..., gevent.Greenlet]
) -> None:
    srv = started(echo)
    port = srv.sockname()[1]
    forever = spawn(srv.serve_forever)
    assert ask(port, "up") == "up"
    gevent.idle()
    assert not forever.dead and not srv.closed()
    with srv:
        pass  # leaving the block stops it
    assert srv.closed()
    forever.get(timeout=5)
    assert socket.connect("127.0.0.1", port, {"timeout": LONG_MS}) is None
    assert srv.sockname()[1] == port  # still known after stop


def test_a_handler_may_stop_its_own_server(run: Runner, started: Any) -> None:
    stopped: list[int] = []

    def handler(sock: Socket) -> None:
        stopped.append(srv.stop(LONG_MS))
        sock.send("stopped", {"block": True})

    srv = started(handler)

    def body() -> None:
        client = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
        assert client is not None
        with client:
            _n, data = client.recv(Bytes(16), 7, {"block": True, "waitall": True})
            assert data is not None and data.str() == "stopped"
        srv.serve_forever()
        assert stopped == [0] and srv.closed()

    run(body)


# -- unix and udp ------------------------------------------------------------------


def test_unix_server(run: Runner, short_tmp: str) -> None:
    path = os.path.join(short_tmp, "srv.sock")
    srv = server.start_unix(echo, path, {"backlog": 16})
    try:
        assert srv.sockname() == path

        def body() -> None:
            client = socket.connect_unix(path, {"timeout": LONG_MS})
            assert client is not None
            with client:
                client.send("over unix", {"block": True})
                _n, data = client.recv(Bytes(16), 9, {"block": True, "waitall": True})
                assert data is not None and data.str() == "over unix"

        run(body)
        with pytest.raises(SocketError, match="address already in use"):
            server.start_unix(echo, path)
    finally:
        srv.stop(0)
    assert not os.path.exists(path), "stop removes the socket file it made"


def test_unix_server_never_replaces_a_file(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "taken")
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(SocketError):
        server.start_unix(echo, path)
    with open(path) as f:
        assert f.read() == "keep me"


def test_udp_handler_echoes_each_datagram(run: Runner) -> None:
    calls: list[tuple[str, str]] = []

    def handler(sock: Socket, data: Bytes, addr: str, port: int) -> None:
        calls.append((data.str(), addr))
        if data.str() == "boom":
            raise RuntimeError("bad datagram")
        sock.sendto(data, addr, port, {"block": True})

    srv = server.start_udp(handler, "127.0.0.1", 0)
    try:
        port = srv.sockname()[1]

        def body() -> None:
            with socket.udp() as client:
                for text in ("one", "boom", "two"):
                    assert client.sendto(text, "127.0.0.1", port, {"block": True}) == len(text)
                for text in ("one", "two"):
                    _n, data, addr, from_port = client.recvfrom(
                        Bytes(64), None, {"block": True, "timeout": LONG_MS}
                    )
                    assert data is not None and data.str() == text
                    assert (addr, from_port) == ("127.0.0.1", port)

        run(body)
        assert [text for text, _ in calls] == ["one", "boom", "two"]
    finally:
        assert srv.stop(0) == 0
    assert srv.closed()


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed")
def test_socat_talks_to_server_start(started: Any) -> None:
    srv = started(echo)
    with tempfile.TemporaryFile() as src, tempfile.TemporaryFile() as out:
        src.write(b"from socat\n")
        src.seek(0)
        proc = subprocess.Popen(
            ["socat", "-", f"TCP:127.0.0.1:{srv.sockname()[1]}"],
            stdin=src,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            # The server runs in this hub: wait for socat without blocking it.
            until(lambda: proc.poll() is not None, 10)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        out.seek(0)
        assert (proc.returncode, out.read()) == (0, b"from socat\n")


# -- options ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opt", "error", "text"),
    [
        ({"tls": True}, TypeError, "must be an ssl.SSLContext"),
        ({"handshake_timeout": -5}, ValueError, "handshake_timeout"),
        ({"max_con": 3}, TypeError, "did you mean 'max_conns'"),
        ({"max_conns": 0}, ValueError, "max_conns"),
        ({"max_conns": "2"}, TypeError, "max_conns"),
        ({"backlog": -1}, ValueError, "backlog"),
        ({"nodelay": 1}, TypeError, "nodelay"),
        ({"stop_timeout": -5}, ValueError, "stop_timeout"),
        ({"workers": 2}, TypeError, "unknown option 'workers'"),
    ],
)
def test_start_options_are_checked(opt: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        server.start(echo, "127.0.0.1", 0, opt)


@pytest.mark.parametrize(
    ("opt", "error", "text"),
    [
        ({"workers": 0}, ValueError, "workers"),
        ({"ready": "yes"}, TypeError, "ready"),
        ({"tls": True}, TypeError, "must be an ssl.SSLContext"),
    ],
)
def test_run_options_are_checked(opt: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        server.run(echo, "127.0.0.1", 0, opt)


def test_udp_and_unix_options_are_their_own() -> None:
    with pytest.raises(TypeError, match="unknown option 'max_conns'"):
        server.start_udp(lambda *a: None, "127.0.0.1", 0, max_conns=2)
    with pytest.raises(TypeError, match="unknown option 'reuseport'"):
        server.start_unix(echo, "/tmp/never-made.sock", reuseport=True)
    with pytest.raises(TypeError, match="handler must be callable"):
        server.start("not a handler", "127.0.0.1", 0)  # type: ignore[arg-type]


def test_binding_failures_raise_socket_error() -> None:
    with socket.bind("127.0.0.1", 0) as taken:
        assert taken.listen(1)
        port = taken.sockname()[1]
        with pytest.raises(SocketError, match=f"cannot bind 127.0.0.1:{port}: address already"):
            server.start(echo, "127.0.0.1", port)
    with socket.udp() as taken_udp:
        assert taken_udp.bind("127.0.0.1", 0)
        port = taken_udp.sockname()[1]
        with pytest.raises(SocketError, match="address already in use"):
            server.start_udp(lambda *a: None, "127.0.0.1", port)


def test_reuseport_lets_two_servers_share_a_port() -> None:
    first = server.start(echo, "127.0.0.1", 0, reuseport=True)
    port = first.sockname()[1]
    try:
        second = server.start(echo, "127.0.0.1", port, reuseport=True)
        second.stop(0)
        with pytest.raises(SocketError, match="address already in use"):
            server.start(echo, "127.0.0.1", port)
    finally:
        first.stop(0)
    udp = server.start_udp(lambda *a: None, "127.0.0.1", 0, reuseport=True)
    try:
        twin = server.start_udp(lambda *a: None, "127.0.0.1", udp.sockname()[1], reuseport=True)
        twin.stop(0)
    finally:
        udp.stop(0)


def test_nodelay_is_set_on_accepted_sockets_unless_turned_off(started: Any) -> None:
    seen: dict[str, bool] = {}

    def record(name: str) -> Callable[[Socket], None]:
        def handler(sock: Socket) -> None:
            seen[name] = sock.ctrl(socket.CTRL_GET_TCP_NODELAY)

        return handler

    on = started(record("on"))
    off = started(record("off"), nodelay=False)
    for srv in (on, off):
        client = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
        assert client is not None
        with client:
            client.recv(Bytes(4), None, {"block": True, "timeout": LONG_MS})
    assert seen == {"on": True, "off": False}


def test_the_readme_server_example_runs() -> None:
    readme = Path(__file__).resolve().parent.parent / "README.md"
    block = re.search(r"## Servers\n.*?```python\n(.*?)```", readme.read_text(), re.S)
    assert block is not None, "README has no server example"
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)], capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "4 ping 1\n0\n", "")


@pytest.mark.parametrize("workers", [1, 2])
def test_run_on_a_port_in_use_raises_and_leaves_signals_alone(workers: int) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with socket.bind("127.0.0.1", 0) as taken:
        assert taken.listen(1)
        port = taken.sockname()[1]
        with pytest.raises(SocketError, match="address already in use"):
            server.run(echo, "127.0.0.1", port, {"workers": workers})
    assert {sig: signal.getsignal(sig) for sig in before} == before


@pytest.mark.parametrize("timeout", [LONG_MS, 0])
def test_udp_stop_lets_a_running_handler_reply_or_stops_it(timeout: int) -> None:
    go = gevent.event.Event()
    replied: list[int] = []

    def handler(sock: Socket, data: Bytes, addr: str, port: int) -> None:
        go.wait()
        replied.append(sock.sendto(bytes(data), addr, port, {"block": True}))

    srv = server.start_udp(handler, "127.0.0.1", 0)
    with socket.udp() as client:
        client.sendto("late", "127.0.0.1", srv.sockname()[1], {"block": True})
        until(lambda: srv.connections() == 1)
        if timeout:
            gevent.spawn_later(0.05, go.set)
            assert srv.stop(timeout) == 0
            assert replied == [4]
            _n, data, _, _ = client.recvfrom(Bytes(16), None, {"block": True, "timeout": LONG_MS})
            assert data is not None and data.str() == "late"
        else:
            assert srv.stop(0) == 1
            assert replied == [] and srv.connections() == 0
    assert srv.closed() and srv.stop() == 0
