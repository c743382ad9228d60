"""SPEC section 2 between greenlets: close, kill, busy directions, timeouts, fairness.

Every waiting call here is woken by something another greenlet does (a
close, a kill, a ``gevent.Timeout``, a peer) and must come back with
xmake's failure value, promptly, without the hub printing a traceback and
without leaving a watcher behind.  Bodies run from the main greenlet and
from a spawned greenlet (the ``run`` fixture).  The fairness tests move
64 MiB through a socket whose peer is another process that reads or writes
as fast as it can, while a ticker greenlet checks that it still gets turns.
"""

from __future__ import annotations

import itertools
import os
import select
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.event
import pytest
from conftest import Runner, from_hub, own_clock, pair

from xsock_green import BusyError, Bytes, HubWaitError, Socket, socket

#: SPEC: a close wakes every waiter "well under 100 ms".
WAKE_LIMIT = 0.1
#: A timeout long enough that it is never what ends the wait.
LONG_MS = 5000
ROUNDS = 5
SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")


pytestmark = pytest.mark.usefixtures("no_hub_traceback")


def active_watchers() -> int:
    return int(gevent.get_hub().loop.activecnt)


def with_timeout(opt: dict[str, Any], timeout: int | None) -> dict[str, Any]:
    return opt if timeout is None else {**opt, "timeout": timeout}


def fill_send_buffer(sock: Socket) -> int:
    """Send without blocking until the kernel takes nothing more; returns the bytes sent."""
    chunk = bytes(65536)
    total = 0
    for _ in range(4096):
        n = sock.send(chunk)
        assert n >= 0, sock.last_error
        if n == 0:
            return total
        total += n
    raise AssertionError("the send buffer never filled")


def full_tcp_backlog() -> tuple[Socket, Socket, int]:
    """A listener that never accepts and whose accept queue is full.

    ``listen(0)`` lets one connection queue; once it is queued (the listener
    reads as ready) the kernel drops further SYNs, so a new connect stays
    pending on loopback until its timeout.
    """
    lst = socket.bind("127.0.0.1", 0)
    assert lst.listen(0)
    port = lst.sockname()[1]
    filler = socket.connect("127.0.0.1", port, timeout=2000)
    assert filler is not None, "could not queue the filler connection"
    assert lst.wait(socket.EV_ACPT, 2000) == socket.EV_ACPT
    return lst, filler, port


# -- 1. close from another greenlet wakes every waiter -------------------------

#: (socket to close, the waiting call, its failure value, other sockets to close)
Case = tuple[Socket, Callable[[], Any], Any, list[Socket]]


def recv_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    client, server = pair(listener)
    buff = Bytes(64)
    opt = with_timeout({"block": True}, timeout)
    return server, lambda: server.recv(buff, None, opt), (-1, None), [client]


def accept_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    lst = socket.bind("127.0.0.1", 0)
    assert lst.listen(4)
    opt = with_timeout({}, timeout)
    return lst, lambda: lst.accept(opt), None, []


def connect_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    lst, filler, port = full_tcp_backlog()
    sock = socket.tcp()
    opt = with_timeout({}, timeout)
    return sock, lambda: sock.connect("127.0.0.1", port, opt), -1, [filler, lst]


def connect_unix_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    path = os.path.join(tmp, f"full{i}")
    lst = socket.bind_unix(path)
    assert lst.listen(0)
    filler = socket.connect_unix(path, timeout=2000)
    assert filler is not None
    sock = socket.unix()
    opt = with_timeout({}, timeout)
    return sock, lambda: sock.connect_unix(path, opt), -1, [filler, lst]


def send_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    client, server = pair(listener)
    fill_send_buffer(client)
    data = bytes(65536)
    opt = with_timeout({"block": True}, timeout)
    return client, lambda: client.send(data, opt), -1, [server]


def wait_case(listener: Socket, tmp: str, i: int, timeout: int | None) -> Case:
    client, server = pair(listener)
    timeout_arg = -1 if timeout is None else timeout
    return server, lambda: server.wait(socket.EV_RECV, timeout_arg), -1, [client]


CASES: dict[str, Callable[[Socket, str, int, int | None], Case]] = {
    "recv": recv_case,
    "accept": accept_case,
    "connect": connect_case,
    "connect_unix": connect_unix_case,
    "send": send_case,
    "wait": wait_case,
}


@pytest.mark.parametrize("timeout", [None, LONG_MS], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("op", list(CASES))
def test_close_wakes_waiter(
    run: Runner,
    listener: Socket,
    short_tmp: str,
    spawn: Callable[..., gevent.Greenlet],
    op: str,
    timeout: int | None,
) -> None:
    make = CASES[op]

    def body() -> list[float]:
        latencies: list[float] = []
        baseline = active_watchers()
        for i in range(ROUNDS):
            sock, call, failure, others = make(listener, short_tmp, i, timeout)
            closed_at: list[float] = []

            def closer(sock: Socket = sock, closed_at: list[float] = closed_at) -> None:
                gevent.idle()  # the waiter is parked in the hub by now
                closed_at.append(time.perf_counter())
                assert sock.close() is True

            spawn(closer)
            try:
                result = call()
                ended = time.perf_counter()
            finally:
                for other in others:
                    other.close()
            assert closed_at, f"{op} returned {result!r} before the close: it did not wait"
            assert result == failure
            assert sock.last_error is not None and "closed" in str(sock.last_error)
            latencies.append(ended - closed_at[0])
            # The deadline timer and the watchers are gone with the wait.
            assert active_watchers() == baseline
        return latencies

    latencies = run(body)
    print(
        f"wake latency after close, {op}, timeout={timeout}: "
        f"median {statistics.median(latencies) * 1e3:.3f} ms, max {max(latencies) * 1e3:.3f} ms"
    )
    assert max(latencies) < WAKE_LIMIT


def test_close_wakes_receiver_and_sender_together(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        client, server = pair(listener)
        try:
            fill_send_buffer(client)
            reader = spawn(client.recv, Bytes(16), {"block": True})
            writer = spawn(client.send, bytes(65536), {"block": True, "timeout": LONG_MS})
            gevent.idle()
            assert not reader.ready() and not writer.ready()
            closed = time.perf_counter()
            assert client.close() is True
            assert set(gevent.joinall([reader, writer], timeout=1)) == {reader, writer}
            assert time.perf_counter() - closed < WAKE_LIMIT
            assert reader.value == (-1, None)
            assert writer.value == -1
        finally:
            client.close()
            server.close()

    run(body)


def test_close_of_idle_socket_with_spent_watchers_leaves_none(
    run: Runner, listener: Socket
) -> None:
    """A socket that waited before (its watchers exist) closes without a trace."""

    def body() -> None:
        baseline = active_watchers()
        client, server = pair(listener)
        with pytest.raises(TimeoutError):
            server.recv(Bytes(8), block=True, timeout=1)
        assert server.wait(socket.EV_SEND, 1000) == socket.EV_SEND
        assert server.close() and client.close()
        assert active_watchers() == baseline

    run(body)


# -- 2. kill() under a blocked reader ---------------------------------------


def test_kill_wakes_blocked_reader_and_peer_sees_end(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        client, server = pair(listener)
        with client, server:
            killed_at: list[float] = []

            def killer() -> None:
                gevent.idle()
                killed_at.append(time.perf_counter())
                assert server.kill() is True

            spawn(killer)
            result = server.recv(Bytes(64), None, {"block": True, "timeout": LONG_MS})
            latency = time.perf_counter() - killed_at[0]
            assert result == (-1, None)
            assert "end of stream" in str(server.last_error)
            assert latency < WAKE_LIMIT
            # The peer sees end of stream too, at once.
            started = time.perf_counter()
            assert client.recv(Bytes(64), None, {"block": True, "timeout": LONG_MS}) == (-1, None)
            assert time.perf_counter() - started < WAKE_LIMIT
            assert "end of stream" in str(client.last_error)
            # The killed socket is still open: close() works once.
            assert server.close() is True

    run(body)


def test_kill_wakes_blocked_sender(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        client, server = pair(listener)
        with client, server:
            fill_send_buffer(client)
            spawn(lambda: (gevent.idle(), client.kill()))
            started = time.perf_counter()
            assert client.send(bytes(65536), block=True, timeout=LONG_MS) == -1
            assert time.perf_counter() - started < WAKE_LIMIT
            assert client.last_error is not None

    run(body)


# -- 3. one waiter per direction ----------------------------------------------


def _parked(glet: gevent.Greenlet) -> None:
    gevent.idle()
    assert not glet.ready(), f"the first waiter did not wait: {glet.value!r}"


def test_second_receiver_gets_busy_error_at_once(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        client, server = pair(listener)
        with client, server:
            first = spawn(server.recv, Bytes(16), {"block": True, "timeout": LONG_MS})
            _parked(first)
            # "At once": refused without yielding, so a greenlet that is
            # ready to run has not run yet.
            others_ran: list[bool] = []
            spawn(others_ran.append, True)
            started = time.perf_counter()
            with pytest.raises(BusyError, match="receive"):
                server.recv(Bytes(16), None, {"block": True})
            with pytest.raises(BusyError):
                server.wait(socket.EV_RECV, LONG_MS)
            assert not others_ran
            assert time.perf_counter() - started < 0.05
            # The first waiter was not disturbed: it still gets the data.
            assert client.send("ping", block=True) == 4
            n, data = first.get(timeout=2)
            assert n == 4 and data is not None and bytes(data) == b"ping"

    run(body)


def test_second_acceptor_gets_busy_error(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        first = spawn(listener.accept, {"timeout": LONG_MS})
        _parked(first)
        with pytest.raises(BusyError):
            listener.accept()
        client = socket.connect("127.0.0.1", listener.sockname()[1])
        assert client is not None
        accepted = first.get(timeout=2)
        assert isinstance(accepted, Socket)
        accepted.close()
        client.close()

    run(body)


def test_second_sender_gets_busy_error(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        client, server = pair(listener)
        with client, server:
            queued = fill_send_buffer(client)
            first = spawn(client.send, b"tail", {"block": True, "timeout": LONG_MS})
            _parked(first)
            with pytest.raises(BusyError, match="send"):
                client.send(b"other", block=True)
            # Drain the peer: the first sender completes.
            buff = Bytes(queued + 4)
            n, _ = server.recv(buff, None, {"block": True, "waitall": True, "timeout": LONG_MS})
            assert n == queued + 4
            assert first.get(timeout=2) == 4
            assert bytes(buff[-4:]) == b"tail"

    run(body)


def test_full_duplex_receiver_and_sender_on_one_socket(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    size = 100_000
    a_data = os.urandom(size)
    b_data = os.urandom(size)

    def body() -> None:
        a, b = pair(listener)
        with a, b:
            for sock in (a, b):
                assert sock.ctrl(socket.CTRL_SET_SENDBUFF, 4096)
                assert sock.ctrl(socket.CTRL_SET_RECVBUFF, 4096)
            opt = {"block": True, "waitall": True, "timeout": LONG_MS}
            a_in, b_in = Bytes(size), Bytes(size)
            a_reader = spawn(a.recv, a_in, opt)
            b_reader = spawn(b.recv, b_in, opt)
            b_writer = spawn(b.send, b_data, {"block": True, "timeout": LONG_MS})
            # This greenlet is a's sender while a_reader receives on a.
            assert a.send(a_data, block=True, timeout=LONG_MS) == size
            assert b_writer.get(timeout=5) == size
            assert a_reader.get(timeout=5)[0] == size
            assert b_reader.get(timeout=5)[0] == size
            assert bytes(a_in) == b_data
            assert bytes(b_in) == a_data

    run(body)


@pytest.mark.parametrize("op", ["recv", "send", "accept", "wait"])
def test_killed_waiter_leaves_socket_usable(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet], op: str
) -> None:
    def body() -> None:
        baseline = active_watchers()
        client, server = pair(listener)
        with client, server:
            queued = fill_send_buffer(client) if op == "send" else 0
            calls: dict[str, Callable[[], Any]] = {
                "recv": lambda: server.recv(Bytes(16), block=True),
                "send": lambda: client.send(b"lost", block=True),
                "accept": lambda: listener.accept(),
                "wait": lambda: server.wait(socket.EV_RECV),
            }
            victim = spawn(calls[op])
            _parked(victim)
            victim.kill(timeout=1)
            assert victim.dead and isinstance(victim.value, gevent.GreenletExit)
            assert active_watchers() == baseline
            # The next waiter gets the socket: no BusyError, no stale slot.
            if op == "recv":
                nxt = spawn(server.recv, Bytes(16), {"block": True, "timeout": LONG_MS})
                _parked(nxt)
                assert client.send("ok", block=True) == 2
                n, data = nxt.get(timeout=2)
                assert data is not None and (n, bytes(data)) == (2, b"ok")
            elif op == "send":
                nxt = spawn(client.send, b"next", {"block": True, "timeout": LONG_MS})
                _parked(nxt)
                buff = Bytes(queued + 4)
                n, _ = server.recv(buff, None, {"block": True, "waitall": True, "timeout": LONG_MS})
                assert n == queued + 4 and bytes(buff[-4:]) == b"next"
                assert nxt.get(timeout=2) == 4
            elif op == "accept":
                nxt = spawn(listener.accept, {"timeout": LONG_MS})
                _parked(nxt)
                other = socket.connect("127.0.0.1", listener.sockname()[1])
                assert other is not None
                accepted = nxt.get(timeout=2)
                assert isinstance(accepted, Socket)
                accepted.close()
                other.close()
            else:
                nxt = spawn(server.wait, socket.EV_RECV, LONG_MS)
                _parked(nxt)
                assert client.send("x", block=True) == 1
                assert nxt.get(timeout=2) == socket.EV_RECV

    run(body)


# -- 4. an outer gevent.Timeout ------------------------------------------------


@pytest.mark.parametrize("op", ["recv", "send", "accept", "wait", "recv-with-deadline"])
def test_outer_gevent_timeout_propagates_unchanged(run: Runner, listener: Socket, op: str) -> None:
    def body() -> None:
        baseline = active_watchers()
        client, server = pair(listener)
        with client, server:
            queued = fill_send_buffer(client) if op == "send" else 0
            calls: dict[str, Callable[[], Any]] = {
                "recv": lambda: server.recv(Bytes(16), block=True),
                "recv-with-deadline": lambda: server.recv(Bytes(16), block=True, timeout=LONG_MS),
                "send": lambda: client.send(b"tail", block=True),
                "accept": lambda: listener.accept(),
                "wait": lambda: server.wait(socket.EV_RECV),
            }
            timeout = gevent.Timeout(0.05)
            started = time.perf_counter()
            timeout.start()
            try:
                calls[op]()
            except gevent.Timeout as exc:
                assert exc is timeout
            else:
                raise AssertionError(f"{op} returned before the gevent.Timeout")
            finally:
                timeout.close()
            elapsed = time.perf_counter() - started
            assert 0.045 <= elapsed < 1.0
            assert active_watchers() == baseline
            # The socket keeps working.
            if op == "send":
                buff = Bytes(queued)
                n, _ = server.recv(buff, None, {"block": True, "waitall": True, "timeout": LONG_MS})
                assert n == queued
                assert client.send(b"tail", block=True, timeout=LONG_MS) == 4
                n, data = server.recv(Bytes(4), None, {"block": True, "timeout": LONG_MS})
                assert data is not None and (n, bytes(data)) == (4, b"tail")
            elif op == "accept":
                other = socket.connect("127.0.0.1", listener.sockname()[1])
                assert other is not None
                accepted = listener.accept(timeout=LONG_MS)
                assert accepted is not None
                accepted.close()
                other.close()
            elif op == "wait":
                assert client.send("x", block=True) == 1
                assert server.wait(socket.EV_RECV, LONG_MS) == socket.EV_RECV
            else:
                assert client.send("later", block=True) == 5
                n, data = server.recv(Bytes(16), None, {"block": True, "timeout": LONG_MS})
                assert data is not None and (n, bytes(data)) == (5, b"later")

    run(body)


# -- 6. waiting from the hub greenlet ---------------------------------------


@pytest.mark.parametrize("how", ["run_callback", "timer"])
@pytest.mark.parametrize("op", ["recv", "send", "accept", "connect", "wait"])
def test_waiting_from_hub_raises_hub_wait_error(
    run: Runner, listener: Socket, how: str, op: str
) -> None:
    def body() -> None:
        baseline = active_watchers()
        client, server = pair(listener)
        lst, filler, port = full_tcp_backlog()
        pending = socket.tcp()
        with client, server, lst, filler, pending:
            if op == "send":
                fill_send_buffer(client)
            calls: dict[str, Callable[[], Any]] = {
                "recv": lambda: server.recv(Bytes(16), block=True, timeout=LONG_MS),
                "send": lambda: client.send(b"x", block=True),
                "accept": lambda: listener.accept(),
                "connect": lambda: pending.connect("127.0.0.1", port, timeout=LONG_MS),
                "wait": lambda: server.wait(socket.EV_RECV),
            }
            outcome = from_hub(calls[op], how)
            assert isinstance(outcome, HubWaitError), outcome
            assert "hub" in str(outcome)
            assert active_watchers() == baseline
            # No waiter slot was left behind: the socket still waits normally.
            if op in ("recv", "wait"):
                assert server.wait(socket.EV_RECV, 1) == 0
            elif op == "accept":
                assert listener.wait(socket.EV_ACPT, 1) == 0
            elif op == "send":
                assert client.wait(socket.EV_SEND, 1) == 0
            else:
                assert pending.wait(socket.EV_CONN, 1) == 0

    run(body)


def test_non_waiting_calls_workfrom_hub(run: Runner, listener: Socket) -> None:
    """Only waiting is refused from the hub; a call that need not wait proceeds."""

    def body() -> None:
        client, server = pair(listener)
        with client, server:
            assert client.send("ready", block=True) == 5
            assert server.wait(socket.EV_RECV, 1000) == socket.EV_RECV
            outcome = from_hub(lambda: server.recv(Bytes(16)), "run_callback")
            assert isinstance(outcome, tuple) and outcome[0] == 5
            assert from_hub(lambda: server.wait(socket.EV_SEND, 0), "timer") == socket.EV_SEND

    run(body)


# -- 9. fairness --------------------------------------------------------------

TRANSFER = 64 << 20
TICK = 0.002
MAX_GAP = 0.05


def _ticker(stamps: list[float], stop: gevent.event.Event) -> None:
    deadline = time.perf_counter() + 60
    while not stop.is_set() and time.perf_counter() < deadline:
        gevent.sleep(TICK)
        stamps.append(own_clock())


def _unix_pair(tmp: str) -> tuple[Socket, Socket]:
    path = os.path.join(tmp, "fair")
    lst = socket.bind_unix(path)
    try:
        assert lst.listen(1)
        mine = socket.connect_unix(path, timeout=2000)
        assert mine is not None
        theirs = lst.accept(timeout=2000)
        assert theirs is not None
    finally:
        lst.close()
    return mine, theirs


@pytest.mark.parametrize(
    "transfer",
    ["send", "recv-waitall", "recv-loop", "sendfile"],
)
def test_long_transfer_lets_a_ticker_run(
    run: Runner, short_tmp: str, spawn: Callable[..., gevent.Greenlet], transfer: str
) -> None:
    size = TRANSFER
    mine, theirs = _unix_pair(short_tmp)
    mode = "read" if transfer in ("send", "sendfile") else "write"
    peer = subprocess.Popen(
        [
            sys.executable,
            os.path.join(SCRIPTS, "blast.py"),
            mode,
            str(theirs.rawfd()),
            str(size),
        ],
        pass_fds=[theirs.rawfd()],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        theirs.close()
        assert peer.stdout is not None
        assert select.select([peer.stdout], [], [], 30)[0], "the peer did not start"
        assert peer.stdout.readline() == "ready\n"
        path = os.path.join(short_tmp, "sparse")
        if transfer == "sendfile":
            with open(path, "wb") as f:
                f.truncate(size)

        def move(buff: Any) -> int:
            if transfer == "send":
                return mine.send(buff, block=True, timeout=30_000)
            if transfer == "sendfile":
                return mine.sendfile(path, block=True, timeout=30_000)
            if transfer == "recv-waitall":
                n, _ = mine.recv(buff, block=True, waitall=True, timeout=30_000)
                return n
            got = 0
            for _ in range(size):
                n, _ = mine.recv(buff, block=True, timeout=30_000)
                if n <= 0:
                    break
                got += n
                if got >= size:
                    break
            return got

        def body() -> tuple[int, float, list[float]]:
            # The buffers are made before the clock starts: only the transfer counts.
            buffers: dict[str, Callable[[], Any]] = {
                "send": lambda: memoryview(bytes(size)),
                "recv-waitall": lambda: Bytes(size),
                "recv-loop": lambda: Bytes(65536),
                "sendfile": lambda: None,
            }
            buff = buffers[transfer]()
            stamps: list[float] = []
            stop = gevent.event.Event()
            spawn(_ticker, stamps, stop)
            gevent.idle()  # the ticker is sleeping its first tick
            started = own_clock()  # gaps exclude time the host kept this process off the CPU
            moved = move(buff)
            ended = own_clock()
            stop.set()
            inside = [t for t in stamps if started < t < ended]
            return moved, ended - started, [started, *inside, ended]

        moved, duration, marks = run(body)
        out, _ = peer.communicate(timeout=30)
    finally:
        mine.close()
        if peer.poll() is None:
            peer.kill()
            peer.communicate()
    assert moved == size
    assert peer.returncode == 0 and int(out) == size
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    print(
        f"fairness {transfer}: {size >> 20} MiB in {duration * 1e3:.0f} ms, "
        f"{len(marks) - 2} ticks, max gap {max(gaps) * 1e3:.1f} ms"
    )
    assert max(gaps) < MAX_GAP
