"""The poller's door to the hub: one wait for many sockets.

Each registered socket keeps one io watcher, unreferenced (a forgotten
registration must not keep ``gevent.wait()`` alive) and left running
between waits.  A watcher that fires stops itself: the hub never spins on a
ready socket nobody waits for.  The first fire during a wait schedules one
wake-up callback, so every watcher that fires in the same loop iteration is
in before the waiter runs.  libev hands out at most a batch of epoll events
per iteration, so the waiter then asks the kernel once, with a persistent
``poll`` set over every registered descriptor, which of them are ready: the
answer holds exactly the ready sockets however many there are.

A socket closed while registered is reported with ``CLOSED``.  ``IOWait``
calls ``loop.closing_fd`` before the descriptor goes, which runs a running
watcher's callback first; that callback sees ``rawfd() == -1`` and lets go
of the watcher and the ``poll`` slot.  A socket whose watcher had stopped is
checked by the next wait instead, and a poll (timeout 0), which does not
let the hub run, checks every socket.
"""

from __future__ import annotations

from typing import Any

from gevent.hub import get_hub
from gevent.monkey import get_original
from greenlet import getcurrent

from ._errors import BusyError, HubWaitError, WrongThreadError
from ._hub import (
    _POLLNVAL,
    CLOSED,
    TIMEOUT,
    _events_of,
    _monotonic,
    _poll_factory,
    _poll_mask,
    _take_turns,
    clock,
)

__all__ = ["MultiWait", "forget", "multiwait"]

_READY = 1


class _Slot:
    """One registered socket: its descriptor, events and watcher."""

    __slots__ = ("events", "fd", "key", "watcher")

    def __init__(self, key: Any, fd: int, events: int, watcher: Any) -> None:
        self.key = key
        self.fd = fd
        self.events = events
        self.watcher = watcher


class MultiWait:
    """Readiness of many sockets, reported together (``xsock_green.poller``).

    Keys are objects with ``rawfd()`` (``-1`` once closed); one instance
    serves one thread (``multiwait()``).  ``wait`` returns ``(key, events)``
    pairs, ``events`` being the ready subset of those registered, or
    ``CLOSED`` for a key closed while registered (it is then dropped).
    """

    __slots__ = (
        "_byfd",
        "_closed",
        "_fired",
        "_gen",
        "_poll",
        "_slots",
        "_waiter",
        "_wake_due",
        "loop",
    )

    def __init__(self) -> None:
        self.loop = get_hub().loop
        self._slots: dict[Any, _Slot] = {}
        self._byfd: dict[int, _Slot] = {}
        self._poll = _poll_factory()
        self._fired: list[_Slot] = []
        self._closed: list[Any] = []
        self._waiter: Any = None
        self._gen = 0
        self._wake_due = False

    def __contains__(self, key: object) -> bool:
        return key in self._slots or key in self._closed

    def __len__(self) -> int:
        return len(self._slots) + len(self._closed)

    def add(self, key: Any, fd: int, events: int) -> None:
        """Register ``key`` (open, on descriptor ``fd``) for ``events`` (1, 2 or 3)."""
        old = self._byfd.get(fd)
        if old is not None:
            # Two open sockets never share a descriptor: the old one was
            # closed while its watcher was stopped, and fd was reused.
            self._drop(old)
            self._closed.append(old.key)
        watcher = self.loop.io(fd, events)
        watcher.ref = False
        slot = _Slot(key, fd, events, watcher)
        self._slots[key] = self._byfd[fd] = slot
        self._poll.register(fd, _poll_mask(events))
        watcher.start(self._fire, slot)

    def change(self, key: Any, events: int) -> bool:
        """Watch ``events`` for a registered ``key``; ``False`` if it is closed."""
        slot = self._slots.get(key)
        if slot is None:
            return False
        if key.rawfd() != slot.fd:
            self._drop(slot)
            return False
        if slot.events != events:
            if slot in self._fired:
                self._fired.remove(slot)
            old = slot.watcher
            old.stop()
            old.close()
            slot.events = events
            slot.watcher = watcher = self.loop.io(slot.fd, events)
            watcher.ref = False
            self._poll.modify(slot.fd, _poll_mask(events))
            watcher.start(self._fire, slot)
        return True

    def discard(self, key: Any) -> bool:
        """Forget ``key``; ``False`` when it was not registered."""
        slot = self._slots.get(key)
        if slot is not None:
            self._drop(slot)
            return True
        if key in self._closed:
            self._closed.remove(key)
            return True
        return False

    def _drop(self, slot: _Slot, in_callback: bool = False) -> None:
        watcher = slot.watcher
        if watcher is None:
            return
        slot.watcher = None
        watcher.stop()
        if in_callback:
            # Not closed from inside its own callback: the loop does it next.
            self.loop.run_callback(watcher.close)
        else:
            watcher.close()
        if self._slots.get(slot.key) is slot:
            del self._slots[slot.key]
        if self._byfd.get(slot.fd) is slot:
            del self._byfd[slot.fd]
            self._poll.unregister(slot.fd)

    def _fire(self, slot: _Slot) -> None:
        # A hub callback: no switching here, only bookkeeping and one wake.
        watcher = slot.watcher
        if watcher is None:
            return
        if slot.key.rawfd() != slot.fd:
            self._drop(slot, in_callback=True)
            self._closed.append(slot.key)
        else:
            watcher.stop()
            self._fired.append(slot)
        self._schedule_wake()

    def _schedule_wake(self) -> None:
        if self._waiter is not None and not self._wake_due:
            self._wake_due = True
            self.loop.run_callback(self._wake, self._gen)

    def closing(self, key: Any, fd: int) -> None:
        """``key`` is closing: drop its watcher now and report it closed."""
        slot = self._slots.get(key)
        if slot is not None and slot.fd == fd:
            self._drop(slot)
            self._closed.append(key)
            self._schedule_wake()

    def _wake(self, gen: int) -> None:
        waiter = self._waiter
        if waiter is not None and gen == self._gen:
            waiter.switch(_READY)

    def _collect(self, sweep: bool) -> list[tuple[Any, int]]:
        found = [(key, CLOSED) for key in self._closed]
        self._closed.clear()
        if sweep:
            # A poll does not let the hub run, so a close made since the
            # last loop iteration has not reached the watchers: look.
            for slot in list(self._slots.values()):
                if slot.key.rawfd() != slot.fd:
                    self._drop(slot)
                    found.append((slot.key, CLOSED))
        fired = self._fired
        self._fired = []
        for slot in fired:
            if slot.watcher is not None and slot.key.rawfd() != slot.fd:
                self._drop(slot)
                found.append((slot.key, CLOSED))
        ready: set[int] = set()
        byfd = self._byfd
        for fd, mask in self._poll.poll(0):
            hit = byfd.get(fd)
            if hit is None:
                continue
            if mask & _POLLNVAL or hit.key.rawfd() != fd:
                self._drop(hit)
                found.append((hit.key, CLOSED))
                continue
            got = _events_of(mask) & hit.events
            if got:
                found.append((hit.key, got))
                ready.add(fd)
        for slot in fired:
            watcher = slot.watcher
            if watcher is None:
                continue
            if slot.fd in ready:
                # Still ready: stay stopped; the next wait asks the kernel.
                self._fired.append(slot)
            else:
                watcher.start(self._fire, slot)
        return found

    def wait(self, deadline: float | None, poll: bool = False) -> list[tuple[Any, int]]:
        """The ready ``(key, events)`` pairs; ``[]`` once ``deadline`` passed.

        ``poll`` asks once without waiting.  Raises ``HubWaitError`` from the
        hub, ``WrongThreadError`` from another thread and ``BusyError`` when
        another greenlet is already waiting here.
        """
        hub = get_hub()
        cur = getcurrent()
        if cur is hub:
            raise HubWaitError(
                "cannot wait from the hub greenlet (a watcher callback); "
                "spawn a greenlet for the poller"
            )
        if hub.loop is not self.loop:
            raise WrongThreadError("this poller belongs to the hub of another thread")
        if self._waiter is not None:
            raise BusyError("another greenlet is already waiting on this thread's poller")
        loop = self.loop
        while True:
            found = self._collect(sweep=poll)
            if found:
                # Sockets that are always ready (a writable one) would
                # otherwise let a wait loop hold the CPU.
                if clock(loop).overdue(loop.iteration):
                    _take_turns(hub, cur)
                return found
            if poll:
                return found
            timer = None
            if deadline is not None:
                remaining = deadline - _monotonic()
                if remaining <= 0:
                    return found
                timer = loop.timer(remaining, 0, True, -1)
            # The watchers are unreferenced: this keeps the loop alive (and
            # an endless wait on nothing an honest hang, not a LoopExit).
            keep = loop.async_()
            keep.start(_noop)
            self._gen += 1
            self._wake_due = False
            self._waiter = cur
            try:
                if timer is not None:
                    timer.start(cur.switch, TIMEOUT, update=True)
                hub.switch()
            finally:
                self._waiter = None
                keep.stop()
                keep.close()
                if timer is not None:
                    timer.close()


def _noop() -> None:
    pass


_thread_local: Any = get_original("_thread", "_local")()


def multiwait() -> MultiWait:
    """This thread's ``MultiWait``, made on first use (and anew with a new hub)."""
    mw: MultiWait | None = getattr(_thread_local, "multiwait", None)
    if mw is None or mw.loop is not get_hub().loop:
        mw = _thread_local.multiwait = MultiWait()
    return mw


def forget(key: Any, fd: int) -> None:
    """``key`` is closing: drop its watcher now, so that its descriptor can close at once.

    Called by ``Socket.close`` for a socket that was inserted in a poller;
    the next ``wait`` reports it closed.  A watcher left on the descriptor
    would make the close wait for a loop turn (and leak the descriptor if
    this thread never gave the loop one).
    """
    mw: MultiWait | None = getattr(_thread_local, "multiwait", None)
    if mw is not None:
        mw.closing(key, fd)
