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

import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.socket
from gevent.hub import get_hub
from gevent.monkey import get_original
from greenlet import getcurrent

from ._errors import BusyError, HubWaitError, WrongThreadError

__all__ = [
    "CLOSED",
    "SLICE",
    "TIMEOUT",
    "IOWait",
    "get_thread_ident",
    "monotonic",
    "poll_now",
    "resolve",
    "sleep",
]

#: Outcomes switched into a waiter; readiness is the event bit (1 or 2).
TIMEOUT = 0
CLOSED = -1

#: How long a transfer that never has to wait may hold the CPU.  The hot
#: paths of ``_socket`` test ``monotonic() - io.turn > SLICE`` inline (one C
#: call) and call ``cooperate`` only when it holds.
SLICE = _SLICE = 0.02

get_thread_ident: Callable[[], int] = get_original("_thread", "get_ident")
_poll_factory: Callable[[], Any] = get_original("select", "poll")
monotonic = _monotonic = time.monotonic
_wall = time.time


_POLLIN, _POLLOUT, _POLLERR, _POLLHUP, _POLLNVAL = 1, 4, 8, 16, 32


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


def resolve(host: str, port: int, family: int, type_: int) -> Any:
    """Resolve ``host`` without blocking the hub; returns the first sockaddr."""
    infos = gevent.socket.getaddrinfo(host, port, family, type_)
    return infos[0][4]


def sleep(seconds: float) -> None:
    """Sleep cooperatively (used only where there is nothing to wait on)."""
    gevent.sleep(seconds)


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


class IOWait:
    """Readiness waits, deadlines and the close protocol for one descriptor."""

    __slots__ = ("_r", "_w", "fd", "hub", "loop", "rwaiter", "thread", "turn", "wwaiter")

    def __init__(self, fd: int) -> None:
        self.hub = hub = get_hub()
        self.loop = hub.loop
        self.thread = get_thread_ident()
        self.fd = fd
        self._r: Any = None
        self._w: Any = None
        self.rwaiter: Any = None
        self.wwaiter: Any = None
        #: When this socket's user last gave the hub a turn (waited or yielded).
        self.turn = _monotonic()

    def check_thread(self) -> None:
        """Raise ``WrongThreadError`` unless called from the owning thread."""
        if get_thread_ident() != self.thread:
            raise WrongThreadError(
                "this socket belongs to the hub of another thread; "
                "create sockets in the thread that uses them"
            )

    def wait(self, events: int, deadline: float | None) -> int:
        """Wait until the descriptor is ready for ``events``.

        Returns the event bit that fired (1 read, 2 write), ``TIMEOUT`` when
        the monotonic ``deadline`` passed first, or ``CLOSED`` when the socket
        was closed meanwhile.  Raises ``BusyError`` if a direction already has
        a waiter, ``HubWaitError`` when called from the hub itself.  The
        caller has checked the thread (``check_thread``) already.
        """
        hub = self.hub
        cur = getcurrent()
        if cur is hub:
            raise HubWaitError(
                "cannot wait from the hub greenlet (a watcher callback); "
                "spawn a greenlet for blocking socket calls"
            )
        if deadline is None and events == 1 and self.rwaiter is None and self._r is not None:
            # The hot case (a block recv with no timeout), with nothing to decide.
            r = self._r
            self.rwaiter = cur
            r.start(cur.switch, 1)
            try:
                result: int = hub.switch()
                self.turn = _monotonic()
                return result
            finally:
                r.stop()
                self.rwaiter = None
        if (events & 1 and self.rwaiter is not None) or (events & 2 and self.wwaiter is not None):
            raise BusyError(
                "another greenlet is already waiting to "
                + ("receive on" if events & 1 and self.rwaiter is not None else "send on")
                + " this socket"
            )
        timer = None
        if deadline is not None:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return TIMEOUT
            timer = self.loop.timer(remaining, 0, True, -1)
        switch = cur.switch
        r = w = None
        if events & 1:
            r = self._r
            if r is None:
                r = self._r = self.loop.io(self.fd, 1)
            self.rwaiter = cur
            r.start(switch, 1)
        if events & 2:
            w = self._w
            if w is None:
                w = self._w = self.loop.io(self.fd, 2)
            self.wwaiter = cur
            w.start(switch, 2)
        try:
            if timer is not None:
                timer.start(switch, TIMEOUT, update=True)
            result = hub.switch()
            self.turn = _monotonic()
            return result
        finally:
            if r is not None:
                r.stop()
                self.rwaiter = None
            if w is not None:
                w.stop()
                self.wwaiter = None
            if timer is not None:
                timer.close()

    def cooperate(self) -> None:
        """Let other greenlets run if this socket's user has not for a time slice.

        A transfer that never has to wait would otherwise hold the CPU until
        it ends.  The slice is counted from this socket's last wait or yield,
        not from the loop's last turn: a greenlet woken late in a long loop
        turn (a thousand busy connections) has not held the CPU, and making
        it yield would only add a loop turn to its latency.
        """
        if _monotonic() - self.turn > _SLICE:
            cur = getcurrent()
            if cur is not self.hub:
                _take_turns(self.hub, cur)
                self.turn = _monotonic()

    def close(self, closer: Callable[[], None]) -> None:
        """Wake this descriptor's waiters, tell the loop, then call ``closer``.

        The order is gevent's: a watcher must never be active on a descriptor
        that libev does not know is gone.  Waiters are woken from a hub
        callback with ``CLOSED``; ``closer`` runs once no watcher may fire.
        """
        loop = self.loop
        for watcher in (self._r, self._w):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._r = self._w = None
        for glet in {self.rwaiter, self.wwaiter}:
            if glet is not None:
                loop.run_callback(self._wake_closed, glet)
        if loop.closing_fd(self.fd):
            # Someone else's watcher on this descriptor was woken; close
            # after it has had its turn, as gevent's own sockets do.
            check = loop.check()

            def _later() -> None:
                check.stop()
                check.close()
                closer()

            check.start(_later)
        else:
            closer()

    def _wake_closed(self, glet: Any) -> None:
        if glet is self.rwaiter or glet is self.wwaiter:
            glet.switch(CLOSED)

    def watching(self) -> bool:
        """True while a greenlet waits on this descriptor."""
        return self.rwaiter is not None or self.wwaiter is not None
