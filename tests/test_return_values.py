"""xmake's return-value table, call by call (SPEC section 4)."""

from __future__ import annotations

import errno
import re
import time

import gevent
import pytest
from conftest import Runner

import xsock_green
from xsock_green import Bytes, Socket, socket


def test_would_block_gives_zero(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    assert client.recv(Bytes(16), 16) == (0, None)
    assert client.last_error is None
    udp = socket.udp()
    udp.bind("127.0.0.1", 0)
    assert udp.recvfrom(Bytes(16), 16) == (0, None, None, None)
    udp.close()


def test_send_would_block_gives_zero(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    chunk = b"x" * 65536
    total = 0
    for _ in range(10_000):  # the peer never reads: the buffers fill up
        n = client.send(chunk)
        if n == 0:
            break
        assert n > 0
        total += n
    else:
        pytest.fail("send never reported would-block")
    assert total > 0


def test_end_of_stream_is_minus_one_both_modes(run: Runner, listener: Socket) -> None:
    def body() -> None:
        for block in (False, True):
            port = listener.sockname()[1]
            client = socket.connect("127.0.0.1", port)
            server = listener.accept()
            assert client is not None and server is not None
            client.send("bye", {"block": True})
            client.close()
            buff = Bytes(16)
            n, data = server.recv(buff, 16, {"block": True})
            assert (n, bytes(data or b"")) == (3, b"bye")
            if not block:
                assert server.wait(socket.EV_RECV, 5000) == socket.EV_RECV
            assert server.recv(buff, 16, {"block": block}) == (-1, None)
            assert str(server.last_error).endswith(": end of stream")
            assert server.recv(buff, 16, {"block": block}) == (-1, None)  # and again
            assert str(server.last_error).endswith(": end of stream")
            server.close()

    run(body)


def test_end_of_stream_inside_waitall_says_how_much_came(run: Runner, listener: Socket) -> None:
    def body() -> None:
        client = socket.connect("127.0.0.1", listener.sockname()[1])
        server = listener.accept()
        assert client is not None and server is not None
        with server:
            client.send("abcd", {"block": True})
            client.close()
            buff = Bytes(10)
            assert server.recv(buff, 10, {"block": True, "waitall": True}) == (-1, None)
            assert str(server.last_error).endswith(": end of stream after 4 of 10 bytes")
            assert bytes(buff)[:4] == b"abcd"

    run(body)


def test_refused_connect(run: Runner) -> None:
    # A port that was bound and never listened refuses connections.
    holder = socket.bind("127.0.0.1", 0)
    port = holder.sockname()[1]

    def body() -> None:
        sock = socket.tcp()
        assert sock.connect("127.0.0.1", port) == -1
        err = sock.last_error
        assert isinstance(err, OSError) and err.errno == errno.ECONNREFUSED
        assert re.fullmatch(r"<socket: tcp4/\d+>: connection refused", str(err))
        sock.close()
        assert socket.connect("127.0.0.1", port) is None

    run(body)
    holder.close()


def test_accept_timeout_returns_none(run: Runner, listener: Socket) -> None:
    def body() -> None:
        start = time.monotonic()
        assert listener.accept({"timeout": 50}) is None
        elapsed = time.monotonic() - start
        assert 0.045 <= elapsed < 2.0
        assert listener.accept(timeout=0) is None

    run(body)


def test_wait_timeout_returns_zero(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair

    def body() -> None:
        start = time.monotonic()
        assert client.wait(socket.EV_RECV, 50) == 0
        assert 0.045 <= time.monotonic() - start < 2.0
        assert client.wait(socket.EV_RECV, 0) == 0  # 0 polls, everywhere

    run(body)


def test_wait_returns_only_asked_bits(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    server.send("x", {"block": True})
    assert client.wait(socket.EV_RECV | socket.EV_SEND, 1000) == socket.EV_RECV | socket.EV_SEND
    assert client.wait(socket.EV_SEND, 1000) == socket.EV_SEND
    assert client.wait(socket.EV_RECV, 1000) == socket.EV_RECV
    assert server.wait(socket.EV_RECV, 0) == 0


def test_block_recv_timeout_raises_with_moved(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair

    def body() -> None:
        server.send("abc", {"block": True})
        with pytest.raises(xsock_green.TimeoutError) as info:
            client.recv(Bytes(10), 10, {"block": True, "waitall": True, "timeout": 50})
        assert info.value.moved == 3
        assert isinstance(info.value, TimeoutError)
        with pytest.raises(xsock_green.TimeoutError) as info:
            client.recv(Bytes(10), 10, {"block": True, "timeout": 0})
        assert info.value.moved == 0

    run(body)


def test_block_send_timeout_raises_with_moved(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    payload = b"y" * (64 << 20)  # far more than the socket buffers hold
    with pytest.raises(xsock_green.TimeoutError) as info:
        client.send(payload, {"block": True, "timeout": 50})
    assert 0 < info.value.moved < len(payload)


def test_timeout_is_a_deadline_for_the_whole_call(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair

    def trickle() -> None:
        # A byte every 20 ms: each is well inside a 100 ms per-wait limit.
        for _ in range(30):
            if server.send("z", {"block": True}) != 1:
                return
            gevent.sleep(0.02)

    def body() -> None:
        start = time.monotonic()
        with pytest.raises(xsock_green.TimeoutError) as info:
            client.recv(Bytes(100), 100, {"block": True, "waitall": True, "timeout": 100})
        elapsed = time.monotonic() - start
        assert 0.095 <= elapsed < 0.5
        assert 1 <= info.value.moved < 30

    feeder = gevent.spawn(trickle)
    try:
        run(body)
    finally:
        feeder.kill()


def test_udp_block_timeouts_return_zero(run: Runner) -> None:
    sock = socket.udp()
    sock.bind("127.0.0.1", 0)

    def body() -> None:
        assert sock.recvfrom(Bytes(8), 8, {"block": True, "timeout": 20}) == (0, None, None, None)
        assert sock.last_error is None

    run(body)
    sock.close()


def test_connect_timeout_returns_zero(run: Runner) -> None:
    # A listener with a full backlog leaves further connects pending.
    server = socket.bind("127.0.0.1", 0)
    server.listen(0)
    port = server.sockname()[1]
    held: list[Socket] = []

    def body() -> None:
        result = 1
        for _ in range(64):
            sock = socket.tcp()
            result = sock.connect("127.0.0.1", port, {"timeout": 30})
            held.append(sock)
            if result == 0:
                break
        assert result == 0

    try:
        run(body)
    finally:
        for sock in held:
            sock.close()
        server.close()


def test_last_error_reads_like_xmake_and_clears(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _server = tcp_pair
    udp = socket.udp()
    assert udp.bind("192.0.2.1", 0) is False  # not an address of this machine
    assert re.fullmatch(r"<socket: udp4/\d+>: .+", str(udp.last_error))
    assert udp.bind("127.0.0.1", 0) is True
    assert udp.last_error is None
    udp.close()
    assert client.send("ok") == 2
    assert client.last_error is None


def test_send_empty_range_sends_nothing(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    assert client.send("") == 0
    assert client.send("abc", {"start": 4}) == 0
    assert client.send("abcdef", {"start": 2, "last": 4, "block": True}) == 3
    _n, data = server.recv(Bytes(8), 8, {"block": True, "waitall": False})
    assert data == b"bcd"


def test_recv_start_fills_the_right_place(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    buff = Bytes(10, "-")
    client.send("abc", {"block": True})
    n, data = server.recv(buff, 5, {"block": True, "start": 4, "waitall": False})
    assert n == 3 and data == b"abc"
    assert buff.str() == "---abc----"


def test_kill_and_close_results(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    assert client.kill() is True
    assert server.recv(Bytes(4), 4, {"block": True}) == (-1, None)
    assert client.close() is True
    assert client.close() is False
    assert client.kill() is False


def test_received_views_keep_their_range(tcp_pair: tuple[Socket, Socket]) -> None:
    # A receive into the whole buffer may give back the view it gave last
    # time (same range, same memory): a view never changes its range, shows
    # what the buffer holds now, and a different range is a different view.
    client, server = tcp_pair
    buff = Bytes(8)

    def recv(size: int = 8, **opt: object) -> Bytes:
        n, data = server.recv(buff, size, block=True, **opt)
        assert data is not None and n == len(data)
        return data

    client.send(b"abcd", block=True)
    first = recv()
    client.send(b"efgh", block=True)
    second = recv()
    assert bytes(first) == bytes(second) == b"efgh"  # both show the buffer now
    client.send(b"ij", block=True)
    third = recv()
    assert third is not first and bytes(third) == b"ij"
    assert len(first) == len(second) == 4 and bytes(first) == b"ijgh"
    client.send(b"klmnopqr", block=True)
    assert server.recv(buff, 8, {"block": True, "waitall": True})[1] == b"klmnopqr"
    client.send(b"st", block=True)
    part = recv(2, start=3)  # another place: a view of bytes 3-4, not 1-2
    assert bytes(part) == b"st" and bytes(buff) == b"klstopqr" and bytes(third) == b"kl"
    client.send(b"uv", block=True)
    assert bytes(recv(4)) == b"uv" and bytes(third) == b"uv"
    assert isinstance(third, Bytes) and not third.readonly()

    a, b = socket.udp(), socket.udp()
    try:
        assert b.bind("127.0.0.1", 0)
        port = b.sockname()[1]
        got = []
        for message in (b"one", b"two", b"three"):
            assert a.sendto(message, "127.0.0.1", port, block=True) == len(message)
            _, data, _, _ = b.recvfrom(buff, 8, block=True)
            assert data is not None and bytes(data) == message
            got.append(data)
        assert [len(d) for d in got] == [3, 3, 5] and bytes(got[0]) == b"thr"
    finally:
        a.close()
        b.close()
