"""``xsock_green.server`` with ``tls``: the handshake runs before the handler.

A failed handshake (a client that distrusts the certificate, a client that
never says hello) is logged on ``xsock_green.server``, the connection is
closed and the handler is not called.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Iterator
from typing import Any

import gevent
import pytest

from xsock_green import Bytes, Socket, server, socket

trustme = pytest.importorskip("trustme", reason="trustme is not installed (pip install trustme)")

LONG_MS = 5000

pytestmark = pytest.mark.usefixtures("no_hub_traceback")


class Echo:
    """An echo handler that records what it saw."""

    def __init__(self) -> None:
        self.calls = 0
        self.infos: list[Any] = []

    def __call__(self, sock: Socket) -> None:
        self.calls += 1
        self.infos.append(sock.tls_info())
        buff = Bytes(8192)
        while True:
            n, data = sock.recv(buff, 8192, {"block": True})
            if n <= 0 or sock.send(data, {"block": True}) < 0:
                return


@pytest.fixture
def echo() -> Echo:
    return Echo()


@pytest.fixture
def tls_server(server_ctx: ssl.SSLContext, echo: Echo) -> Iterator[server.Server]:
    srv = server.start(
        echo, "127.0.0.1", 0, {"tls": server_ctx, "handshake_timeout": 300, "backlog": 16}
    )
    yield srv
    srv.stop(0)


def test_handler_gets_a_handshaken_socket(
    tls_server: server.Server, client_ctx: ssl.SSLContext, echo: Echo
) -> None:
    port = tls_server.sockname()[1]
    sock = socket.connect("127.0.0.1", port, tls=client_ctx, timeout=LONG_MS)
    assert sock is not None, socket.last_error()
    with sock:
        assert sock.send(b"hello tls", {"block": True}) == 9
        n, data = sock.recv(Bytes(9), 9, {"block": True, "waitall": True, "timeout": LONG_MS})
        assert n == 9 and data is not None and bytes(data) == b"hello tls"
    assert echo.calls == 1
    info = echo.infos[0]
    assert info is not None and info["version"] is not None and info["server_side"]


def test_failed_handshake_is_logged_and_handler_not_called(
    tls_server: server.Server, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    other = ssl.create_default_context()
    trustme.CA().configure_trust(other)
    port = tls_server.sockname()[1]
    with caplog.at_level(logging.WARNING, logger="xsock_green.server"):
        assert socket.connect("127.0.0.1", port, tls=other, timeout=LONG_MS) is None
        assert "certificate verify failed" in str(socket.last_error())
        for _ in range(500):
            if any("TLS handshake" in r.getMessage() for r in caplog.records):
                break
            gevent.sleep(0.01)
    messages = [r.getMessage() for r in caplog.records if r.name == "xsock_green.server"]
    assert any("TLS handshake with 127.0.0.1:" in m and "failed" in m for m in messages), messages
    assert echo.calls == 0
    assert tls_server.connections() == 0


def test_silent_client_is_dropped_after_handshake_timeout(
    tls_server: server.Server, echo: Echo, caplog: pytest.LogCaptureFixture
) -> None:
    port = tls_server.sockname()[1]
    with caplog.at_level(logging.WARNING, logger="xsock_green.server"):
        plain = socket.connect("127.0.0.1", port, timeout=LONG_MS)
        assert plain is not None
        with plain:
            # The server closes it after 300 ms: end of stream here.
            n, _ = plain.recv(Bytes(10), 10, {"block": True, "timeout": LONG_MS})
            assert n == -1
    messages = [r.getMessage() for r in caplog.records]
    assert any("no handshake within 300 ms" in m for m in messages), messages
    assert echo.calls == 0


def test_unix_server_with_tls(
    short_tmp: str, server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext, echo: Echo
) -> None:
    path = os.path.join(short_tmp, "tls.sock")
    with server.start_unix(echo, path, {"tls": server_ctx}):
        sock = socket.connect_unix(path, tls=client_ctx, server_hostname="localhost")
        assert sock is not None, socket.last_error()
        with sock:
            assert sock.send(b"abc", {"block": True}) == 3
            n, data = sock.recv(Bytes(3), 3, {"block": True, "waitall": True})
            assert n == 3 and data is not None and bytes(data) == b"abc"


def test_server_tls_must_be_a_context() -> None:
    with pytest.raises(TypeError, match="SSLContext"):
        server.start(lambda sock: None, "127.0.0.1", 0, tls=True)
    with pytest.raises(TypeError, match="handshake_timeout"):
        server.start(lambda sock: None, "127.0.0.1", 0, handshake_timeout="soon")


def test_proxy_header_comes_first_then_the_handshake(
    server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext
) -> None:
    """SPEC section 8: with ``tls`` and ``proxy_protocol`` the plain header is
    read first, then the handshake runs, and the handler sees the client
    from the header over a TLS socket."""
    seen: list[Any] = []

    def handler(sock: Socket) -> None:
        seen.append((sock.peeraddr(), sock.tls_info() is not None))
        sock.send(f"{sock.peeraddr()}\n", {"block": True})

    opt = {"tls": server_ctx, "proxy_protocol": True, "handshake_timeout": LONG_MS}
    with server.start(handler, "127.0.0.1", 0, opt) as srv:
        client = socket.connect("127.0.0.1", srv.sockname()[1])
        assert client is not None
        with client:
            header = b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n"
            assert client.send(header, {"block": True}) == len(header)
            opt_tls = {"server_side": False, "server_hostname": "localhost", "timeout": LONG_MS}
            assert client.starttls(client_ctx, opt_tls) == 1, client.last_error
            n, data = client.recv(Bytes(64), 64, {"block": True, "timeout": LONG_MS})
            assert n > 0 and data is not None
            assert data.str() == "192.0.2.7:40000\n"
    assert seen == [("192.0.2.7:40000", True)]


def test_reader_over_tls(server_ctx: ssl.SSLContext, client_ctx: ssl.SSLContext) -> None:
    """Issue 15: ``Reader`` over a TLS socket: lines split across TLS records
    and a frame read exactly, as over a plain one."""
    from xsock_green import Reader

    def handler(sock: Socket) -> None:
        for piece in (b"first li", b"ne\r\nsec", b"ond\n", b"0123456789"):
            assert sock.send(piece, {"block": True}) == len(piece)

    with server.start(handler, "127.0.0.1", 0, {"tls": server_ctx}) as srv:
        opt = {"tls": client_ctx, "server_hostname": "localhost", "timeout": LONG_MS}
        client = socket.connect("127.0.0.1", srv.sockname()[1], opt)
        assert client is not None, socket.last_error()
        with client:
            reader = Reader(client, 4)  # smaller than a record: many receives
            assert reader.readline({"timeout": LONG_MS}) == (12, b"first line\r\n")
            assert reader.readline({"timeout": LONG_MS}) == (7, b"second\n")
            assert reader.readexactly(10, {"timeout": LONG_MS}) == (10, b"0123456789")
            assert reader.readline({"timeout": LONG_MS}) == (-1, None)  # the server closed
