"""``Reader`` (buffered lines and frames) and ``socket.last_error()``.

A reader with a tiny receive ``size`` makes every line span many receives
without any timing: a ``Reader(sock, 1)`` gets one byte per ``recv``.  Each
body runs from the main greenlet and from a spawned one (the ``run``
fixture).  Speed is measured by ``python -m bench.reader``, not here.
"""

from __future__ import annotations

import gc
import os
import time
import weakref
from collections.abc import Callable, Iterator

import gevent
import pytest
from conftest import Runner
from gevent.event import Event

import xsock_green
from xsock_green import Reader, Socket, SocketError, socket

Spawn = Callable[..., gevent.Greenlet]


def send(sock: Socket, data: bytes) -> None:
    assert sock.send(data, {"block": True, "timeout": 5000}) == len(data)


@pytest.fixture
def unix_pair(short_tmp: str) -> Iterator[tuple[Socket, Socket]]:
    path = os.path.join(short_tmp, "r.sock")
    srv = socket.bind_unix(path)
    assert srv.listen(4)
    client = socket.connect_unix(path)
    assert client is not None
    server = srv.accept()
    assert server is not None
    srv.close()
    yield client, server
    client.close()
    server.close()


# -- lines ------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 3, 7, 65536])
def test_lines_split_across_many_receives(
    run: Runner, tcp_pair: tuple[Socket, Socket], size: int
) -> None:
    client, server = tcp_pair
    lines = [b"hello\n", b"\n", b"a somewhat longer line of text\n", b"x" * 100 + b"\n"]
    send(client, b"".join(lines))
    reader = Reader(server, size)

    def body() -> None:
        for line in lines:
            assert reader.readline() == (len(line), line)
            assert reader.last_error is None
        assert reader.buffered() == b""

    run(body)


def test_lines_fed_piece_by_piece(
    run: Runner, unix_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    client, server = unix_pair
    stream = b"".join(b"line %d\r\n" % i for i in range(50))

    def feed() -> None:
        for i in range(0, len(stream), 5):
            send(client, stream[i : i + 5])
            gevent.idle()  # let the reader take this piece before the next

    spawn(feed)
    reader = Reader(server, 4)

    def body() -> list[bytes]:
        got = []
        for _ in range(50):
            n, data = reader.readuntil(b"\r\n", 64, {"timeout": 5000})
            assert data is not None and n == len(data)
            got.append(data)
        return got

    assert run(body) == [b"line %d\r\n" % i for i in range(50)]


def test_crlf_separator_split_between_receives(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    send(client, b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest")
    reader = Reader(server, 1)  # "\r" and "\n" always arrive in different receives

    def body() -> None:
        assert reader.readuntil("\r\n") == (16, b"GET / HTTP/1.1\r\n")
        assert reader.readuntil(b"\r\n") == (9, b"Host: x\r\n")
        assert reader.readuntil(bytearray(b"\r\n")) == (2, b"\r\n")
        assert reader.read(10) == (1, b"r")  # one receive brought one byte

    run(body)


def test_readuntil_multibyte_separator_not_found_early(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    send(client, b"ab-x-y-ab--cd--")
    reader = Reader(server, 2)

    def body() -> None:
        assert reader.readuntil(b"--") == (11, b"ab-x-y-ab--")
        assert reader.readuntil(b"--") == (4, b"cd--")

    run(body)


def test_line_of_exactly_limit_bytes(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    send(client, b"123456789\n" + b"abcd\r\n")
    reader = Reader(server, 3)

    def body() -> None:
        assert reader.readline(10) == (10, b"123456789\n")
        assert reader.readuntil(b"\r\n", 6) == (6, b"abcd\r\n")

    run(body)


def test_line_over_limit_fails_and_consumes_nothing(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    # Exactly `limit` bytes without a newline and nothing after them: the call
    # must fail as soon as they are buffered, not wait for more.
    send(client, b"0123456789")
    reader = Reader(server, 4)

    def body() -> None:
        assert reader.readline(10, {"timeout": 5000}) == (-1, None)
        err = reader.last_error
        assert isinstance(err, SocketError)
        assert "within the limit of 10 bytes" in str(err)
        assert reader.buffered() == b"0123456789"
        assert reader.readline(9) == (-1, None)  # already over: no wait at all
        # Nothing was consumed: a larger limit gets the whole line.
        send(client, b"abc\n")
        assert reader.readline(20) == (14, b"0123456789abc\n")
        assert reader.last_error is None

    run(body)


def test_end_of_stream_in_the_middle_of_a_line(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    send(client, b"whole\npart")
    client.close()
    reader = Reader(server, 3)

    def body() -> None:
        assert reader.readline() == (6, b"whole\n")
        assert reader.readline() == (-1, None)
        assert "end of stream" in str(reader.last_error)
        assert reader.buffered() == b"part"
        assert reader.readexactly(5) == (-1, None)
        assert reader.buffered() == b"part"
        # read() still hands out what is buffered, then reports the end.
        assert reader.read(3) == (3, b"par")
        assert reader.read(3) == (1, b"t")
        assert reader.read(3) == (-1, None)
        assert reader.buffered() == b""

    run(body)


def test_readexactly_across_receives(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    client, server = tcp_pair
    payload = bytes(range(256)) * 40

    def feed() -> None:
        for i in range(0, len(payload), 1000):
            send(client, payload[i : i + 1000])
            gevent.idle()

    spawn(feed)
    reader = Reader(server, 333)

    def body() -> None:
        assert reader.readexactly(5) == (5, payload[:5])
        assert reader.readexactly(len(payload) - 5) == (len(payload) - 5, payload[5:])
        assert reader.readexactly(0) == (0, b"")

    run(body)


def test_many_lines_from_one_receive_then_a_large_frame(
    run: Runner, unix_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    client, server = unix_pair
    lines = [b"%05d\n" % i for i in range(2000)]
    frame = os.urandom(300_000)
    spawn(send, client, b"".join(lines) + frame)
    reader = Reader(server, 4096)

    def body() -> None:
        for line in lines:
            assert reader.readline() == (6, line)
        assert reader.readexactly(len(frame)) == (len(frame), frame)

    run(body)


# -- timeouts ---------------------------------------------------------------


def test_timeout_consumes_nothing_and_a_later_call_gets_the_line(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    send(client, b"par")
    reader = Reader(server, 2)

    def body() -> None:
        started = time.monotonic()
        assert reader.readline({"timeout": 60}) == (0, None)
        elapsed = time.monotonic() - started
        assert 0.05 <= elapsed < 2.0, elapsed
        assert "readline timeout" in str(reader.last_error)
        assert reader.buffered() == b"par"
        assert reader.readexactly(4, timeout=0) == (0, None)
        assert reader.buffered() == b"par"
        send(client, b"tial\nmore")
        assert reader.readline() == (8, b"partial\n")
        assert reader.last_error is None
        assert reader.buffered() == b"m"  # size 2: "\nm" came in one receive

    run(body)


def test_timeout_is_a_deadline_for_the_whole_call(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    client, server = tcp_pair
    stop = Event()

    def trickle() -> None:  # a byte every 20 ms, never a newline
        for _ in range(200):
            if stop.wait(0.02):
                return
            send(client, b"x")

    spawn(trickle)
    reader = Reader(server)

    def body() -> None:
        started = time.monotonic()
        try:
            assert reader.readline({"timeout": 150}) == (0, None)
        finally:
            stop.set()
        elapsed = time.monotonic() - started
        assert 0.14 <= elapsed < 1.5, elapsed
        assert reader.buffered().count(b"x") >= 1

    run(body)


def test_read_returns_buffered_bytes_at_once(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    reader = Reader(server)

    def body() -> None:
        assert reader.read(10, {"timeout": 0}) == (0, None)
        assert reader.read(0) == (0, b"")
        send(client, b"one\ntwo")
        assert reader.readline() == (4, b"one\n")
        # "two" is buffered: returned at once, even with timeout 0.
        assert reader.read(100, timeout=0) == (3, b"two")
        send(client, b"three")
        assert reader.read(2) == (2, b"th")
        assert reader.read(100) == (3, b"ree")

    run(body)


def test_gevent_timeout_propagates_and_the_reader_stays_usable(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    send(client, b"half")
    reader = Reader(server, 2)

    def body() -> None:
        with pytest.raises(gevent.Timeout), gevent.Timeout(0.05):
            reader.readline()
        assert reader.buffered() == b"half"
        send(client, b" and half\n")
        assert reader.readline() == (14, b"half and half\n")

    run(body)


def test_close_from_another_greenlet_wakes_the_reader(
    tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    _client, server = tcp_pair
    reader = Reader(server)
    waiting = Event()

    def read() -> tuple[int, bytes | None]:
        waiting.set()
        return reader.readline()

    glet = spawn(read)
    waiting.wait(5)
    gevent.idle()
    server.close()
    assert glet.get(timeout=5) == (-1, None)
    assert "has been closed" in str(reader.last_error)


# -- misuse -----------------------------------------------------------------


def test_misuse_raises(tcp_pair: tuple[Socket, Socket]) -> None:
    _client, server = tcp_pair
    reader = Reader(server)
    with pytest.raises(ValueError, match="empty"):
        reader.readuntil(b"")
    with pytest.raises(ValueError, match="shorter than the separator"):
        reader.readuntil(b"\r\n", 1)
    with pytest.raises(ValueError, match="limit"):
        reader.readline(0)
    with pytest.raises(TypeError, match="did you mean 'timeout'"):
        reader.readline(10, {"timout": 5})
    with pytest.raises(TypeError, match="sep must be bytes"):
        reader.readuntil(10)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        reader.readexactly(-1)
    with pytest.raises(ValueError):
        reader.read(-1)
    with pytest.raises(TypeError, match="stream sockets"), socket.udp() as udp:
        Reader(udp)
    with pytest.raises(TypeError, match="xsock_green socket"):
        Reader(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Reader(server, 0)
    assert reader.sock is server
    assert "buffered=0" in repr(reader)


# -- socket.last_error() ----------------------------------------------------


def refused_port() -> int:
    """A loopback port nobody listens on (bound, never listening)."""
    holder = socket.bind("127.0.0.1", 0)
    port: int = holder.sockname()[1]
    holder.close()
    return port


def test_module_connect_keeps_its_reason(run: Runner, listener: Socket) -> None:
    port = refused_port()

    def body() -> None:
        assert socket.connect("127.0.0.1", port) is None
        err = socket.last_error()
        assert isinstance(err, SocketError)
        assert "connection refused" in str(err) and str(err).startswith("<socket: tcp4/")
        sock = socket.connect("127.0.0.1", listener.sockname()[1])
        assert sock is not None
        sock.close()
        assert socket.last_error() is None

    run(body)


def test_module_connect_unix_keeps_its_reason(short_tmp: str) -> None:
    assert socket.connect_unix(os.path.join(short_tmp, "missing.sock")) is None
    assert "no such file" in str(socket.last_error())


def test_module_connect_timeout_has_a_reason(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "full.sock")
    srv = socket.bind_unix(path)
    assert srv.listen(0)
    pending = []
    try:
        for _ in range(16):  # a unix backlog fills after a connection or two
            sock = socket.connect_unix(path, {"timeout": 20})
            if sock is None:
                break
            pending.append(sock)
        assert sock is None
        assert "connect timed out" in str(socket.last_error())
    finally:
        for s in pending:
            s.close()
        srv.close()


def test_last_error_is_per_greenlet(listener: Socket) -> None:
    port = refused_port()
    failed = Event()
    checked = Event()

    def failing() -> str:
        assert socket.connect("127.0.0.1", port) is None
        failed.set()
        checked.wait(5)
        return str(socket.last_error())

    glet = gevent.spawn(failing)
    try:
        failed.wait(5)
        sock = socket.connect("127.0.0.1", listener.sockname()[1])
        assert sock is not None
        sock.close()
        assert socket.last_error() is None
        checked.set()
        assert "connection refused" in glet.get(timeout=5)
    finally:
        glet.kill()


def test_last_error_does_not_keep_greenlets_alive() -> None:
    port = refused_port()

    def failing() -> bool:
        return socket.connect("127.0.0.1", port) is None and socket.last_error() is not None

    glets = [gevent.spawn(failing) for _ in range(20)]
    gevent.joinall(glets, timeout=10)
    assert all(g.value for g in glets)
    refs = [weakref.ref(g) for g in glets]
    del glets
    gevent.idle()  # the hub still holds the last one's link callback
    gc.collect()
    assert all(ref() is None for ref in refs)


def test_reader_is_public() -> None:
    assert xsock_green.Reader is Reader and "Reader" in xsock_green.__all__
    assert socket.last_error in vars(socket).values() and "last_error" in socket.__all__
