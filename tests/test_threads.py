"""SPEC section 2: a socket belongs to the hub of the thread that created it.

Threads here are real OS threads (this test process is never monkey-patched).
A socket used from a foreign thread raises ``WrongThreadError`` before it
touches its own hub: nothing is started on that hub and the socket keeps
working in its thread.  Every thread runs its own hub, and its own sockets
work there, at the same time as the main thread's.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
from conftest import Runner, pair

from xsock_green import Bytes, Socket, WrongThreadError, socket


@pytest.fixture(autouse=True)
def no_hub_traceback(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fail the test if anything (the hub's error handler) printed a traceback."""
    yield
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    assert "Traceback" not in err, err


def in_thread(fn: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Run ``fn`` in a new real thread; return its result or raise its exception."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as exc:
            outcome.append(("raised", exc))

    thread = threading.Thread(target=target, name="xsock-test")
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the thread hung"
    kind, value = outcome[0]
    if kind == "raised":
        raise value
    return value


def echo_once(listener: Socket, message: bytes) -> bytes:
    """A client greenlet and a server greenlet in the current thread's hub."""

    def serve() -> None:
        conn = listener.accept(timeout=5000)
        assert conn is not None, listener.last_error
        with conn:
            buff = Bytes(256)
            n, data = conn.recv(buff, None, {"block": True, "timeout": 5000})
            assert n > 0 and data is not None
            assert conn.send(data, block=True, timeout=5000) == n

    server = gevent.spawn(serve)
    try:
        client = socket.connect("127.0.0.1", listener.sockname()[1], timeout=5000)
        assert client is not None
        with client:
            assert client.send(message, block=True) == len(message)
            buff = Bytes(256)
            _, data = client.recv(
                buff, len(message), {"block": True, "waitall": True, "timeout": 5000}
            )
            assert data is not None
            server.get(timeout=5)
            return bytes(data)
    finally:
        server.kill()


def foreign_calls(client: Socket, server: Socket, listener: Socket) -> dict[str, Callable[[], Any]]:
    buff = Bytes(16)
    return {
        "recv-block": lambda: server.recv(buff, None, {"block": True}),
        "recv": lambda: server.recv(buff),
        "send-block": lambda: client.send("x", block=True),
        "send": lambda: client.send("x"),
        "accept": lambda: listener.accept(),
        "wait": lambda: server.wait(socket.EV_RECV, 1000),
        "connect": lambda: client.connect("127.0.0.1", listener.sockname()[1]),
        "sendfile": lambda: client.sendfile(__file__),
        "ctrl": lambda: client.ctrl(socket.CTRL_SET_TCP_NODELAY, True),
        "kill": lambda: server.kill(),
        "close": lambda: server.close(),
    }


@pytest.mark.parametrize(
    "op",
    [
        "recv-block",
        "recv",
        "send-block",
        "send",
        "accept",
        "wait",
        "connect",
        "sendfile",
        "ctrl",
        "kill",
        "close",
    ],
)
def test_use_from_another_thread_raises_before_touching_the_hub(
    run: Runner, listener: Socket, op: str
) -> None:
    def body() -> None:
        loop = gevent.get_hub().loop
        client, server = pair(listener)
        with client, server:
            call = foreign_calls(client, server, listener)[op]
            active = loop.activecnt
            pending = loop.pendingcnt
            with pytest.raises(WrongThreadError, match="thread"):
                in_thread(call)
            # Nothing was started on (or queued for) this thread's hub.
            assert loop.activecnt == active
            assert loop.pendingcnt == pending
            # The sockets are still open and work in their own thread.
            assert client.rawfd() >= 0 and server.rawfd() >= 0
            assert client.send("still here", block=True) == 10
            n, data = server.recv(Bytes(16), None, {"block": True, "timeout": 2000})
            assert data is not None and (n, bytes(data)) == (10, b"still here")

    run(body)


def test_socket_made_in_a_thread_is_refused_in_the_main_thread(run: Runner) -> None:
    def make() -> Socket:
        sock = socket.tcp()
        gevent.get_hub().destroy(destroy_loop=True)
        return sock

    holder = [in_thread(make)]
    fd = holder[0].rawfd()

    def body() -> None:
        sock = holder[0]
        with pytest.raises(WrongThreadError):
            sock.wait(socket.EV_SEND, 10)
        with pytest.raises(WrongThreadError):
            sock.close()
        assert sock.rawfd() == fd

    run(body)
    # Its thread and hub are gone; the finaliser still releases the
    # descriptor (without touching the dead hub), with a ResourceWarning.
    with pytest.warns(ResourceWarning):
        holder.clear()
        gc.collect()
    with pytest.raises(OSError) as err:
        os.fstat(fd)
    assert err.value.errno == errno.EBADF


def test_each_thread_uses_its_own_sockets(run: Runner, listener: Socket) -> None:
    threads = 4
    barrier = threading.Barrier(threads, timeout=10)

    def worker(i: int) -> list[bytes]:
        barrier.wait()  # all threads use their hubs at the same time
        got: list[bytes] = []
        try:
            with socket.bind("127.0.0.1", 0) as lst:
                assert lst.listen(8)
                for round_ in range(20):
                    got.append(echo_once(lst, f"thread {i} round {round_}".encode()))
        finally:
            gevent.get_hub().destroy(destroy_loop=True)
        return got

    results: list[Any] = [None] * threads
    errors: list[BaseException] = []

    def target(i: int) -> None:
        try:
            results[i] = worker(i)
        except BaseException as exc:
            errors.append(exc)

    def body() -> None:
        pool = [threading.Thread(target=target, args=(i,)) for i in range(threads)]
        for t in pool:
            t.start()
        try:
            # Meanwhile this thread's own sockets keep working.
            for round_ in range(20):
                assert echo_once(listener, f"main {round_}".encode()) == f"main {round_}".encode()
        finally:
            for t in pool:
                t.join(10)
        assert not any(t.is_alive() for t in pool), "a thread hung"

    run(body)
    assert not errors, errors
    for i, got in enumerate(results):
        assert got == [f"thread {i} round {r}".encode() for r in range(20)]
