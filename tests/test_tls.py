"""TLS (SPEC section 9) between xsock_green sockets, on loopback.

Certificates are made for the run with ``trustme``.  Every promise of SPEC
section 2 is checked again with TLS on: close wakes a reader inside a TLS
receive and inside a handshake, a second reader gets ``BusyError``, a
deadline bounds a handshake that never gets an answer, full duplex from two
greenlets.  Then what TLS adds: verification failures with their reasons,
STARTTLS after a plain exchange, ``wait`` and buffered plaintext,
``sendfile``, a peer that leaves without ``close_notify``.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import gevent.event
import pytest
from conftest import Runner

from xsock_green import BusyError, Bytes, Socket, TimeoutError, socket

trustme = pytest.importorskip("trustme", reason="trustme is not installed (pip install trustme)")

WAKE_LIMIT = 0.1
LONG_MS = 5000
MiB = 1 << 20

pytestmark = pytest.mark.usefixtures("no_hub_traceback")

Spawn = Callable[..., gevent.Greenlet]


# -- certificates and contexts ----------------------------------------------------


@pytest.fixture
def tls_listener(server_ctx: ssl.SSLContext) -> Iterator[Socket]:
    lst = socket.bind("127.0.0.1", 0, tls=server_ctx)
    assert lst.listen(16)
    yield lst
    lst.close()


def accept_tls(lst: Socket) -> tuple[Socket, int]:
    conn = lst.accept({"timeout": LONG_MS})
    assert conn is not None, lst.last_error
    return conn, conn.handshake(LONG_MS)


@pytest.fixture
def tls_pair(
    tls_listener: Socket, client_ctx: ssl.SSLContext, spawn: Spawn
) -> Iterator[tuple[Socket, Socket]]:
    """A connected (client, server-side) pair, both handshaken."""
    acc = spawn(accept_tls, tls_listener)
    port = tls_listener.sockname()[1]
    client = socket.connect("127.0.0.1", port, tls=client_ctx, timeout=LONG_MS)
    assert client is not None, socket.last_error()
    server, shaken = acc.get()
    assert shaken == 1, server.last_error
    yield client, server
    client.close()
    server.close()


def recv_exactly(sock: Socket, size: int, timeout: int = LONG_MS) -> bytes:
    buff = Bytes(size)
    n, data = sock.recv(buff, size, {"block": True, "waitall": True, "timeout": timeout})
    assert n == size, sock.last_error
    assert data is not None
    return bytes(data)


# -- plain use ------------------------------------------------------------------------


def test_client_and_server_echo_block(
    run: Runner, tls_listener: Socket, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    def serve() -> int:
        conn = tls_listener.accept()
        assert conn is not None
        buff = Bytes(8192)
        total = 0
        with conn:
            while True:  # the first recv runs the handshake
                n, data = conn.recv(buff, 8192, {"block": True})
                if n <= 0:
                    return total
                assert conn.send(data, {"block": True}) == n
                total += n

    server = spawn(serve)

    def body() -> None:
        port = tls_listener.sockname()[1]
        sock = socket.connect("127.0.0.1", port, {"tls": client_ctx, "timeout": LONG_MS})
        assert sock is not None, socket.last_error()
        with sock:
            info = sock.tls_info()
            assert info is not None
            assert info["version"] in ("TLSv1.2", "TLSv1.3")
            assert info["cipher"][0]
            assert info["server_hostname"] == "127.0.0.1"
            assert ("IP Address", "127.0.0.1") in info["peercert"]["subjectAltName"]
            for i in range(20):
                message = f"hello {i} ".encode() * (i + 1)
                assert sock.send(message, {"block": True}) == len(message)
                assert recv_exactly(sock, len(message)) == message
        expected = sum(len(f"hello {i} ") * (i + 1) for i in range(20))
        assert server.get(timeout=LONG_MS / 1000) == expected

    run(body)


def test_non_block_calls(run: Runner, tls_pair: tuple[Socket, Socket]) -> None:
    client, server = tls_pair

    def body() -> None:
        buff = Bytes(1024)
        assert server.recv(buff, 1024) == (0, None)  # nothing yet: would block
        assert client.send(b"ping") == 4
        got = b""
        for _ in range(100):
            if server.wait(socket.EV_RECV, LONG_MS) != socket.EV_RECV:
                break
            n, data = server.recv(buff, 1024)
            assert n >= 0, server.last_error
            if data is not None:
                got += bytes(data)
            if got == b"ping":
                break
        assert got == b"ping"
        assert client.tls_info() is not None and server.tls_info() is not None

    run(body)


def test_plain_socket_has_no_tls(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _server = tcp_pair
    assert client.tls_info() is None
    with pytest.raises(TypeError, match="TLS sockets"):
        client.handshake()


def test_full_duplex_one_mib_each_way_from_two_greenlets(
    tls_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    client, server = tls_pair
    up = os.urandom(MiB)
    down = os.urandom(MiB)

    def send(sock: Socket, data: bytes) -> int:
        return sock.send(data, {"block": True, "timeout": 20000})

    def receive(sock: Socket) -> bytes:
        return recv_exactly(sock, MiB, 20000)

    glets = [
        spawn(send, client, up),
        spawn(receive, server),
        spawn(send, server, down),
        spawn(receive, client),
    ]
    gevent.joinall(glets, timeout=30, raise_error=True)
    assert glets[0].value == MiB and glets[2].value == MiB
    assert glets[1].value == up
    assert glets[3].value == down


# -- section 2 with TLS ---------------------------------------------------------------


def test_close_wakes_reader_in_tls_recv(run: Runner, tls_pair: tuple[Socket, Socket]) -> None:
    client, _server = tls_pair

    def body() -> None:
        blocked = gevent.event.Event()
        closed_at: list[float] = []

        def closer() -> None:
            blocked.wait()
            closed_at.append(time.monotonic())
            assert client.close()

        def reader() -> Any:
            gevent.get_hub().loop.run_callback(blocked.set)  # runs once we wait
            return client.recv(Bytes(100), 100, {"block": True})

        glet = gevent.spawn(closer)
        try:
            n, data = reader()
            woke = time.monotonic()
        finally:
            glet.join(timeout=5)
            glet.kill()
        assert (n, data) == (-1, None)
        assert "has been closed" in str(client.last_error)
        assert woke - closed_at[0] < WAKE_LIMIT

    run(body)


def test_close_wakes_reader_inside_a_handshake(
    run: Runner, tls_listener: Socket, spawn: Spawn
) -> None:
    """The client connects with plain TCP and never says hello: the server's
    first recv waits inside the handshake until close() wakes it."""

    def body() -> None:
        plain = socket.connect("127.0.0.1", tls_listener.sockname()[1], timeout=LONG_MS)
        assert plain is not None
        conn = tls_listener.accept()
        assert conn is not None
        started = gevent.event.Event()
        closed_at: list[float] = []

        def closer() -> None:
            started.wait()
            gevent.idle()  # the reader is parked in the hub now
            closed_at.append(time.monotonic())
            conn.close()

        glet = spawn(closer)
        try:
            gevent.get_hub().loop.run_callback(started.set)
            n, data = conn.recv(Bytes(10), 10, {"block": True})
            woke = time.monotonic()
            assert (n, data) == (-1, None)
            assert "has been closed" in str(conn.last_error)
            assert woke - closed_at[0] < WAKE_LIMIT
            glet.get(timeout=5)
        finally:
            plain.close()
            conn.close()

    run(body)


def test_second_reader_gets_busy_error(tls_pair: tuple[Socket, Socket], spawn: Spawn) -> None:
    client, _server = tls_pair
    first = spawn(client.recv, Bytes(10), 10, {"block": True})
    gevent.idle()
    assert not first.dead
    with pytest.raises(BusyError):
        client.recv(Bytes(10), 10, {"block": True})
    with pytest.raises(BusyError):
        client.wait(socket.EV_RECV, 0)
    client.close()
    assert first.get(timeout=5) == (-1, None)


def test_reader_and_sender_share_the_handshake(
    tls_listener: Socket, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    """An accepted socket used at once by a reader and a sender: one drives
    the handshake, the other waits for it, both then move their data."""
    port = tls_listener.sockname()[1]
    conn_box: list[Socket] = []

    def server_side() -> tuple[Any, Any]:
        conn = tls_listener.accept()
        assert conn is not None
        conn_box.append(conn)
        reader = gevent.spawn(recv_exactly, conn, 5)
        sender = gevent.spawn(conn.send, b"world", {"block": True, "timeout": LONG_MS})
        gevent.joinall([reader, sender], raise_error=True)
        return reader.value, sender.value

    srv = spawn(server_side)
    client = socket.connect("127.0.0.1", port, tls=client_ctx, timeout=LONG_MS)
    assert client is not None, socket.last_error()
    try:
        assert client.send(b"hello", {"block": True}) == 5
        assert recv_exactly(client, 5) == b"world"
        assert srv.get(timeout=10) == (b"hello", 5)
    finally:
        client.close()
        for conn in conn_box:
            conn.close()


def test_connect_deadline_covers_a_handshake_without_answer(run: Runner) -> None:
    """A server that accepts and stays silent: the handshake never gets an
    answer, and connect's timeout ends the whole call."""
    lst = socket.bind("127.0.0.1", 0)
    assert lst.listen(8)
    port = lst.sockname()[1]
    accepted: list[Socket] = []

    def accept_and_hold() -> None:
        conn = lst.accept()
        if conn is not None:
            accepted.append(conn)

    holder = gevent.spawn(accept_and_hold)

    def body() -> None:
        started = time.monotonic()
        sock = socket.connect("127.0.0.1", port, {"tls": True, "timeout": 200})
        took = time.monotonic() - started
        assert sock is None
        assert "timed out" in str(socket.last_error())
        assert 0.19 <= took < 1.0, took
        # The method form returns 0.
        raw = socket.tcp()
        with raw:
            started = time.monotonic()
            assert raw.connect("127.0.0.1", port, {"tls": True, "timeout": 150}) == 0
            assert 0.14 <= time.monotonic() - started < 1.0

    try:
        run(body)
    finally:
        holder.kill()
        for conn in accepted:
            conn.close()
        lst.close()


def test_block_recv_deadline_inside_the_handshake_raises_timeout(tls_listener: Socket) -> None:
    plain = socket.connect("127.0.0.1", tls_listener.sockname()[1], timeout=LONG_MS)
    assert plain is not None
    conn = tls_listener.accept()
    assert conn is not None
    try:
        with pytest.raises(TimeoutError) as info:
            conn.recv(Bytes(10), 10, {"block": True, "timeout": 100})
        assert info.value.moved == 0
        assert conn.handshake(0) == 0
        assert conn.handshake(50) == 0
    finally:
        plain.close()
        conn.close()


# -- verification -------------------------------------------------------------------


def failed_connect(
    server_ctx: ssl.SSLContext, spawn: Spawn, **client_opt: Any
) -> tuple[int, str, int]:
    """Connect with ``client_opt``: the method's result, its last_error, the server's."""
    lst = socket.bind("127.0.0.1", 0, tls=server_ctx)
    assert lst.listen(4)
    srv = spawn(accept_tls, lst)
    sock = socket.tcp()
    try:
        result = sock.connect("127.0.0.1", lst.sockname()[1], {"timeout": LONG_MS, **client_opt})
        conn, shaken = srv.get(timeout=10)
        conn.close()
        return result, str(sock.last_error), shaken
    finally:
        sock.close()
        lst.close()


def test_unknown_ca_fails_with_its_reason(server_ctx: ssl.SSLContext, spawn: Spawn) -> None:
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)  # trusts a different CA
    result, why, shaken = failed_connect(server_ctx, spawn, tls=other)
    assert result == -1
    assert "certificate verify failed" in why
    assert "unable to get local issuer certificate" in why
    assert shaken == -1  # the server saw the client's alert


def test_wrong_host_name_fails_with_its_reason(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    result, why, _shaken = failed_connect(
        server_ctx, spawn, tls=client_ctx, server_hostname="wrong.example"
    )
    assert result == -1
    assert "certificate verify failed" in why and "hostname mismatch" in why


def test_expired_certificate_fails_with_its_reason(
    ca: Any, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    expired = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(
        "127.0.0.1",
        not_before=datetime.datetime(2001, 1, 1, tzinfo=datetime.UTC),
        not_after=datetime.datetime(2002, 1, 1, tzinfo=datetime.UTC),
    ).configure_cert(expired)
    result, why, _shaken = failed_connect(expired, spawn, tls=client_ctx)
    assert result == -1
    assert "certificate verify failed" in why and "expired" in why


def test_module_connect_failure_returns_none_with_reason(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, tls_listener: Socket, spawn: Spawn
) -> None:
    srv = spawn(accept_tls, tls_listener)
    port = tls_listener.sockname()[1]
    sock = socket.connect("127.0.0.1", port, tls=client_ctx, server_hostname="nope.example")
    assert sock is None
    assert "hostname mismatch" in str(socket.last_error())
    conn, _ = srv.get(timeout=10)
    conn.close()


def test_server_hostname_selects_the_name_checked(
    tls_listener: Socket, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    srv = spawn(accept_tls, tls_listener)
    port = tls_listener.sockname()[1]
    sock = socket.connect("127.0.0.1", port, tls=client_ctx, server_hostname="xsock.test")
    assert sock is not None, socket.last_error()
    with sock:
        info = sock.tls_info()
        assert info is not None and info["server_hostname"] == "xsock.test"
    conn, shaken = srv.get(timeout=10)
    assert shaken == 1
    conn.close()


def test_options_are_checked() -> None:
    with pytest.raises(TypeError, match="tls"):
        socket.connect("127.0.0.1", 1, tls="yes")
    with pytest.raises(TypeError, match="SSLContext"):
        socket.bind("127.0.0.1", 0, tls=True)
    with pytest.raises(ValueError, match="server_hostname"):
        socket.connect_unix("/nonexistent/x.sock", tls=True)


# -- STARTTLS ------------------------------------------------------------------------


def test_starttls_after_a_plain_exchange(
    run: Runner,
    listener: Socket,
    server_ctx: ssl.SSLContext,
    client_ctx: ssl.SSLContext,
    spawn: Spawn,
) -> None:
    """SMTP style: a plain greeting and a STARTTLS command, then TLS both ways."""

    def smtp_server() -> bytes:
        conn = listener.accept()
        assert conn is not None
        with conn:
            assert conn.send(b"220 xsock ESMTP\r\n", {"block": True}) > 0
            assert recv_exactly(conn, 10) == b"STARTTLS\r\n"
            assert conn.send(b"220 go ahead\r\n", {"block": True}) > 0
            assert conn.tls_info() is None
            assert conn.starttls(server_ctx, {"server_side": True, "timeout": LONG_MS}) == 1
            line = recv_exactly(conn, 15)
            assert conn.send(b"250 hello " + line[5:], {"block": True}) > 0
            return line

    srv = spawn(smtp_server)

    def body() -> None:
        sock = socket.connect("127.0.0.1", listener.sockname()[1], timeout=LONG_MS)
        assert sock is not None
        with sock:
            assert recv_exactly(sock, 17) == b"220 xsock ESMTP\r\n"
            assert sock.send(b"STARTTLS\r\n", {"block": True}) == 10
            assert recv_exactly(sock, 14) == b"220 go ahead\r\n"
            assert sock.starttls(client_ctx, {"timeout": LONG_MS}) == 1
            info = sock.tls_info()
            assert info is not None and info["server_hostname"] == "127.0.0.1"
            assert sock.send(b"EHLO client\r\n\r\n", {"block": True, "last": 15}) == 15
            assert recv_exactly(sock, 20) == b"250 hello client\r\n\r\n"[:20]
            with pytest.raises(ValueError, match="already runs TLS"):
                sock.starttls(client_ctx)
        assert srv.get(timeout=10) == b"EHLO client\r\n\r\n"[:15]

    run(body)


# -- wait ------------------------------------------------------------------------------


def test_wait_reports_buffered_plaintext_at_once(tls_pair: tuple[Socket, Socket]) -> None:
    client, server = tls_pair
    # Nothing sent yet (the server's TLS 1.3 session tickets carry no data).
    assert client.wait(socket.EV_RECV, 0) == 0
    assert client.wait(socket.EV_RECV, 50) == 0
    assert server.send(b"0123456789" * 10, {"block": True}) == 100
    assert client.wait(socket.EV_RECV, LONG_MS) == socket.EV_RECV
    assert recv_exactly(client, 10) == b"0123456789"
    # 90 bytes are decrypted and buffered in the TLS layer; the kernel has none.
    for timeout in (0, -1, LONG_MS):
        started = time.monotonic()
        assert client.wait(socket.EV_RECV, timeout) == socket.EV_RECV
        assert time.monotonic() - started < 0.05
    assert client.wait(socket.EV_RECV | socket.EV_SEND, -1) == socket.EV_RECV | socket.EV_SEND
    n, data = client.recv(Bytes(200), 200)
    assert n == 90 and data is not None
    assert client.wait(socket.EV_RECV, 0) == 0


def test_wait_runs_the_handshake_of_an_accepted_socket(
    tls_listener: Socket, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    def client_side() -> None:
        sock = socket.connect(
            "127.0.0.1", tls_listener.sockname()[1], tls=client_ctx, timeout=LONG_MS
        )
        assert sock is not None
        with sock:
            assert sock.send(b"x", {"block": True}) == 1
            assert recv_exactly(sock, 1) == b"y"

    cli = spawn(client_side)
    conn = tls_listener.accept()
    assert conn is not None
    with conn:
        assert conn.wait(socket.EV_RECV, LONG_MS) == socket.EV_RECV
        assert conn.tls_info() is not None
        assert recv_exactly(conn, 1) == b"x"
        assert conn.send(b"y", {"block": True}) == 1
        cli.get(timeout=10)


# -- sendfile, end of stream, close -------------------------------------------------------


def test_sendfile_of_ten_megabytes(
    tls_pair: tuple[Socket, Socket], tmp_path: Any, spawn: Spawn
) -> None:
    client, server = tls_pair
    path = tmp_path / "ten.bin"
    content = os.urandom(10 * 1000 * 1000)
    path.write_bytes(content)

    def receive() -> str:
        digest = hashlib.sha256()
        buff = Bytes(65536)
        total = 0
        while total < len(content):
            n, data = server.recv(buff, 65536, {"block": True, "timeout": 20000})
            assert n > 0 and data is not None, server.last_error
            digest.update(data.view())
            total += n
        return digest.hexdigest()

    reader = spawn(receive)
    with open(path, "rb") as f:
        assert client.sendfile(f, {"block": True, "timeout": 30000}) == len(content)
        assert f.tell() == len(content)
    assert reader.get(timeout=30) == hashlib.sha256(content).hexdigest()
    # A range of a path.
    reader = spawn(recv_exactly, server, 1000)
    assert client.sendfile(str(path), {"block": True, "start": 1001, "last": 2000}) == 1000
    assert reader.get(timeout=10) == content[1000:2000]


def test_peer_leaving_without_close_notify_is_end_of_stream(
    run: Runner, tls_pair: tuple[Socket, Socket]
) -> None:
    client, server = tls_pair

    def body() -> None:
        assert server.send(b"last words", {"block": True}) == 10
        assert server.kill()  # shuts the TCP stream down, no close_notify
        assert recv_exactly(client, 10) == b"last words"
        assert client.recv(Bytes(10), 10, {"block": True}) == (-1, None)
        assert "end of stream" in str(client.last_error)
        assert client.recv(Bytes(10), 10) == (-1, None)

    run(body)


def test_close_sends_close_notify(tls_pair: tuple[Socket, Socket]) -> None:
    client, server = tls_pair
    assert server.send(b"bye", {"block": True}) == 3
    assert server.close()
    assert recv_exactly(client, 3) == b"bye"
    assert client.recv(Bytes(10), 10, {"block": True}) == (-1, None)
    assert client.wait(socket.EV_RECV, 0) == socket.EV_RECV  # the end is readable


def test_close_never_blocks_with_a_full_send_buffer(tls_pair: tuple[Socket, Socket]) -> None:
    client, _server = tls_pair
    chunk = bytes(65536)
    for _ in range(4096):
        if client.send(chunk) == 0:  # the kernel is full; the layer holds the rest
            break
    else:
        raise AssertionError("the send buffer never filled")
    started = time.monotonic()
    assert client.close()
    assert time.monotonic() - started < 0.05
    assert client.close() is False


def test_kill_wakes_a_tls_reader(tls_pair: tuple[Socket, Socket], spawn: Spawn) -> None:
    client, server = tls_pair
    reader = spawn(client.recv, Bytes(10), 10, {"block": True})
    gevent.idle()
    assert client.kill()
    assert reader.get(timeout=5) == (-1, None)
    assert server.recv(Bytes(10), 10, {"block": True, "timeout": LONG_MS}) == (-1, None)


def test_unix_sockets_run_tls(
    short_tmp: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    path = os.path.join(short_tmp, "t.sock")
    lst = socket.bind_unix(path, tls=server_ctx)
    assert lst.listen(4)
    try:
        srv = spawn(accept_tls, lst)
        sock = socket.connect_unix(path, tls=client_ctx, server_hostname="localhost")
        assert sock is not None, socket.last_error()
        conn, shaken = srv.get(timeout=10)
        assert shaken == 1
        with sock, conn:
            assert sock.send(b"unix", {"block": True}) == 4
            assert recv_exactly(conn, 4) == b"unix"
    finally:
        lst.close()


def test_starttls_refuses_while_another_greenlet_waits(
    tcp_pair: tuple[Socket, Socket], client_ctx: ssl.SSLContext, spawn: Spawn
) -> None:
    client, _server = tcp_pair
    reader = spawn(client.recv, Bytes(10), 10, {"block": True})
    gevent.idle()
    with pytest.raises(BusyError):
        client.starttls(client_ctx)
    assert client.tls_info() is None
    client.close()
    assert reader.get(timeout=5) == (-1, None)
