"""The only door to gevent's hub.

Every question about waiting is answered here and nowhere else: may this
caller wait, wait for readiness with a deadline, give other greenlets a turn
during a long transfer, wake the waiters of a closing socket, and resolve a
host name without blocking the hub.

Each socket owns one ``IOWait``.  It keeps a read and a write watcher for the
socket's descriptor (made on first use, never reused for another descriptor)
and one waiter slot per direction.  A wait starts the watcher with the
waiting greenlet's ``switch`` as its callback and switches to the hub; the
watcher (or a deadline timer, or ``close``) switches back a small integer
that says why.  No exception object is made on this path.
"""

from __future__ import annotations

import fcntl
import struct
import termios
import time
from collections.abc import Callable
from typing import Any, Final

import gevent
import gevent.socket
from gevent.hub import get_hub
from gevent.monkey import get_original

from ._compile import PURE_PYTHON
from ._errors import BusyError, HubWaitError, WrongThreadError

__all__ = [
    "CLOSED",
    "GRACE",
    "SLICE",
    "TIMEOUT",
    "IOWait",
    "clock",
    "fionread",
    "get_thread_ident",
    "monotonic",
    "poll_now",
    "queued",
]

#: Outcomes switched into a waiter; readiness is the event bit (1 or 2).
TIMEOUT: Final = 0
CLOSED: Final = -1

#: How long the loop may go without polling while transfers that never
#: have to wait run: then the one running gives the others a turn.
SLICE: Final = 0.01
_SLICE: Final = SLICE
#: How long a greenlet must have run since it came back from the hub before
#: it is asked to yield (see ``IOWait.overdue``).
GRACE: Final = 0.001
_GRACE: Final = GRACE
#: The small pieces a transfer moves after a wait before it reads the clock:
#: in request/response traffic every receive waits, so no call reads it.  A
#: large piece reads it from the first: four free 1 MiB pieces per greenlet
#: and turn made six parallel senders hold the loop for up to 40 ms.
_FREE: Final = 4
#: After those, a small piece (under ``_SMALL`` bytes) reads the clock only
#: every ``_EVERY``-th time (a power of two): a datagram server that never
#: waits would otherwise read it twice per datagram, and 15 small pieces
#: take well under a millisecond.  A larger piece always reads it.
_EVERY: Final = 16
_SMALL: Final = 65536
#: Timer priorities (libev runs higher ones first; I/O is 0): a deadline
#: that passes in the turn its data arrives loses to the data, and a pause
#: runs after everything else that is ready.
_DEADLINE: Final = -1
_LAST: Final = -2

get_thread_ident: Final[Callable[[], int]] = get_original("_thread", "get_ident")
_poll_factory: Final[Callable[[], Any]] = get_original("select", "poll")
monotonic: Final = time.monotonic
_monotonic: Final = monotonic


_POLLIN: Final = 1
_POLLOUT: Final = 4
_POLLERR: Final = 8
_POLLHUP: Final = 16
_POLLNVAL: Final = 32


def _poll_mask(events: int) -> int:
    """The ``poll(2)`` mask for event bits (1 read, 2 write)."""
    return (_POLLIN if events & 1 else 0) | (_POLLOUT if events & 2 else 0)


def _events_of(mask: int) -> int:
    """Event bits for a ``poll(2)`` result; an error or hang-up wakes both
    directions, so that the next call reports why."""
    got = 1 if mask & (_POLLIN | _POLLERR | _POLLHUP) else 0
    if mask & (_POLLOUT | _POLLERR | _POLLHUP):
        got |= 2
    return got


def poll_now(fd: int, events: int) -> int:
    """Return which of ``events`` (1 read, 2 write) are ready, without waiting."""
    p = _poll_factory()
    p.register(fd, _poll_mask(events))
    got = 0
    for _fd, mask in p.poll(0):
        got |= _events_of(mask)
    return got & events


#: ``fionread``'s request, and the C ``int`` its answer is.
_FIONREAD: Final = termios.FIONREAD
_INT: Final = struct.Struct("i")
_NO_INT: Final = bytes(_INT.size)
_ioctl: Final = fcntl.ioctl


def fionread(fd: int) -> int:
    """The bytes queued to be read on ``fd`` (``1`` when the kernel will not say).

    The answer comes back as new bytes, not in a shared buffer: ``ioctl``
    lets other threads run before its caller could read one.
    """
    try:
        answer: bytes = _ioctl(fd, _FIONREAD, _NO_INT)
    except OSError:
        return 1
    count: int = _INT.unpack(answer)[0]
    return count


def _queued() -> Callable[[int], int]:
    """``fionread``, or the same question in C where the build made it (``_kernel.c``).

    ``fcntl.ioctl`` lets go of the GIL around a call that never blocks, and
    taking it back costs more than the call: about 0.4 µs of the server's
    user time per 1 KiB request (``python -m bench.ab``, unix echo).  The
    pure-Python build keeps ``fionread``.
    """
    if not PURE_PYTHON:
        try:
            from ._kernel import queued as in_c
        except ImportError:
            pass
        else:
            return in_c
    return fionread


#: ``queued(fd)``: the bytes queued to be read on ``fd`` (``1`` when the
#: kernel will not say); a block recv asks it before a read that may find
#: nothing (``_core``).
queued: Final = _queued()


def _quietly(closer: Callable[[], None]) -> None:
    """Close a descriptor: one that was closed behind the socket's back
    (``EBADF``) is gone all the same, and ``close()`` never raises (SPEC)."""
    try:
        closer()
    except OSError:
        pass


def _take_turns(hub: Any, cur: Any) -> None:
    """Switch to the hub for one loop turn (I/O polled, due timers run), then back.

    A zero timer, not ``run_callback``: callbacks run before the loop polls,
    so a greenlet woken by one would not let I/O or timers in.
    """
    timer = hub.loop.timer(0.0)
    timer.start(cur.switch, 0, update=True)
    try:
        hub.switch()
    finally:
        timer.close()


def lookup(host: str, port: int, family: int, type_: int) -> Any:
    try:
        return gevent.socket.getaddrinfo(host, port, family, type_)[0][4]
    except UnicodeError as exc:  # "a..b": the IDNA codec refuses an empty label
        return OSError(None, f"invalid host name: {exc}")
    except OSError as exc:
        return exc


class _Clock:
    """When the first transfer checked in during the loop's current turn.

    libev's own ``now()`` cannot tell: every timer started with ``update``
    moves it.
    """

    __slots__ = ("iteration", "since")

    def __init__(self) -> None:
        self.iteration = -1
        self.since = 0.0

    def overdue(self, iteration: int, now: float = -1.0) -> bool:
        """True when a slice has passed since the first check of this turn.

        ``now`` is the caller's clock reading, when it has one.
        """
        if now < 0:
            now = _monotonic()
        if self.iteration != iteration:
            self.iteration = iteration
            self.since = now
            return False
        return bool(now - self.since > _SLICE)


_thread_local: Final[Any] = get_original("_thread", "_local")()


def clock(loop: Any) -> _Clock:
    """The ``_Clock`` of ``loop`` (one per hub, so one per thread)."""
    found: tuple[Any, _Clock] | None = getattr(_thread_local, "clock", None)
    if found is None or found[0] is not loop:
        found = _thread_local.clock = (loop, _Clock())
    return found[1]


class IOWait:
    """The door to the hub for one descriptor: slots, waits, turns and closing.

    ``rowner``/``wowner`` are the greenlets that own the receive and send
    directions for the whole of a block call (``Socket`` takes them before
    its first system call); ``rpark``/``wpark`` are set while that greenlet
    is switched out here, so that ``close`` knows whom to wake.
    """

    __slots__ = (
        "_r",
        "_w",
        "clock",
        "fd",
        "hub",
        "hub_switch",
        "loop",
        "pieces",
        "rowner",
        "rpark",
        "thread",
        "turn",
        "wakes",
        "wowner",
        "wpark",
    )

    def __init__(self, fd: int) -> None:
        self.hub = hub = get_hub()
        #: ``hub.switch``, bound once: the hub is a Python subclass of
        #: ``greenlet``, so a lookup per wait searches its type and its dict.
        self.hub_switch: Any = hub.switch
        self.loop = hub.loop
        self.clock = clock(hub.loop)
        self.thread = get_thread_ident()
        self.fd = fd
        self._r: Any = None
        self._w: Any = None
        self.rowner: Any = None
        self.wowner: Any = None
        self.rpark: Any = None
        self.wpark: Any = None
        #: The close wake-ups scheduled and not yet run: ``(greenlet, callback)``.
        self.wakes: list[tuple[Any, Any]] = []
        #: Pieces moved since this socket's user last came back from the
        #: hub, and when the clock started counting them (``overdue``).
        self.pieces = 0
        self.turn = -1.0

    def check_thread(self) -> None:
        """Raise ``WrongThreadError`` unless called from the owning thread."""
        if get_thread_ident() != self.thread:
            raise WrongThreadError(
                "this socket belongs to the hub of another thread; "
                "create sockets in the thread that uses them"
            )

    def busy(self, slot: int) -> BusyError:
        """The error for a call in a direction another greenlet is using."""
        what = (
            "waiting to receive on"
            if slot & 1 and self.rowner is not None
            else "waiting to send on"
        )
        return BusyError(f"another greenlet is already {what} this socket")

    def others_ready(self) -> bool:
        """True when the loop has other work queued for this turn.

        Waiting then means running after all of it, so a caller that guessed
        "nothing there yet" should ask the kernel instead.  ``_callbacks`` is
        gevent's queue of scheduled callbacks (greenlets to start, events
        set); ``pendingcnt`` counts the watchers libev has yet to run.
        """
        loop = self.loop
        return bool(loop.pendingcnt or loop._callbacks)

    def wait(
        self, events: int, deadline: float | None, cur: Any, slot: int, prio: int = _DEADLINE
    ) -> int:
        """Switch ``cur`` (the owner of ``slot``) out until the descriptor is ready.

        ``events`` (1 read, 2 write, 3 both, 0 none: only the deadline) are
        watched with the socket's persistent watchers.  Returns the event bit
        that fired, ``TIMEOUT`` when the monotonic ``deadline`` passed first,
        or ``CLOSED`` when the socket was closed meanwhile.  Raises
        ``HubWaitError`` from the hub greenlet.
        """
        hub = self.hub
        if cur is hub:
            raise HubWaitError(
                "cannot wait from the hub greenlet (a watcher callback); "
                "spawn a greenlet for blocking socket calls"
            )
        timer = None
        if deadline is not None:
            seconds = deadline - _monotonic()
            if seconds <= 0:
                if prio != _LAST:
                    return TIMEOUT
                seconds = 0.0
            timer = self.loop.timer(seconds, 0, True, prio)
        switch = cur.switch
        # The socket's persistent watchers, made on first use.
        r = w = None
        if events == 1 or events == 3:
            r = self._r or self._watcher(1)
            r.start(switch, 1)
        if events >= 2:
            w = self._w or self._watcher(2)
            w.start(switch, 2)
        if timer is not None:
            timer.start(switch, TIMEOUT, update=True)
        if slot == 1:
            self.rpark = cur
        elif slot == 2:
            self.wpark = cur
        else:
            self.rpark = self.wpark = cur
        try:
            result: int = self.hub_switch()
        finally:
            if slot == 1:
                self.rpark = None
            elif slot == 2:
                self.wpark = None
            else:
                self.rpark = self.wpark = None
            if r is not None:
                r.stop()
            if w is not None:
                w.stop()
            if timer is not None:
                timer.close()
            if self.wakes:
                self._unwake(cur)
            self.pieces = 0
            self.turn = -1.0
        return result

    def _watcher(self, events: int) -> Any:
        watcher = self.loop.io(self.fd, events)
        if events == 1:
            self._r = watcher
        else:
            self._w = watcher
        return watcher

    def pause(self, cur: Any, slot: int) -> None:
        """Give the loop one turn (due timers, polled I/O), then come back.

        The zero timer has the lowest priority, so that everything else that
        is ready in the next loop turn runs first, however many transfers
        are pausing.
        """
        self.wait(0, _monotonic(), cur, slot, _LAST)

    def overdue(self, moved: int) -> bool:
        """Count a piece of ``moved`` bytes; True when it is time to give the loop a turn.

        The owner must have run for ``GRACE`` since it came back from the
        hub (counted from its first clock reading since: a large piece
        reads the clock, a small one only after the first ``_FREE`` and then
        every ``_EVERY``-th time): a greenlet woken late in a long loop turn
        has not held the CPU, and yielding would only add a turn to its latency.
        Then cooperating transfers must have held this loop turn for a
        slice, on the hub's clock, shared by every socket, so that several
        transfers that never wait share one slice.
        """
        pieces = self.pieces = self.pieces + 1
        if moved < _SMALL and (pieces <= _FREE or (pieces - _FREE) & (_EVERY - 1) != 1):
            return False
        now = _monotonic()
        if self.turn < 0:  # the first reading since the hub: the grace starts
            self.turn = now
            return False
        return now - self.turn > _GRACE and self.clock.overdue(self.loop.iteration, now)

    def resolve(
        self, host: str, port: int, family: int, type_: int, deadline: float | None, cur: Any
    ) -> Any:
        """Resolve ``host`` cooperatively within ``deadline``; a sockaddr.

        Returns ``TIMEOUT`` or ``CLOSED`` like ``wait`` and the ``OSError``
        of a failed lookup (not raised: the caller words it).  The lookup
        runs in a greenlet of its own so that the deadline and ``close``
        can end the wait without disturbing gevent's resolver.
        """
        job = gevent.spawn(lookup, host, port, family, type_)

        def done(_job: Any) -> None:
            if self.wpark is cur:
                cur.switch(1)

        job.rawlink(done)
        try:
            result = self.wait(0, deadline, cur, 2)
            return job.value if result > 0 else result
        finally:
            job.unlink(done)
            if not job.dead:
                job.kill(block=False)

    def close(self, closer: Callable[[], None]) -> None:
        """Wake this descriptor's waiters, tell the loop, then call ``closer``.

        The order is gevent's: a watcher must never be active on a descriptor
        that libev does not know is gone.  Waiters are woken from a hub
        callback with ``CLOSED``; ``closer`` runs once no watcher may fire.
        A loop that is already destroyed has nothing to tell: the descriptor
        is just closed.
        """
        loop = self.loop
        try:
            for watcher in (self._r, self._w):
                if watcher is not None:
                    watcher.stop()
                    watcher.close()
            self._r = self._w = None
            for glet in {self.rpark, self.wpark}:
                if glet is not None:
                    self.wakes.append((glet, loop.run_callback(self._wake_closed, glet)))
            foreign = loop.closing_fd(self.fd)
        except ValueError:  # "operation on destroyed loop"
            foreign = False
        if not foreign:
            _quietly(closer)
            return
        # Someone else's watcher on this descriptor was woken; close after
        # it has had its turn, as gevent's own sockets do.
        check = loop.check()

        def _later() -> None:
            check.stop()
            check.close()
            _quietly(closer)

        check.start(_later)

    def _wake_closed(self, glet: Any) -> None:
        self._unwake(glet)
        if glet is self.rpark or glet is self.wpark:
            glet.switch(CLOSED)

    def _unwake(self, glet: Any) -> None:
        """Drop ``glet``'s scheduled close wake-up: it is running already."""
        for i, (waiter, callback) in enumerate(self.wakes):
            if waiter is glet:
                callback.stop()
                del self.wakes[i]
                return

    def watching(self) -> bool:
        """True while a greenlet is switched out waiting on this descriptor."""
        return self.rpark is not None or self.wpark is not None
