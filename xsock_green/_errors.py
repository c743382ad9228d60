"""The exception types of xsock_green.

OS failures stay ``OSError`` (``SocketError`` is our subclass, whose text reads
like xmake's ``<socket: tcp4/7>: connection refused``); misuse gets named types,
as gevent names ``ConcurrentObjectUseError``.  The socket methods never return
these for bad input: they raise at once, before touching anything.
"""

from __future__ import annotations

import builtins

__all__ = ["BusyError", "HubWaitError", "SocketError", "TimeoutError", "WrongThreadError"]


class SocketError(OSError):
    """An operating-system failure on a socket, worded as xmake words it.

    ``str(err)`` is the xmake-style message, for example
    ``"<socket: tcp4/7>: connection refused"``; ``err.errno`` keeps the OS
    error number where there is one (``None`` for end of stream or a closed
    socket).
    """

    def __init__(self, errno: int | None, message: str) -> None:
        super().__init__(errno, message)

    def __str__(self) -> str:
        return str(self.strerror)


class TimeoutError(builtins.TimeoutError):
    """A block-mode ``send``, ``recv`` or ``sendfile`` ran out of time.

    ``moved`` holds the number of bytes already sent or received when the
    deadline passed, so nothing is lost (xmake raises ``"recv timeout!"``).
    """

    def __init__(self, message: str, moved: int = 0) -> None:
        super().__init__(message)
        self.moved = moved

    def __str__(self) -> str:
        return f"{self.args[0]} ({self.moved} bytes moved)"


class BusyError(RuntimeError):
    """A second greenlet tried to wait in a direction another greenlet waits in.

    One receiving and one sending waiter may share a socket; a second waiter
    in a taken direction is refused at once rather than silently orphaned.
    """


class WrongThreadError(RuntimeError):
    """A socket was used from a thread other than the one whose hub owns it."""


class HubWaitError(RuntimeError):
    """A waiting call was made from the hub greenlet (a watcher callback).

    The hub cannot wait for itself; the call would deadlock, so it is refused.
    """
