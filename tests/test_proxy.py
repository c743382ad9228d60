"""SPEC section 8, ``proxy_protocol``: the parser, the exact read, the server, the CLI.

The parser (``xsock_green._proxy.parse``) is a pure function, tested against
hand-made headers of both versions.  The read is tested on real connections:
a header followed by data in one write (no application byte may be lost),
a header that arrives one byte at a time (each byte consumed before the next
is sent, checked with ``FIONREAD``), garbage and oversized headers (refused
without reading what follows), and a client that sends nothing.  A real
HAProxy in front of the server is in ``test_haproxy.py``.
"""

from __future__ import annotations

import fcntl
import logging
import socket as std_socket
import struct
import termios
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from test_cli import XSOCK
from test_server_processes import Session

from xsock_green import Bytes, Socket, server, socket
from xsock_green._proxy import (
    MAX_HEADER,
    V1_MAX,
    V2_SIGNATURE,
    Header,
    HeaderFailed,
    ProxyError,
    parse,
    read_header,
)

pytestmark = pytest.mark.usefixtures("no_hub_traceback")

LONG_MS = 5000


# -- hand-made headers ----------------------------------------------------------------


def v2(
    command: int, family: int, body: bytes, *, version: int = 2, length: int | None = None
) -> bytes:
    """A version 2 header: ``family`` is the whole family/transport byte."""
    size = len(body) if length is None else length
    return V2_SIGNATURE + bytes([version << 4 | command, family]) + struct.pack("!H", size) + body


def v2_inet(src: str, dst: str, sport: int, dport: int, tlvs: bytes = b"") -> bytes:
    body = std_socket.inet_aton(src) + std_socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return v2(0x1, 0x11, body + tlvs)


def v2_inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    pack = std_socket.inet_pton
    body = pack(std_socket.AF_INET6, src) + pack(std_socket.AF_INET6, dst)
    return v2(0x1, 0x21, body + struct.pack("!HH", sport, dport))


def v2_unix(src: bytes, dst: bytes) -> bytes:
    return v2(0x1, 0x31, src.ljust(108, b"\0") + dst.ljust(108, b"\0"))


LOCAL_V2 = v2(0x0, 0x00, b"")
TLV = bytes([0x04]) + struct.pack("!H", 3) + b"abc"  # PP2_TYPE_NOOP, 3 bytes

GOOD: list[tuple[str, bytes, Header]] = [
    (
        "v1 tcp4",
        b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n",
        Header(1, 45, "TCP4", ("192.0.2.1", 56324), ("198.51.100.2", 443)),
    ),
    (
        "v1 tcp6",
        b"PROXY TCP6 2001:db8:0:0::1 ::1 65535 0\r\n",
        Header(1, 40, "TCP6", ("2001:db8::1", 65535, 0, 0), ("::1", 0, 0, 0)),
    ),
    ("v1 unknown", b"PROXY UNKNOWN\r\n", Header(1, 15, "UNKNOWN")),
    (
        "v1 unknown with addresses",
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        Header(1, 59, "UNKNOWN"),
    ),
    (
        "v2 inet",
        v2_inet("203.0.113.7", "10.0.0.1", 4242, 80),
        Header(2, 28, "TCP4", ("203.0.113.7", 4242), ("10.0.0.1", 80)),
    ),
    (
        "v2 inet with a tlv",
        v2_inet("203.0.113.7", "10.0.0.1", 4242, 80, TLV),
        Header(2, 34, "TCP4", ("203.0.113.7", 4242), ("10.0.0.1", 80)),
    ),
    (
        "v2 inet6",
        v2_inet6("2001:db8::7", "::1", 1, 65535),
        Header(2, 52, "TCP6", ("2001:db8::7", 1, 0, 0), ("::1", 65535, 0, 0)),
    ),
    (
        "v2 unix",
        v2_unix(b"/run/client.sock", b"/run/lb.sock"),
        Header(2, 232, "UNIX", "/run/client.sock", "/run/lb.sock"),
    ),
    (
        "v2 unix abstract and unnamed",
        v2_unix(b"\0client", b""),
        Header(2, 232, "UNIX", b"\0client", ""),
    ),
    ("v2 local", LOCAL_V2, Header(2, 16, "LOCAL")),
    (
        "v2 local with addresses and a tlv",
        v2(0x0, 0x11, b"\1" * 12 + TLV),
        Header(2, 34, "LOCAL"),
    ),
    ("v2 unspec", v2(0x1, 0x00, b""), Header(2, 16, "UNKNOWN")),
]


@pytest.mark.parametrize(("raw", "expected"), [g[1:] for g in GOOD], ids=[g[0] for g in GOOD])
def test_parse_good_headers(raw: bytes, expected: Header) -> None:
    assert parse(raw) == expected
    assert parse(raw + b"GET / HTTP/1.1\r\n") == expected  # what follows is not the header's
    assert expected.local == (expected.source is None)


@pytest.mark.parametrize("raw", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_every_proper_prefix_is_incomplete_and_all_header(raw: bytes) -> None:
    for end in range(len(raw)):
        assert parse(raw[:end]) is None, raw[:end]


def test_v1_at_its_limit_of_107_bytes() -> None:
    longest = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 16) + b"\r\n"
    assert len(longest) == V1_MAX
    assert parse(longest) == Header(1, V1_MAX, "UNKNOWN")
    too_long = b"PROXY UNKNOWN " + b"x" * (V1_MAX - 15) + b"\r\n"
    with pytest.raises(ProxyError, match="longer than 107 bytes"):
        parse(too_long)
    # Refused as soon as 107 bytes hold no CRLF, whatever follows.
    with pytest.raises(ProxyError, match="longer than 107 bytes"):
        parse(too_long[:V1_MAX])


BAD: list[tuple[str, bytes, str]] = [
    ("http request", b"GET / HTTP/1.1\r\n\r\n", "no PROXY protocol header"),
    ("one wrong byte", b"G", "no PROXY protocol header"),
    ("lowercase", b"proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n", "no PROXY protocol header"),
    ("wrong word", b"PROXZ", "not a PROXY protocol header"),
    ("no space", b"PROXYTCP4", "not a PROXY protocol header"),
    ("tcp5", b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "must be TCP4, TCP6 or UNKNOWN"),
    ("four fields", b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n", "needs 5 fields"),
    ("two spaces", b"PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n", "needs 5 fields"),
    ("ipv6 in tcp4", b"PROXY TCP4 ::1 ::1 1 2\r\n", "bad IPv4 address"),
    ("ipv4 in tcp6", b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad IPv6 address"),
    ("octet over 255", b"PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n", "bad IPv4 address"),
    ("port over 65535", b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n", "bad port"),
    ("leading zero", b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n", "bad port"),
    ("signed port", b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n", "bad port"),
    ("six digits", b"PROXY TCP4 1.2.3.4 1.2.3.4 000001 2\r\n", "bad port"),
    ("bare line feed", b"PROXY TCP4 1.2.3.4\n", "control byte"),
    ("carriage return alone", b"PROXY TCP4\r1", "control byte"),
    ("nul byte", b"PROXY \0", "control byte"),
    ("v2 bad signature", b"\r\n\r\n\0\r\nQUIX", "not a PROXY protocol header"),
    ("v2 version 1", v2(0x1, 0x11, b"", version=1), "version 1 is not supported"),
    ("v2 version 3", v2(0x1, 0x11, b"", version=3), "version 3 is not supported"),
    ("v2 command 2", v2(0x2, 0x11, b""), "unknown command"),
    ("v2 family 4", v2(0x1, 0x41, b""), "unknown family/transport"),
    ("v2 transport 3", v2(0x1, 0x13, b""), "unknown family/transport"),
    ("v2 datagram", v2(0x1, 0x12, b"\0" * 12), "datagram"),
    ("v2 inet too short", v2(0x1, 0x11, b"\0" * 11), "needs 12"),
    ("v2 unix too short", v2(0x1, 0x31, b"\0" * 215), "needs 216"),
    ("v2 truncated tlv", v2_inet("1.2.3.4", "1.2.3.4", 1, 2, b"\x04\x00"), "truncated TLV"),
    ("v2 tlv too long", v2_inet("1.2.3.4", "1.2.3.4", 1, 2, b"\x04\x00\x09ab"), "TLV longer"),
    ("v2 oversized", v2(0x1, 0x11, b"", length=65535), "the limit is"),
]


@pytest.mark.parametrize(("raw", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_parse_refuses_garbage(raw: bytes, text: str) -> None:
    with pytest.raises(ProxyError, match=text):
        parse(raw)


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        (b"GET / HTTP/1.1\r\n", 1),
        (b"PROXY TCP4 1.2.3.4\n", 19),
        (v2(0x1, 0x11, b"", version=1), 13),  # the version byte
        (v2(0x1, 0x11, b"", length=65535), 16),  # the length, before any body
    ],
)
def test_garbage_is_refused_as_soon_as_its_first_bad_byte_arrives(raw: bytes, seen: int) -> None:
    assert parse(raw[: seen - 1]) is None
    with pytest.raises(ProxyError):
        parse(raw[:seen])


# -- reading from a connection -----------------------------------------------------------


def unread(sock: Socket) -> int:
    """Bytes in the socket's receive queue that nobody has read."""
    got = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", got)[0])


def until(cond: Callable[[], object], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        gevent.sleep(0.001)


@pytest.mark.parametrize("raw", [g[1] for g in GOOD], ids=[g[0] for g in GOOD])
def test_header_and_data_in_one_write_loses_no_application_byte(
    raw: bytes, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, conn = tcp_pair
    payload = b"\r\nPROXY \x00after the header" + bytes(range(256))
    assert client.send(raw + payload, {"block": True}) == len(raw) + len(payload)
    until(lambda: unread(conn) == len(raw) + len(payload))
    assert read_header(conn, LONG_MS) == parse(raw)
    assert unread(conn) == len(payload)
    n, data = conn.recv(Bytes(4096), len(payload), {"block": True, "waitall": True})
    assert n == len(payload) and data is not None and bytes(data) == payload


@pytest.mark.parametrize(
    "raw",
    [GOOD[0][1], GOOD[4][1], GOOD[6][1]],
    ids=["v1 tcp4", "v2 inet", "v2 inet6"],
)
def test_a_header_arriving_one_byte_at_a_time(
    raw: bytes, tcp_pair: tuple[Socket, Socket], spawn: Callable[..., gevent.Greenlet]
) -> None:
    client, conn = tcp_pair
    client.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
    reader = spawn(read_header, conn, LONG_MS)
    for i, byte in enumerate(raw[:-1]):
        assert client.send(bytes([byte]), {"block": True}) == 1
        # The reader took this byte (its header's) and waits for the next.
        until(lambda: unread(conn) == 0 or reader.ready())
        assert not reader.ready(), f"returned after {i + 1} of {len(raw)} bytes"
    assert client.send(raw[-1:] + b"data", {"block": True}) == 5
    assert reader.get(timeout=5) == parse(raw)
    n, data = conn.recv(Bytes(16), 4, {"block": True, "waitall": True})
    assert n == 4 and data is not None and bytes(data) == b"data"


def test_garbage_is_refused_without_reading_what_follows(tcp_pair: tuple[Socket, Socket]) -> None:
    client, conn = tcp_pair
    flood = b"PROXY " + b"A" * (256 * 1024)
    sender = gevent.spawn(client.send, flood, {"block": True, "timeout": LONG_MS})
    until(lambda: unread(conn) >= MAX_HEADER)
    with pytest.raises(ProxyError, match="longer than 107 bytes"):
        read_header(conn, LONG_MS)
    assert unread(conn) >= MAX_HEADER  # peeked at, never taken
    conn.close()
    sender.join(timeout=5)
    assert sender.ready()


def test_an_oversized_v2_header_is_refused_from_its_16_fixed_bytes(
    tcp_pair: tuple[Socket, Socket],
) -> None:
    client, conn = tcp_pair
    assert client.send(v2(0x1, 0x11, b"", length=MAX_HEADER), {"block": True}) == 16
    with pytest.raises(ProxyError, match="the limit is"):
        read_header(conn, LONG_MS)


def test_a_client_that_sends_nothing_times_out(tcp_pair: tuple[Socket, Socket]) -> None:
    _client, conn = tcp_pair
    began = time.monotonic()
    with pytest.raises(HeaderFailed, match="timed out after 150 ms"):
        read_header(conn, 150)
    assert 0.15 <= time.monotonic() - began < 2.0


def test_a_client_that_ends_mid_header(tcp_pair: tuple[Socket, Socket]) -> None:
    client, conn = tcp_pair
    assert client.send(b"PROXY TCP4 1.2", {"block": True}) == 14
    client.close()
    with pytest.raises(HeaderFailed, match="connection ended") as info:
        read_header(conn, LONG_MS)
    assert not info.value.quiet


# -- the server ---------------------------------------------------------------------------


def greet(sock: Socket) -> None:
    """Send ``peeraddr()`` and ``peername()`` on one line, then echo until the end."""
    line = f"{sock.peeraddr()} {sock.peername()!r}\n"
    if sock.send(line, {"block": True}) < 0:
        return
    buff = Bytes(65536)
    while True:
        n, data = sock.recv(buff, None, {"block": True})
        if n <= 0 or data is None or sock.send(data, {"block": True}) < 0:
            return


def first_line(sock: Socket) -> str:
    buff = Bytes(512)
    got = b""
    while not got.endswith(b"\n"):
        n, data = sock.recv(buff, 1, {"block": True, "timeout": LONG_MS})
        assert n == 1 and data is not None, sock.last_error
        got += bytes(data)
    return got.decode()[:-1]


@pytest.fixture
def proxied() -> Iterator[Callable[..., server.Server]]:
    """``proxied(handler, **opt)``: a TCP server with ``proxy_protocol``, stopped after."""
    servers: list[server.Server] = []

    def make(handler: Callable[[Socket], object] = greet, **opt: Any) -> server.Server:
        srv = server.start(handler, "127.0.0.1", 0, {"proxy_protocol": True, **opt})
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.stop(0)


def dial(srv: server.Server) -> Socket:
    sock = socket.connect("127.0.0.1", srv.sockname()[1], {"timeout": LONG_MS})
    assert sock is not None, socket.last_error()
    return sock


@pytest.mark.parametrize(
    ("raw", "line"),
    [
        (GOOD[0][1], "192.0.2.1:56324 ('192.0.2.1', 56324)"),
        (GOOD[4][1], "203.0.113.7:4242 ('203.0.113.7', 4242)"),
        (GOOD[6][1], "[2001:db8::7]:1 ('2001:db8::7', 1, 0, 0)"),
        (GOOD[7][1], "/run/client.sock '/run/client.sock'"),
        (GOOD[8][1], "@client b'\\x00client'"),
    ],
    ids=["v1 tcp4", "v2 inet", "v2 inet6", "v2 unix", "v2 abstract"],
)
def test_the_handler_sees_the_client_from_the_header(
    raw: bytes, line: str, proxied: Callable[..., server.Server]
) -> None:
    srv = proxied()
    with dial(srv) as client:
        assert client.send(raw + b"ping", {"block": True}) == len(raw) + 4  # one write
        assert first_line(client) == line
        n, data = client.recv(Bytes(8), 4, {"block": True, "waitall": True, "timeout": LONG_MS})
        assert n == 4 and data is not None and bytes(data) == b"ping"


@pytest.mark.parametrize("raw", [LOCAL_V2, b"PROXY UNKNOWN\r\n", v2(0x1, 0x00, b"")])
def test_local_and_unknown_headers_keep_the_real_peer(
    raw: bytes, proxied: Callable[..., server.Server]
) -> None:
    srv = proxied()
    with dial(srv) as client:
        assert client.send(raw, {"block": True}) == len(raw)
        host, port = client.sockname()
        assert first_line(client) == f"{host}:{port} {(host, port)!r}"


def test_a_unix_server_reads_the_header_too(short_tmp: str) -> None:
    path = f"{short_tmp}/p.sock"
    with server.start_unix(greet, path, {"proxy_protocol": True}):
        for raw, line in (
            (GOOD[4][1], "203.0.113.7:4242 ('203.0.113.7', 4242)"),
            (LOCAL_V2, "None None"),  # an unnamed unix client, as without a header
        ):
            client = socket.connect_unix(path, {"timeout": LONG_MS})
            assert client is not None
            with client:
                assert client.send(raw, {"block": True}) == len(raw)
                assert first_line(client) == line


def test_the_address_from_the_header_ends_with_the_socket(
    proxied: Callable[..., server.Server],
) -> None:
    seen: list[Any] = []

    def handler(sock: Socket) -> None:
        seen.append(sock.peername())
        sock.close()
        seen.append((sock.peername(), sock.peeraddr()))

    srv = proxied(handler)
    with dial(srv) as client:
        client.send(GOOD[4][1], {"block": True})
        until(lambda: len(seen) == 2)
    assert seen == [("203.0.113.7", 4242), (None, None)]


def refused(
    srv: server.Server, data: bytes, caplog: pytest.LogCaptureFixture, called: list[Socket]
) -> str:
    """Send ``data``; the server must close the connection without calling the handler."""
    with caplog.at_level(logging.INFO, logger="xsock_green.server"), dial(srv) as client:
        if data:
            client.send(data, {"block": True, "timeout": LONG_MS})
        n, _ = client.recv(Bytes(64), {"block": True, "timeout": LONG_MS})
        assert n == -1, "the server should have closed the connection"
        until(lambda: srv.connections() == 0)
    assert called == []
    return "\n".join(f"{r.levelname} {r.getMessage()}" for r in caplog.records)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "bad PROXY protocol header: no PROXY"),
        (b"PROXY TCP4 " + b"9" * 200, "longer than 107 bytes"),
        (v2(0x1, 0x11, b"", length=60000), "the limit is"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nhello", "bad port"),
    ],
    ids=["http", "v1 too long", "v2 too long", "bad port"],
)
def test_a_bad_header_is_logged_and_the_handler_never_runs(
    data: bytes, text: str, proxied: Callable[..., server.Server], caplog: pytest.LogCaptureFixture
) -> None:
    called: list[Socket] = []
    srv = proxied(called.append)
    logged = refused(srv, data, caplog, called)
    assert "WARNING connection from 127.0.0.1:" in logged and text in logged, logged


def test_a_silent_client_is_closed_at_handshake_timeout(
    proxied: Callable[..., server.Server], caplog: pytest.LogCaptureFixture
) -> None:
    called: list[Socket] = []
    srv = proxied(called.append, handshake_timeout=200)
    began = time.monotonic()
    logged = refused(srv, b"", caplog, called)
    assert 0.2 <= time.monotonic() - began < 3.0
    assert "WARNING" in logged and "timed out after 200 ms" in logged, logged


def test_a_connection_that_ends_before_any_byte_is_only_info(
    proxied: Callable[..., server.Server], caplog: pytest.LogCaptureFixture
) -> None:
    called: list[Socket] = []
    srv = proxied(called.append)
    with caplog.at_level(logging.INFO, logger="xsock_green.server"):
        dial(srv).close()  # a port probe, a plain health check
        until(lambda: any("PROXY" in r.getMessage() for r in caplog.records))
        until(lambda: srv.connections() == 0)
    assert [r.levelname for r in caplog.records] == ["INFO"]
    assert "the connection ended" in caplog.records[0].getMessage()
    assert called == []


def test_stop_closes_a_connection_still_waiting_for_its_header(
    proxied: Callable[..., server.Server], caplog: pytest.LogCaptureFixture
) -> None:
    called: list[Socket] = []
    srv = proxied(called.append)
    with caplog.at_level(logging.INFO, logger="xsock_green.server"), dial(srv) as client:
        client.send(b"PROXY TCP4 ", {"block": True})
        until(lambda: srv.connections() == 1)
        assert srv.stop(0) == 1
        n, _ = client.recv(Bytes(8), {"block": True, "timeout": LONG_MS})
        assert n == -1
    assert called == []


def test_without_the_option_the_header_reaches_the_handler(started_plain: server.Server) -> None:
    with dial(started_plain) as client:
        client.send(GOOD[0][1], {"block": True})
        host, port = client.sockname()
        assert first_line(client) == f"{host}:{port} {(host, port)!r}"
        got = client.recv(Bytes(64), len(GOOD[0][1]), {"block": True, "waitall": True})
        assert got[1] is not None and bytes(got[1]) == GOOD[0][1]


@pytest.fixture
def started_plain() -> Iterator[server.Server]:
    with server.start(greet, "127.0.0.1", 0) as srv:
        yield srv


def test_udp_servers_ignore_the_option() -> None:
    def echo(sock: Socket, data: Bytes, addr: str, port: int) -> None:
        sock.sendto(data, addr, port, {"block": True})

    with server.start_udp(echo, "127.0.0.1", 0, {"proxy_protocol": True}) as srv:
        client = socket.udp()
        with client:
            assert client.sendto(b"PROXY?", "127.0.0.1", srv.sockname()[1], {"block": True}) == 6
            n, data, _, _ = client.recvfrom(Bytes(64), {"block": True, "timeout": LONG_MS})
            assert n == 6 and data is not None and bytes(data) == b"PROXY?"


@pytest.mark.parametrize(
    ("opt", "error", "text"),
    [
        ({"proxy_protocol": 1}, TypeError, "'proxy_protocol' must be a bool"),
        ({"handshake_timeout": -5}, ValueError, "handshake_timeout"),
        ({"handshake_timeout": "1s"}, TypeError, "handshake_timeout"),
        ({"proxy_protocl": True}, TypeError, "did you mean 'proxy_protocol'"),
    ],
)
def test_the_options_are_checked(opt: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        server.start(greet, "127.0.0.1", 0, opt)
    with pytest.raises(error, match=text):
        server.run(greet, "127.0.0.1", 0, opt)


# -- workers and the command line ------------------------------------------------------------


def test_echo_server_with_two_workers_and_proxy_protocol() -> None:
    args = [*XSOCK, "echo-server", "--tcp", "127.0.0.1:0", "--workers", "2"]
    with Session([*args, "--proxy-protocol", "-v"]) as srv:
        port = srv.port()
        for i in range(8):
            header = f"PROXY TCP4 203.0.113.{i} 10.0.0.1 {4000 + i} 443\r\n".encode()
            with std_socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(header + b"hello")  # one write
                assert client.recv(5, std_socket.MSG_WAITALL) == b"hello"
        with std_socket.create_connection(("127.0.0.1", port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.0\r\n\r\n")
            # Closed with the refused bytes unread: the kernel may send a reset.
            try:
                assert client.recv(64) == b""
            except ConnectionResetError:
                pass
        srv.proc.terminate()
        status, _rest, err = srv.finish()
    assert status == 0, err
    for i in range(8):
        assert f" from 203.0.113.{i}:{4000 + i}\n" in err, err
    assert "bad PROXY protocol header: no PROXY protocol header" in err, err
    assert "Traceback" not in err
