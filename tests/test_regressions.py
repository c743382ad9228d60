"""Regression tests for the defects listed in issue 10, one test (or group) each.

Every test here failed on the old core and states the fixed behaviour; the
docstring of each names its defect number.  They drive the public API over
loopback and unix sockets in a temporary folder; where the library's own
name resolution must be slow, ``xsock_green._hub.lookup`` (the one function
``_socket`` calls to resolve a name) is replaced for the test.  Events are
ordered with ``gevent.event.Event``, ``gevent.idle()`` and socket readiness,
never with a sleep; the only sleeps are the ticker's (what the fairness tests
measure) and the slow resolver's (what the deadline tests bound).
"""

from __future__ import annotations

import _socket
import gc
import io
import itertools
import os
import select
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest
from conftest import Runner, from_hub, own_clock, pair

from xsock_green import (
    BusyError,
    Bytes,
    HubWaitError,
    Socket,
    SocketError,
    _hub,
    poller,
    socket,
)

#: A timeout long enough that it is never what ends a wait.
LONG_MS = 5000
#: SPEC section 2: a greenlet that sleeps 2 ms runs at least every 50 ms.
TICK = 0.002
MAX_GAP = 0.05

Spawn = Callable[..., gevent.Greenlet]

#: Fail the test if a greenlet died with a traceback (the hub printed it).
quiet = pytest.mark.usefixtures("no_hub_traceback")


# -- shared helpers -----------------------------------------------------------


def bound_udp() -> tuple[Socket, int]:
    """A UDP socket bound on 127.0.0.1 and a free port, and that port."""
    sock = socket.udp()
    assert sock.bind("127.0.0.1", 0), sock.last_error
    return sock, sock.sockname()[1]


def parked(glet: gevent.Greenlet) -> None:
    """Let ``glet`` run until it waits; it must still be waiting."""
    gevent.idle()
    assert not glet.ready(), f"it did not wait: {glet.value!r}"


def queued(sock: Socket) -> None:
    """Return once data is in ``sock``'s receive queue (an OS poll, not the hub)."""
    assert select.select([sock.rawfd()], [], [], 2)[0], "the data never arrived"


def recv_exactly(sock: Socket, size: int) -> bytes:
    n, data = sock.recv(Bytes(size), size, {"block": True, "waitall": True, "timeout": LONG_MS})
    assert n == size and data is not None, sock.last_error
    return bytes(data)


def drain_now(sock: Socket) -> bytes:
    """Everything already in ``sock``'s receive queue, read without waiting."""
    got = bytearray()
    buff = Bytes(1 << 20)
    while True:
        n, data = sock.recv(buff)
        if n <= 0 or data is None:
            return bytes(got)
        got += data.view()


def slow_resolver(
    monkeypatch: pytest.MonkeyPatch, delay: float, entered: gevent.event.Event | None = None
) -> None:
    """Make the library's name lookups take ``delay`` seconds (cooperatively)."""

    def resolve(host: str, port: int, family: int, type_: int) -> tuple[str, int]:
        if entered is not None:
            entered.set()
        gevent.sleep(delay)
        return ("127.0.0.1", port)

    monkeypatch.setattr(_hub, "lookup", resolve)


def in_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a new OS thread (its own hub); return its result or raise its exception."""
    outcome: list[tuple[bool, Any]] = []

    def target() -> None:
        try:
            outcome.append((True, fn()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="xsock-regression")
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the thread hung"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def fd_is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class Ticker:
    """A greenlet that sleeps ``TICK`` in a loop and stamps every turn it gets."""

    def __init__(self, spawn: Spawn) -> None:
        self.stamps: list[float] = []
        self.stop = gevent.event.Event()
        spawn(self._run)
        gevent.idle()  # it is sleeping its first tick

    def _run(self) -> None:
        deadline = time.perf_counter() + 60
        while not self.stop.is_set() and time.perf_counter() < deadline:
            gevent.sleep(TICK)
            self.stamps.append(own_clock())

    def max_gap(self, started: float, ended: float) -> float:
        """Stop ticking; the longest time without a tick between ``started`` and
        ``ended`` (``own_clock`` times: the host's other work does not count)."""
        self.stop.set()
        marks = [started, *(t for t in self.stamps if started < t < ended), ended]
        return max(b - a for a, b in itertools.pairwise(marks))


#: A peer that reads as fast as it can: ``MSG_TRUNC`` on a TCP socket discards
#: the data in the kernel without copying it (tcp(7)), so the reader costs next
#: to no CPU and keeps up with any sender, even on two shared cores.
DISCARD_READER = """
import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
sock.setblocking(True)
buf = bytearray(1 << 26)
total = 0
print("ready", flush=True)
while n := sock.recv_into(buf, len(buf), socket.MSG_TRUNC):
    total += n
print(total, flush=True)
"""


def start_reader(theirs: Socket) -> subprocess.Popen[str]:
    """A process that discards what arrives on ``theirs`` until end of stream.

    ``theirs`` is closed here; the process prints the byte count when it ends.
    """
    fd = theirs.rawfd()
    peer = subprocess.Popen(
        [sys.executable, "-c", DISCARD_READER, str(fd)],
        pass_fds=[fd],
        stdout=subprocess.PIPE,
        text=True,
    )
    theirs.close()
    assert peer.stdout is not None
    assert select.select([peer.stdout], [], [], 30)[0], "the reader did not start"
    assert peer.stdout.readline() == "ready\n"
    return peer


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the pipe ``fd`` and close it (a thread's body)."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BrokenPipeError:
        pass  # the reader gave up
    finally:
        os.close(fd)


# -- 1. kill() under a UDP receiver ----------------------------------------------


@quiet
@pytest.mark.parametrize("timeout", [None, LONG_MS], ids=["no-timeout", "timeout"])
@pytest.mark.parametrize("op", ["recvfrom", "recv"])
def test_kill_of_udp_socket_ends_block_receiver_without_spinning(
    run: Runner, spawn: Spawn, op: str, timeout: int | None
) -> None:
    """Defect 1: kill() wakes a UDP block receiver with end of stream; no CPU spin."""
    failure = {"recvfrom": (-1, None, None, None), "recv": (-1, None)}[op]

    def body() -> None:
        sock, _port = bound_udp()
        with sock:
            opt: dict[str, Any] = {"block": True}
            if timeout is not None:
                opt["timeout"] = timeout
            receive = sock.recvfrom if op == "recvfrom" else sock.recv
            waiter = spawn(receive, Bytes(64), 64, opt)
            parked(waiter)
            cpu, wall = time.process_time(), time.perf_counter()
            killed = sock.kill()
            waiter.join(timeout=1)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            assert waiter.ready(), f"the waiter still waits {wall:.1f} s after kill()"
            assert waiter.value == failure
            assert cpu < 0.2, f"waking took {cpu:.2f} s of CPU"
            assert killed is True, sock.last_error

    run(body)


# -- 2. block datagram bursts and fairness ----------------------------------------


@pytest.mark.parametrize("op", ["sendto", "recvfrom"])
def test_block_datagram_burst_lets_a_ticker_run(run: Runner, spawn: Spawn, op: str) -> None:
    """Defect 2: ~0.5 s of block sendto/recvfrom that never waits still gives others turns."""

    def body() -> float:
        sink, port = bound_udp()
        feeder = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        with sink, socket.udp() as sender:
            try:
                buff = Bytes(64)
                ticker = Ticker(spawn)
                started = own_clock()
                for _ in range(10**7):
                    if own_clock() - started > 0.5:
                        break
                    if op == "sendto":
                        # Nobody reads the sink: the kernel drops, sendto never waits.
                        assert sender.sendto(b"x" * 32, "127.0.0.1", port, {"block": True}) == 32
                    else:
                        # The feeder is a plain OS socket: only recvfrom may yield.
                        feeder.sendto(b"y" * 32, ("127.0.0.1", port))
                        assert sink.recvfrom(buff, 64, {"block": True})[0] == 32
                return ticker.max_gap(started, own_clock())
            finally:
                feeder.close()

    gap = run(body)
    assert gap <= MAX_GAP, f"the ticker waited {gap * 1e3:.0f} ms"


# -- 3. unix datagram sockets -----------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: socket.udp({"family": socket.UNIX}), lambda: socket.open(socket.UDP, socket.UNIX)],
    ids=["udp-family-unix", "open-udp-unix"],
)
def test_unix_datagram_socket_is_refused(make: Callable[[], Socket]) -> None:
    """Defect 3: a unix datagram socket is refused at creation with ValueError."""
    with pytest.raises(ValueError) as info:
        make().close()  # the close runs only when creation wrongly succeeds
    text = str(info.value).lower()
    assert "unix" in text and "datagram" in text, text


# -- 4. the timeout covers name resolution ----------------------------------------


@pytest.mark.parametrize("op", ["connect", "sendto"])
def test_timeout_covers_name_resolution(
    run: Runner, listener: Socket, monkeypatch: pytest.MonkeyPatch, op: str
) -> None:
    """Defect 4: connect's / block sendto's timeout bounds a slow name lookup."""
    slow_resolver(monkeypatch, 2.0)

    def body() -> tuple[int, float]:
        sink, sink_port = bound_udp()
        tcp_port = listener.sockname()[1]
        with sink, socket.tcp() as tcp, socket.udp() as udp:
            calls: dict[str, Callable[[], int]] = {
                "connect": lambda: tcp.connect("localhost", tcp_port, {"timeout": 200}),
                "sendto": lambda: udp.sendto(
                    b"x", "localhost", sink_port, {"block": True, "timeout": 200}
                ),
            }
            started = time.perf_counter()
            result = calls[op]()
            return result, time.perf_counter() - started

    result, elapsed = run(body)
    assert result == 0, f"{op} returned {result} after {elapsed:.2f} s"
    assert 0.19 <= elapsed < 0.8


# -- 5. close() of a socket in the poller ------------------------------------------


def test_close_of_polled_socket_closes_descriptor_at_once(
    run: Runner, tcp_pair: tuple[Socket, Socket]
) -> None:
    """Defect 5: close() of a socket inserted in the poller closes its descriptor at once."""
    client, server = tcp_pair

    def body() -> None:
        assert poller.insert(server, socket.EV_RECV) is True
        try:
            assert server.close() is True
            # No loop turn since the close: the peer must see end of stream now.
            assert client.recv(Bytes(16)) == (-1, None)
        finally:
            poller.remove(server)

    run(body)


# -- 6. a failed send keeps no reference to the data or the socket --------------


@pytest.mark.parametrize("block", [True, False], ids=["block", "nonblock"])
def test_failed_send_releases_buffer_and_socket(listener: Socket, block: bool) -> None:
    """Defect 6: after a failed send the bytearray resizes and refcounting frees the socket."""

    def failed_send() -> tuple[Socket, bytearray]:
        client, server = pair(listener)
        server.close()
        assert client.kill()  # our side cannot send any more: EPIPE
        data = bytearray(1 << 20)
        assert client.send(data, {"block": block}) == -1
        return client, data

    sock, data = failed_send()
    with sock:
        data.extend(b"x")  # BufferError while the failure keeps a view of it
        del data[:]
        err = sock.last_error
        assert isinstance(err, SocketError) and "broken pipe" in str(err), err

    # A socket whose failure was never looked at is freed by reference counting.
    sock, data = failed_send()
    assert sock.close() is True
    gc.disable()
    try:
        ref = weakref.ref(sock)
        del sock
        assert ref() is None, "the failed send keeps the socket in a reference cycle"
    finally:
        gc.enable()


# -- 7. a datagram larger than the buffer ------------------------------------------


def test_truncated_datagram_sets_last_error(run: Runner) -> None:
    """Defect 7: a datagram cut to the receive size says so in last_error."""

    def body() -> None:
        sink, port = bound_udp()
        with sink, socket.udp() as sender:
            payload = os.urandom(100)
            assert sender.sendto(payload, "127.0.0.1", port) == 100
            n, data, _addr, _port = sink.recvfrom(Bytes(64), 64, {"block": True})
            assert n == 64 and data is not None and bytes(data) == payload[:64]
            assert sink.last_error is not None and "truncat" in str(sink.last_error)
            assert sender.sendto(payload[:10], "127.0.0.1", port) == 10
            n, data, _addr, _port = sink.recvfrom(Bytes(64), 64, {"block": True})
            assert n == 10 and data is not None and bytes(data) == payload[:10]
            assert sink.last_error is None

    run(body)


# -- 8. an invalid host name --------------------------------------------------------


def test_invalid_host_name_is_a_failure_value(run: Runner, listener: Socket) -> None:
    """Defect 8: a malformed host name gives -1 / None, not UnicodeError."""
    port = listener.sockname()[1]

    def body() -> None:
        with socket.tcp() as sock:
            assert sock.connect("a..b", port) == -1
            assert sock.last_error is not None
        with socket.udp() as udp:
            assert udp.sendto(b"x", "a..b", port) == -1
            assert udp.last_error is not None
        assert socket.connect("a..b", port) is None

    run(body)


# -- 9. close() after the hub is gone ----------------------------------------------


def test_close_after_hub_destroyed_never_raises() -> None:
    """Defect 9: close() of a socket whose hub was destroyed returns True and closes the fd."""

    def body() -> tuple[bool, bool]:
        sock = socket.tcp()
        fd = sock.rawfd()
        gevent.get_hub().destroy(destroy_loop=True)
        return sock.close(), fd_is_open(fd)

    closed, still_open = in_thread(body)
    assert closed is True
    assert not still_open


# -- 10. sendfile: pipes and the file position ------------------------------------


@quiet
def test_sendfile_of_a_pipe_sends_until_end_of_file(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    """Defect 10: block sendfile of a pipe sends everything up to end of file."""
    client, server = tcp_pair
    payload = os.urandom(100 * 1024)  # more than a pipe holds: the writer runs meanwhile

    def body() -> None:
        r, w = os.pipe()
        writer = threading.Thread(target=write_all, args=(w, payload), name="pipe-writer")
        try:
            with open(r, "rb") as f:
                writer.start()
                size = len(payload)
                opt = {"block": True, "waitall": True, "timeout": LONG_MS}
                reader = spawn(server.recv, Bytes(size), size, opt)
                assert client.sendfile(f, {"block": True, "timeout": LONG_MS}) == size
                n, data = reader.get(timeout=5)
                assert n == size and data is not None and bytes(data) == payload
        finally:
            if writer.is_alive():
                writer.join(5)  # the read end is closed: its write fails

    run(body)


@pytest.mark.parametrize("opt", [{}, {"start": 11, "last": 20}], ids=["to-end", "start-last"])
def test_sendfile_starts_at_the_current_position(
    run: Runner, tcp_pair: tuple[Socket, Socket], tmp_path: Path, opt: dict[str, int]
) -> None:
    """Defect 10: sendfile sends from the file's position (start=1 is that position),
    a regular file exactly as a BytesIO, and leaves the position after what it sent."""
    client, server = tcp_pair
    payload = os.urandom(5000)
    path = tmp_path / "data"
    path.write_bytes(payload)
    begin = 1000 + opt.get("start", 1) - 1
    end = 1000 + opt["last"] if "last" in opt else len(payload)

    def body() -> list[tuple[str, int, bytes, int]]:
        seen: list[tuple[str, int, bytes, int]] = []
        with open(path, "rb") as regular:
            for f in (regular, io.BytesIO(payload)):
                f.seek(1000)
                n = client.sendfile(f, {"block": True, **opt})
                got = recv_exactly(server, n) if n > 0 else b""
                seen.append((type(f).__name__, n, got, f.tell()))
        return seen

    for kind, n, got, position in run(body):
        assert n == end - begin, f"{kind}: sent {n} bytes"
        assert got == payload[begin:end], f"{kind}: wrong bytes"
        assert position == end, f"{kind}: position {position}"


# -- 11. the read hint never delays queued data ------------------------------------


def test_read_hint_never_delays_queued_data(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    """Defect 11: after a short read and a reply, a block recv of queued data
    returns it without a loop turn (a ready busy greenlet has not run)."""
    client, server = tcp_pair

    def body() -> None:
        buff = Bytes(64)
        # Request/response: a short read, then our reply (the "wait first" hint).
        spawn(client.send, b"req1", {"block": True})
        n, data = server.recv(buff, {"block": True})
        assert data is not None and (n, bytes(data)) == (4, b"req1")
        assert server.send(b"rep1", {"block": True}) == 4
        # The next request is already queued when the server asks for it.
        assert client.send(b"req2", {"block": True}) == 4
        queued(server)
        ran: list[bool] = []

        def busy() -> None:
            end = time.perf_counter() + 0.03
            while time.perf_counter() < end:
                pass
            ran.append(True)

        hog = spawn(busy)
        n, data = server.recv(buff, {"block": True})
        switched = bool(ran)
        hog.join()
        assert data is not None and (n, bytes(data)) == (4, b"req2")
        assert not switched, "recv waited a loop turn (the busy greenlet ran) for queued data"
        _, data = client.recv(buff, {"block": True})
        assert data is not None and bytes(data) == b"rep1"

    run(body)


@pytest.mark.parametrize("then", ["data later", "end of stream", "reset"])
def test_read_guess_when_nothing_is_queued_yet(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn, then: str
) -> None:
    """The same guess (other work queued after a reply) when the next request
    is not there yet: it reads nothing, without an error, waits, and then
    gives what the peer did."""
    client, server = tcp_pair

    def body() -> tuple[int, bytes | None, str]:
        buff = Bytes(64)
        assert client.send(b"req1", {"block": True}) == 4
        n, _ = server.recv(buff, {"block": True})
        assert n == 4 and server.send(b"rep1", {"block": True}) == 4

        def peer() -> None:
            # Read the reply first: closing with unread data sends a reset.
            assert client.recv(Bytes(4), 4, {"block": True, "waitall": True})[0] == 4
            if then == "data later":
                client.send(b"req2", {"block": True})
            elif then == "end of stream":
                client.close()
            else:  # an RST: SO_LINGER with a zero timeout, then close
                client._sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                client.close()

        spawn(peer)  # queued work: the recv guesses
        n, data = server.recv(buff, {"block": True, "timeout": LONG_MS})
        return n, None if data is None else bytes(data), str(server.last_error)

    n, data, error = run(body)
    if then == "data later":
        assert (n, data) == (4, b"req2")
    elif then == "end of stream":
        assert (n, data) == (-1, None) and "end of stream" in error
    else:
        assert (n, data) == (-1, None) and "reset" in error.lower(), error


class _CountingReader:
    """Counts a stream socket's reads (``Core._readinto``) and those that found nothing."""

    def __init__(self, raw: Callable[[memoryview], int | None]) -> None:
        self.raw = raw
        self.reads = self.empty = 0

    def readinto(self, view: memoryview) -> int | None:
        got = self.raw(view)
        self.reads += 1
        self.empty += got is None
        return got


@pytest.mark.parametrize("state", ["short read", "reply, other work queued"])
def test_block_recv_asks_the_kernel_before_a_read_that_would_fail(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn, state: str
) -> None:
    """A would-block read costs an exception inside the standard library, so a
    block recv that is not sure data is there asks how much is queued first:
    when nothing is, it waits, and its only read is the one that gets the data."""
    client, server = tcp_pair

    def body() -> tuple[int, int, bytes | None]:
        buff = Bytes(64)
        assert client.send(b"req1", {"block": True}) == 4
        n, _ = server.recv(buff, {"block": True})  # a short read
        assert n == 4
        if state != "short read":
            assert server.send(b"rep1", {"block": True}) == 4
        counter = _CountingReader(server._readinto)
        server._readinto = counter.readinto

        def peer() -> None:
            client.send(b"req2", {"block": True})

        spawn(peer)  # queued work, and the data it sends comes after the recv waits
        n, data = server.recv(buff, {"block": True, "timeout": LONG_MS})
        assert data is not None
        return counter.reads, counter.empty, bytes(data)

    reads, empty, data = run(body)
    assert data == b"req2"
    assert (reads, empty) == (1, 0), f"{reads} reads, {empty} of them found nothing"


def test_read_guess_asks_first_only_after_a_guess_that_found_nothing(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Spawn
) -> None:
    """A guess that found data makes the next one read at once (a busy server
    makes no extra call); one that found nothing makes the next one ask first
    (no second failing read)."""
    client, server = tcp_pair

    def body() -> list[int]:
        buff = Bytes(64)
        assert client.send(b"r0", {"block": True}) == 2
        assert server.recv(buff, {"block": True})[0] == 2  # a short read: the next recv guesses
        counter = _CountingReader(server._readinto)
        server._readinto = counter.readinto
        empties = []
        for step, ready in enumerate([True, False, False], 1):
            message = b"r%d" % step
            if ready:
                assert client.send(message, {"block": True}) == 2
                queued(server)
            else:
                spawn(client.send, message, {"block": True})  # after the recv waits
            _, data = server.recv(buff, {"block": True, "timeout": LONG_MS})
            assert data is not None and bytes(data) == message
            empties.append(counter.empty)
        return empties

    # 1: asks first (found data); 2: reads at once and finds nothing; 3: asks first.
    assert run(body) == [0, 1, 1]


class _CountingAccepts:
    """Stands for a listener's OS socket: counts its accepts and those that found nothing."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.calls = self.empty = 0

    def _accept(self) -> Any:
        self.calls += 1
        try:
            return self.raw._accept()
        except BlockingIOError:
            self.empty += 1
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


def test_accept_asks_first_only_after_an_accept_that_found_nothing(
    run: Runner, listener: Socket, spawn: Spawn
) -> None:
    """An accept that finds nothing raises inside the standard library: after
    one, the next accept asks (``poll``) before it tries, as a receive does."""
    port = listener.sockname()[1]
    clients: list[Socket | None] = []

    def connect() -> None:
        clients.append(socket.connect("127.0.0.1", port, {"timeout": LONG_MS}))

    def body() -> tuple[list[int], int]:
        counter = listener._sock = _CountingAccepts(listener._sock)
        empties = []
        try:
            for ready in (True, False, False):
                if ready:
                    connect()  # in the backlog before the accept
                else:
                    spawn(connect)  # after the accept waits
                conn = listener.accept({"timeout": LONG_MS})
                assert conn is not None
                conn.close()
                empties.append(counter.empty)
        finally:
            listener._sock = counter.raw
        return empties, counter.calls

    # 1: a new listener asks first, and takes the one there; 2: tries at
    # once and finds nothing, then takes the next; 3: asks first, then takes it.
    assert run(body) == ([0, 1, 1], 4)
    for client in clients:
        assert client is not None
        client.close()


# -- 12. small misses ----------------------------------------------------------------


@quiet
def test_close_during_sendto_lookup_says_closed(
    run: Runner, spawn: Spawn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defect 12a: a close() during sendto's name lookup gives "has been closed"."""
    entered = gevent.event.Event()
    slow_resolver(monkeypatch, 0.2, entered)

    def body() -> None:
        sink, port = bound_udp()
        with sink:
            sock = socket.udp()

            def closer() -> None:
                assert entered.wait(timeout=5)
                assert sock.close() is True

            spawn(closer)
            assert sock.sendto(b"x", "localhost", port, {"block": True}) == -1
            assert "has been closed" in str(sock.last_error)

    run(body)


def test_peeraddr_of_unbound_unix_client_is_none(short_tmp: str) -> None:
    """Defect 12b: peeraddr() of an accepted unix socket whose client is unbound is None."""
    path = os.path.join(short_tmp, "srv")
    with socket.bind_unix(path) as lst:
        assert lst.listen(1)
        client = socket.connect_unix(path, timeout=2000)
        assert client is not None
        accepted = lst.accept(timeout=2000)
        assert accepted is not None
        with client, accepted:
            assert accepted.peeraddr() is None


@pytest.mark.parametrize("name", ["peeraddr", "sockname", "peername"])
def test_address_of_closed_socket_sets_last_error(name: str) -> None:
    """Defect 12c: address accessors of a closed socket give None and say "has been closed"."""
    sock = socket.tcp()
    assert sock.close() is True
    assert getattr(sock, name)() is None
    assert "has been closed" in str(sock.last_error)


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda s: s.ctrl(socket.CTRL_SET_RECVBUFF, 2**31), r"value|2147483648"),
        (lambda s: s.listen(2**40), r"backlog"),
    ],
    ids=["ctrl-recvbuff", "listen"],
)
def test_out_of_range_ints_raise_value_error(call: Callable[[Socket], Any], names: str) -> None:
    """Defect 12d: an int the OS cannot take raises ValueError naming the argument."""
    with socket.tcp() as sock, pytest.raises(ValueError, match=names):
        call(sock)


def test_connect_unix_to_full_backlog(run: Runner, short_tmp: str) -> None:
    """Defect 12e: connect_unix to a full backlog times out on time, and from the
    hub greenlet raises HubWaitError instead of trying to sleep."""

    def body() -> None:
        path = os.path.join(short_tmp, "full")
        with socket.bind_unix(path) as lst:
            assert lst.listen(0)
            filler = socket.connect_unix(path, timeout=2000)
            assert filler is not None
            with filler, socket.unix() as sock:
                started = time.perf_counter()
                assert sock.connect_unix(path, {"timeout": 100}) == 0
                assert 0.095 <= time.perf_counter() - started < 0.6
                outcome = from_hub(lambda: sock.connect_unix(path, {"timeout": 100}))
                assert isinstance(outcome, HubWaitError), repr(outcome)

    run(body)


# -- 13. fairness across several transfers that never wait -----------------------

SENDERS = 6


@quiet
def test_several_senders_let_a_ticker_run(listener: Socket, spawn: Spawn) -> None:
    """Defect 13: six block senders that never wait still leave a 2 ms ticker <= 50 ms gaps."""
    chunk = memoryview(bytes(64 << 20))
    mines: list[Socket] = []
    peers: list[subprocess.Popen[str]] = []
    sent = [0] * SENDERS
    try:
        for _ in range(SENDERS):
            mine, theirs = pair(listener)
            mines.append(mine)
            # With this much room and a reader that discards, the sends never wait.
            assert mine.ctrl(socket.CTRL_SET_SENDBUFF, 4 << 20)
            peers.append(start_reader(theirs))

        def sender(i: int, until: float) -> None:
            while time.perf_counter() < until:
                assert mines[i].send(chunk, {"block": True, "timeout": 30_000}) == len(chunk)
                sent[i] += len(chunk)

        ticker = Ticker(spawn)
        started = own_clock()
        senders = [spawn(sender, i, time.perf_counter() + 1.0) for i in range(SENDERS)]
        gevent.joinall(senders, timeout=30, raise_error=True)
        assert all(glet.dead for glet in senders), "a sender hung"
        gap = ticker.max_gap(started, own_clock())
    finally:
        for mine in mines:
            mine.close()
        counts = [int(peer.communicate(timeout=30)[0]) for peer in peers]
    assert counts == sent
    assert gap <= MAX_GAP, f"the ticker waited {gap * 1e3:.0f} ms"


# -- 14-16. a second greenlet in a direction that is taken -----------------------


def assert_second_sender_refused(
    listener: Socket, spawn: Spawn, second: Callable[[Socket], Any]
) -> None:
    """A block send of 4 MiB waits for room; ``second`` (another greenlet's send on
    the same socket) raises BusyError at once, before a byte of it is sent."""
    client, server = pair(listener)
    with client, server:
        assert client.ctrl(socket.CTRL_SET_SENDBUFF, 65536)
        assert server.ctrl(socket.CTRL_SET_RECVBUFF, 65536)
        payload = os.urandom(4 << 20)
        first = spawn(client.send, payload, {"block": True, "timeout": LONG_MS})
        parked(first)
        # Make room under the parked sender; with no loop turn it stays parked.
        got = drain_now(server)
        assert got and not first.ready()
        others_ran: list[bool] = []
        spawn(others_ran.append, True)
        with pytest.raises(BusyError):
            second(client)
        assert not others_ran, "the refusal was not at once"
        got += recv_exactly(server, len(payload) - len(got))
        assert first.get(timeout=5) == len(payload)
        assert server.recv(Bytes(1 << 20)) == (0, None), "bytes of the refused send arrived"
        assert got == payload, "the refused send's bytes are mixed into the first sender's"


@quiet
@pytest.mark.parametrize("block", [False, True], ids=["nonblock", "block"])
def test_send_while_a_block_send_waits_is_refused(
    run: Runner, listener: Socket, spawn: Spawn, block: bool
) -> None:
    """Defect 14: a small send while another greenlet's block send waits: BusyError, no bytes."""
    run(assert_second_sender_refused, listener, spawn, lambda c: c.send(b"B" * 100, block=block))


@quiet
def test_big_block_send_while_a_block_send_waits_sends_nothing(
    run: Runner, listener: Socket, spawn: Spawn
) -> None:
    """Defect 15: a 1 MiB block send while another block send waits: BusyError before any byte."""
    run(
        assert_second_sender_refused,
        listener,
        spawn,
        lambda c: c.send(b"B" * (1 << 20), block=True),
    )


@quiet
def test_receiver_during_waitall_is_refused_and_nothing_is_lost(
    run: Runner, listener: Socket, spawn: Spawn
) -> None:
    """Defect 16: while A waits in a waitall recv with 50 of 100 bytes and the rest is
    queued, B's block recv and wait(EV_RECV) raise BusyError; A gets all 100 bytes."""

    def body() -> None:
        client, server = pair(listener)
        with client, server:
            data = os.urandom(100)
            assert client.send(data[:50], {"block": True}) == 50
            queued(server)
            first = spawn(server.recv, Bytes(100), 100, {"block": True, "waitall": True})
            parked(first)  # it holds the first 50 bytes and waits for the rest
            assert client.send(data[50:], {"block": True}) == 50
            queued(server)  # the rest is there; no loop turn has woken A yet
            with pytest.raises(BusyError):
                server.recv(Bytes(100), {"block": True})
            with pytest.raises(BusyError):
                server.wait(socket.EV_RECV)
            n, got = first.get(timeout=2)
            assert n == 100 and got is not None and bytes(got) == data

    run(body)


@quiet
def test_waitall_recv_while_another_waits_is_refused_before_reading(
    run: Runner, listener: Socket, spawn: Spawn
) -> None:
    """Defect 16: a block waitall recv while another greenlet waits in wait(EV_RECV)
    raises BusyError before reading anything: the data stays for the next recv."""

    def body() -> None:
        client, server = pair(listener)
        with client, server:
            waiter = spawn(server.wait, socket.EV_RECV, LONG_MS)
            parked(waiter)
            data = os.urandom(100)
            assert client.send(data, {"block": True}) == 100
            queued(server)
            with pytest.raises(BusyError):
                server.recv(Bytes(100), 100, {"block": True, "waitall": True})
            assert waiter.get(timeout=2) == socket.EV_RECV
            assert recv_exactly(server, 100) == data

    run(body)
