"""The socket object: xmake's ``socket`` methods over a non-blocking OS socket.

``Socket`` is the last of a line of classes: ``_core.Core`` (the state
that ``_core.move``, the transfer routine, works on), ``_transfer.Transfer``
(``send``, ``recv``, ``sendto``, ``recvfrom``), ``_setup.Setup`` (bind,
listen, accept, connect, TLS) and this module's naming, accessors,
``sendfile``, ``wait``, ``ctrl``, ``kill`` and ``close``.  A method
validates its arguments (misuse raises at once, before anything happens);
an ``OSError`` raised inside becomes the method's failure value through
``Core._failed``, which the ``xmake`` decorator applies to the methods that
do not move data.

The OS socket is the C-level ``_socket.socket``, which monkey-patching never
replaces, so behaviour is the same in patched and unpatched programs.
"""

from __future__ import annotations

import _socket
import errno as _errno
import sys
import warnings
from typing import Any

from . import _hub, _tls
from ._args import format_addr
from ._constants import (
    _FAMILY_DIGIT,
    _TYPE_NAMES,
    CTRL_FLAGS,
    CTRL_GET_BLOCK,
    CTRL_GETS,
    CTRL_SET_BLOCK,
    CTRL_SET_NOSIGPIPE,
    CTRL_SET_TCP_KEEPINTVL,
    CTRL_SETS,
    INT_MAX,
    TCP,
    UNIX,
)
from ._files import send_file
from ._options import Options, check_int, options
from ._setup import Setup, xmake

__all__ = ["Socket"]

_SEND_FLAGS = getattr(_socket, "MSG_NOSIGNAL", 0)

_K_SEND = frozenset({"block", "start", "last", "timeout"})


class Socket(Setup):
    """One xmake socket: non-blocking at the OS level, waiting on gevent's hub.

    Create sockets with the functions of ``xsock_green.socket``.  Every
    method returns xmake's values; ``last_error`` explains the last failure.
    """

    # __weakref__ is here, not in Core: a mypyc-compiled Core cannot have it.
    __slots__ = ("__weakref__",)

    # -- naming ---------------------------------------------------------

    def _name(self, fd: object) -> str:
        if self._family == UNIX:
            kind = "unix"
        else:
            kind = _TYPE_NAMES[self._type] + _FAMILY_DIGIT[self._family]
        return f"<socket: {kind}/{fd}>"

    def __str__(self) -> str:
        sock = self._sock
        return self._name("closed" if sock is None else sock.fileno())

    def __repr__(self) -> str:
        sock = self._sock
        parts = [str(self)[9:-1]]
        if sock is not None:
            for label, getter in (("laddr", sock.getsockname), ("raddr", sock.getpeername)):
                try:
                    addr = format_addr(getter())
                except OSError:
                    continue
                if addr:
                    parts.append(f"{label}={addr}")
        return f"<xsock_green.Socket {' '.join(parts)}>"

    # -- the simple accessors -------------------------------------------

    def type(self) -> int:
        """``TCP``, ``UDP`` or ``ICMP`` (a unix stream socket is ``TCP``)."""
        return self._type

    def family(self) -> int:
        """``IPV4``, ``IPV6`` or ``UNIX``."""
        return self._family

    def rawfd(self) -> int:
        """The OS file descriptor, or ``-1`` once closed."""
        sock = self._sock
        return -1 if sock is None else int(sock.fileno())

    fileno = rawfd

    def _query(self, getter: str) -> Any:
        """An address query: ``None`` when it fails (``last_error`` set if closed)."""
        sock = self._sock
        if sock is None:
            self._failed(self._closed(), None)
            return None
        try:
            addr = getattr(sock, getter)()
        except OSError:
            return None
        return addr if addr else None  # an unbound unix peer has no name

    def sockname(self) -> Any:
        """The local address as Python gives it (``(ip, port)``, a path), or ``None``."""
        return self._query("getsockname")

    def peername(self) -> Any:
        """The peer address as Python gives it, or ``None`` when not connected."""
        peer = self._peer
        if peer is None or self._sock is None:
            return self._query("getpeername")
        return peer or None  # an unnamed unix client, as _query says

    def peeraddr(self) -> str | None:
        """``"ip:port"``, ``"[ip6]:port"`` or the unix path; ``None`` when not connected."""
        return format_addr(self.peername())

    # -- files ------------------------------------------------------------

    @xmake(-1)
    def sendfile(self, file: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Send a file's bytes (keys ``block``, ``start``, ``last``, ``timeout``).

        ``file`` is a binary file object or a path.  A file object is sent
        from its current position (``start``/``last`` count from there) and
        its position ends after what was sent, as ``socket.sendfile`` does.
        A regular file goes zero-copy (``os.sendfile``); a file of unknown
        size (a pipe) is read and sent until its end, in block mode only.
        Returns bytes sent, ``0`` would block, ``-1`` on failure; block mode
        sends the whole range or raises ``xsock_green.TimeoutError``.
        """
        o = options("sendfile", _K_SEND, opt, kw)
        return send_file(self, file, o, o.get("block", self._block))

    # -- events and control -------------------------------------------------

    @xmake(-1)
    def wait(self, events: int, timeout: float = -1) -> int:
        """Wait for ``EV_RECV``/``EV_SEND`` (or both); returns what happened.

        ``0`` on timeout (``0`` polls, ``-1`` waits forever), ``-1`` on
        failure or when the socket is closed meanwhile.  The directions
        waited in are taken for the wait, as a block call takes them.
        """
        if self._tls is None:
            return self._wait(events, timeout)
        return _tls.wait(self, events, timeout)

    def ctrl(self, code: int, value: Any = None) -> Any:
        """Set (even codes) or get (odd codes) a socket option.

        A SET code returns ``True``/``False``; a GET code returns the value
        (``None`` on failure).  ``CTRL_SET_BLOCK`` makes ``block`` the default
        of this socket's calls; the OS socket stays non-blocking.
        """
        check_int("code", code, 0, 10)
        if code in CTRL_GETS:
            if value is not None:
                raise TypeError(f"ctrl code {code} reads a value and takes none")
            return self._ctrl_get(code)
        if code in CTRL_FLAGS:
            if not isinstance(value, (bool, int)):
                raise TypeError(f"ctrl code {code} takes a bool, not {type(value).__name__}")
            value = bool(value)
        else:
            check_int("value", value, 1 if code == CTRL_SET_TCP_KEEPINTVL else 0, INT_MAX)
        return self._ctrl_set(code, value)

    @xmake(None)
    def _ctrl_get(self, code: int) -> Any:
        sock = self._live()
        if code == CTRL_GET_BLOCK:
            return self._block
        level, name = CTRL_GETS[code]
        if level == _socket.IPPROTO_TCP:
            self._tcp_only(code)
            return bool(sock.getsockopt(level, name))
        return sock.getsockopt(level, name)

    @xmake(False)
    def _ctrl_set(self, code: int, value: Any) -> bool:
        sock = self._live()
        if code == CTRL_SET_BLOCK:
            self._block = value
        elif code == CTRL_SET_NOSIGPIPE:
            # Sends already pass MSG_NOSIGNAL where the OS has it.
            if not _SEND_FLAGS and sys.platform != "win32":
                raise OSError(_errno.ENOTSUP, "no MSG_NOSIGNAL on this system")
        else:
            level, name = CTRL_SETS[code]
            if level == _socket.IPPROTO_TCP:
                self._tcp_only(code)
            sock.setsockopt(level, name, int(value))
        return True

    def _tcp_only(self, code: int) -> None:
        if self._type != TCP or self._family == UNIX:
            raise OSError(_errno.ENOPROTOOPT, f"ctrl code {code} is for TCP sockets only")

    # -- ending -----------------------------------------------------------

    @xmake(False)
    def kill(self) -> bool:
        """Shut the socket down both ways; waiters and the peer see end of stream.

        From then on a receive that finds nothing is an end of stream (a
        datagram socket has no peer to tell it so).
        """
        sock = self._live()
        self._shut = True
        try:
            sock.shutdown(_socket.SHUT_RDWR)
        except OSError as exc:
            # An unconnected datagram socket says so, yet the shutdown took.
            if exc.errno != _errno.ENOTCONN or self._stream:
                raise
        return True

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        sock = getattr(self, "_sock", None)
        if sock is None:
            return
        warnings.warn(f"unclosed {self!r}", ResourceWarning, source=self, stacklevel=1)
        self._sock = None
        if self._io.thread == _hub.get_thread_ident() and not self._io.watching():
            self._io.close(sock.close)
        else:
            sock.close()
