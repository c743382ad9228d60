"""xmake's ``core.base.poller`` for sockets: one wait for many of them.

    from xsock_green import poller, socket

    poller.insert(sock, socket.EV_RECV)
    for sock, events in poller.wait(1000):
        if events & socket.EV_RECV:
            n, data = sock.recv(buff)        # -1 here if sock was closed

Decisions where xmake's module leaves room:

* One poller per thread (per gevent hub), made on first use; sockets must
  belong to the calling thread.  Waiting from a greenlet yields, from the main
  greenlet it blocks, as every socket call does.  One greenlet at a time may
  wait on a thread's poller; a second gets ``BusyError``.
* Level-triggered, as xmake's default: a socket is reported by every ``wait``
  while it stays ready, so a loop that does not drain it sees it again.
* ``wait`` reports every ready socket at once, in one list of
  ``(sock, events)`` pairs; ``events`` is the ready subset of those inserted
  (``EV_RECV``, ``EV_SEND`` or both).  It returns ``[]`` on timeout.  Times
  are milliseconds: ``-1`` waits without limit, ``0`` polls.
* A socket closed while inserted is reported once with ``events == -1`` and
  removed.  ``-1 & EV_RECV`` is true, so a loop that tests the bits goes on to
  ``recv`` and gets that call's failure value, ``-1`` with ``last_error``
  saying "has been closed".  It never crashes the hub.
* Misuse raises at once: inserting a socket twice or modifying one that is
  not inserted (``ValueError``), events other than 1, 2 or 3, or an object
  that is not an xsock_green socket (``TypeError``).  A closed socket is not
  misuse: ``insert`` and ``modify`` return ``False``.
* The poller holds a reference to each inserted socket until it is removed
  or reported closed.
"""

from __future__ import annotations

from . import _hub, _multiwait
from ._options import check_int, check_timeout
from ._socket import Socket

__all__ = ["insert", "modify", "remove", "wait"]


def _checked(sock: object, events: int | None = None) -> Socket:
    if not isinstance(sock, Socket):
        raise TypeError(f"poller takes xsock_green sockets, not {type(sock).__name__}")
    if events is not None:
        check_int("events", events, 1, 3)
    sock._io.check_thread()
    return sock


def insert(sock: Socket, events: int) -> bool:
    """Watch ``sock`` for ``events`` (``EV_RECV``, ``EV_SEND`` or both).

    Returns ``True``; ``False`` when ``sock`` is closed.  Raises
    ``ValueError`` if it is already inserted (use ``modify``).
    """
    _checked(sock, events)
    mw = _multiwait.multiwait()
    fd = sock.rawfd()
    if sock in mw:
        if fd == -1:
            mw.discard(sock)
            return False
        raise ValueError(f"{sock} is already in the poller; use modify() to change its events")
    if fd == -1:
        return False
    mw.add(sock, fd, events)
    sock._polled = True
    return True


def modify(sock: Socket, events: int) -> bool:
    """Watch an inserted ``sock`` for ``events`` instead.

    Returns ``True``; ``False`` when ``sock`` is closed (it is then removed).
    Raises ``ValueError`` if it is not inserted.
    """
    _checked(sock, events)
    mw = _multiwait.multiwait()
    if sock not in mw:
        if sock.rawfd() == -1:
            return False
        raise ValueError(f"{sock} is not in the poller; use insert() first")
    if not mw.change(sock, events):
        mw.discard(sock)
        return False
    return True


def remove(sock: Socket) -> bool:
    """Stop watching ``sock``; ``False`` when it was not inserted."""
    _checked(sock)
    return _multiwait.multiwait().discard(sock)


def wait(timeout: float = -1) -> list[tuple[Socket, int]]:
    """Wait until inserted sockets are ready; every ready one as ``(sock, events)``.

    ``timeout`` in milliseconds (``-1`` no limit, ``0`` poll); ``[]`` when it
    passes first.  ``events == -1`` means ``sock`` was closed while inserted
    (it is removed).  Raises ``BusyError`` if another greenlet of this thread
    is already waiting, ``HubWaitError`` from the hub.
    """
    check_timeout("timeout", timeout)
    deadline = None if timeout == -1 else _hub.monotonic() + timeout / 1000.0
    return _multiwait.multiwait().wait(deadline, poll=timeout == 0)
