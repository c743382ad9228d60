"""SPEC section 2 and 4: nothing leaks.

Thousands of open/connect/close cycles, with and without waiters, leave the
process's descriptor count and the hub's active watcher count where they
started.  A socket nobody closed is closed when it is garbage collected,
with a ``ResourceWarning`` (pyproject turns that warning into an error, so
the tests catch it locally).
"""

from __future__ import annotations

import errno
import gc
import os
import socket as std_socket
import sys
import time
import weakref
from collections.abc import Callable

import gevent
import pytest
from conftest import Runner, pair

from xsock_green import Bytes, Socket, socket

CYCLES = 10_000
WAIT_CYCLES = 2_000


pytestmark = pytest.mark.usefixtures("no_hub_traceback")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def active_watchers() -> int:
    return int(gevent.get_hub().loop.activecnt)


def assert_closed(fd: int) -> None:
    """``fd`` is not open (checked at once: nothing else may take the number)."""
    with pytest.raises(OSError) as err:
        os.fstat(fd)
    assert err.value.errno == errno.EBADF


def test_open_connect_close_cycles_leak_nothing(run: Runner, listener: Socket) -> None:
    port = listener.sockname()[1]

    def body() -> float:
        fds, watchers = fd_count(), active_watchers()
        started = time.perf_counter()
        for i in range(CYCLES):
            client = socket.tcp()
            assert client.connect("127.0.0.1", port, timeout=5000) == 1, client.last_error
            server = listener.accept(timeout=5000)
            assert server is not None, listener.last_error
            # Close the accepting side first: TIME_WAIT then stays on the
            # server side and never holds the client's ephemeral ports.
            assert server.close() is True
            assert client.close() is True
            if i % 1000 == 0:
                assert active_watchers() == watchers
        elapsed = time.perf_counter() - started
        assert fd_count() == fds
        assert active_watchers() == watchers
        return elapsed

    elapsed = run(body)
    print(f"{CYCLES} open/connect/accept/close cycles in {elapsed:.2f} s")


def test_cycles_with_waiters_and_wakeups_leak_nothing(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        fds, watchers = fd_count(), active_watchers()
        for i in range(WAIT_CYCLES):
            client, server = pair(listener)
            reader = spawn(server.recv, Bytes(8), {"block": True, "timeout": 5000})
            gevent.idle()
            assert client.send("x", block=True) == 1
            assert reader.get(timeout=5)[0] == 1
            if i % 2:
                # Closed under a waiter that has a deadline.
                waiter = spawn(server.wait, socket.EV_RECV, 5000)
                gevent.idle()
                assert server.close() is True
                assert waiter.get(timeout=5) == -1
                client.close()
            else:
                # The peer hangs up under a waiter: end of stream.
                waiter = spawn(server.recv, Bytes(8), {"block": True})
                gevent.idle()
                assert client.close() is True
                assert waiter.get(timeout=5) == (-1, None)
                server.close()
        gevent.idle()
        assert fd_count() == fds
        assert active_watchers() == watchers

    run(body)


def make_unclosed(kind: str, listener: Socket) -> tuple[list[Socket], list[Socket]]:
    """Sockets to drop unclosed, and sockets to close properly afterwards."""
    if kind == "fresh":
        return [socket.tcp()], []
    if kind == "listener":
        lst = socket.bind("127.0.0.1", 0)
        assert lst.listen(4)
        assert lst.accept(timeout=1) is None  # it has a watcher now
        return [lst], []
    client, server = pair(listener)
    # Both have waited once, so both own watchers.
    with pytest.raises(TimeoutError):
        server.recv(Bytes(4), block=True, timeout=1)
    assert client.wait(socket.EV_SEND, 1000) == socket.EV_SEND
    if kind == "connected":
        return [client, server], []
    return [server], [client]  # "peer-open": the peer sees the end


@pytest.mark.parametrize("kind", ["fresh", "listener", "connected", "peer-open"])
def test_unclosed_socket_is_closed_on_collection_with_warning(
    run: Runner, listener: Socket, kind: str
) -> None:
    def body() -> None:
        fds, watchers = fd_count(), active_watchers()
        dropped, kept = make_unclosed(kind, listener)
        numbers = [s.rawfd() for s in dropped]
        with pytest.warns(ResourceWarning, match="unclosed") as record:
            dropped.clear()
            gc.collect()
        assert len(record) == len(numbers)
        for fd in numbers:
            assert_closed(fd)
        assert active_watchers() == watchers
        if kept:
            (peer,) = kept
            assert peer.recv(Bytes(4), None, {"block": True, "timeout": 5000}) == (-1, None)
            peer.close()
        assert fd_count() == fds

    run(body)


def test_objects_give_back_their_class(tcp_pair: tuple[Socket, Socket]) -> None:
    """Every object holds a reference to its class and gives it back when it
    dies: ``Bytes`` and ``Socket`` extend compiled classes, whose deallocator
    (mypyc's) kept it until setup.py's build patched it."""
    client, server = tcp_pair
    gc.collect()  # what earlier tests left is freed before, not during
    before = sys.getrefcount(Bytes), sys.getrefcount(Socket)
    buff = Bytes(8)
    for _ in range(1000):
        Bytes(8).slice(2, 3)
        client.send(b"abcd", block=True)
        server.recv(buff, 8, block=True)
        socket.tcp().close()
    del buff
    gc.collect()
    assert (sys.getrefcount(Bytes), sys.getrefcount(Socket)) == before

    def dropped(base: type) -> weakref.ref[type]:
        class Mine(base):  # type: ignore[misc]
            __slots__ = ()

        if base is Bytes:
            Mine(4)
        else:
            Mine(socket.TCP, socket.IPV4, std_socket.socket()).close()
        return weakref.ref(Mine)

    classes = [dropped(Bytes), dropped(Socket)]
    gc.collect()
    assert [ref() for ref in classes] == [None, None], "a class outlived its only object"
