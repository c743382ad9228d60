"""The socket object: xmake's ``socket`` methods over a non-blocking OS socket.

Every method is a thin caller of the transfer core (``_core.Core._move``);
setting a connection up (addresses, bind, listen, accept, connect, TLS) is
in ``_setup.Setup``, which ``Socket`` extends.  A method validates its
arguments (misuse raises at once, before anything happens),
turns them into a view of the caller's bytes, and turns the core's count
into xmake's return values.  An ``OSError`` raised inside becomes the
method's failure value through ``Core._failed``; the ``_xmake`` decorator
does that for the methods that do not move data.

The OS socket is the C-level ``_socket.socket``, which monkey-patching never
replaces, so behaviour is the same in patched and unpatched programs.
"""

from __future__ import annotations

import _socket
import errno as _errno
import sys
import warnings
from collections.abc import Mapping
from typing import Any

from . import _hub, _tls
from ._args import data_view, format_addr, received, span
from ._args import target as _target
from ._bytes import Bytes
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
    UDP,
    UNIX,
)
from ._core import RECV, RECVFROM, SEND, SENDTO, TLS_RECV, TLS_SEND, xmake
from ._errors import TimeoutError
from ._files import send_file
from ._options import BLOCK, EMPTY, Options, check_int, options
from ._setup import Setup

__all__ = ["Socket"]

_SEND_FLAGS = getattr(_socket, "MSG_NOSIGNAL", 0)

_K_SEND = frozenset({"block", "start", "last", "timeout"})
_K_RECV = frozenset({"block", "start", "timeout", "waitall"})
_K_DGRAM = frozenset({"block", "timeout"})

_ident = _hub.get_thread_ident
_monotonic = _hub.monotonic
_new = object.__new__
_FAILED_RECV: tuple[int, None] = (-1, None)
_NOTHING_RECV: tuple[int, None] = (0, None)
_FAILED_FROM: tuple[int, None, None, None] = (-1, None, None, None)
_NOTHING_FROM: tuple[int, None, None, None] = (0, None, None, None)


class Socket(Setup):
    """One xmake socket: non-blocking at the OS level, waiting on gevent's hub.

    Create sockets with the functions of ``xsock_green.socket``.  Every
    method returns xmake's values; ``last_error`` explains the last failure.
    """

    # __weakref__ is here, not in Core: a mypyc-compiled Core cannot have it.
    __slots__ = ("__weakref__", "_dest", "_peer")

    def __init__(self, type_: int, family: int, sock: Any) -> None:
        self._sock: Any = None
        self._type = type_
        self._family = family
        self._block = False
        self._stream = type_ == TCP
        self._rflags = 0 if self._stream else getattr(_socket, "MSG_TRUNC", 0)
        self._rtry = 1
        self._shut = False
        self._polled = False
        self._from: Any = None
        self._to: Any = None
        self._tls: Any = None
        self._tlsctx: Any = None
        self._dest: tuple[str, int, Any] | None = None
        self._peer: Any = None  # the client's address from a PROXY protocol header
        self._last = None
        self._io = _hub.IOWait(sock.fileno())
        sock.setblocking(False)
        self._sock = sock

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

    # -- streams ----------------------------------------------------------

    def send(self, data: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Send ``data`` (keys ``block``, ``start``, ``last``, ``timeout``).

        Returns the bytes sent (``0``: would block), ``-1`` on failure.  In
        block mode it sends the whole range or fails; a timeout raises
        ``xsock_green.TimeoutError`` with ``moved`` set.
        """
        o = options("send", _K_SEND, opt, kw) if opt is not None or kw else EMPTY
        view = data_view(data)
        if o is BLOCK:
            block = True
        else:
            block = o.get("block", self._block)
            if "start" in o or "last" in o:
                begin, end = span(o, len(view))
                view = memoryview(view)[begin:end]
        try:
            n = self._move(SEND if self._tls is None else TLS_SEND, view, block, o)
        except TimeoutError:
            raise
        except OSError as exc:
            return self._failed(exc, -1)
        return n if n >= 0 else 0

    def recv(
        self,
        buff: Bytes,
        size: int | Options | None = None,
        opt: Options | None = None,
        /,
        **kw: Any,
    ) -> tuple[int, Bytes | None]:
        """Receive into ``buff`` (keys ``block``, ``start``, ``timeout``, ``waitall``).

        Returns ``(n, data)`` with ``data`` a view of ``buff``; ``(0, None)``
        would block; ``(-1, None)`` end of stream or failure.  Block mode
        waits for at least one byte, or with ``waitall`` for exactly ``size``.
        On a UDP socket it receives one datagram (``(0, data)`` for an empty
        one); a datagram larger than the range is cut, and ``last_error``
        says so.
        """
        if opt is None and size is not None and type(size) is not int and isinstance(size, Mapping):
            size, opt = None, size  # recv(buff, {...})
        o = options("recv", _K_RECV, opt, kw) if opt is not None or kw else EMPTY
        target = _target(buff, size, o)
        try:
            n = self._move(
                RECV if self._tls is None else TLS_RECV,
                target,
                True if o is BLOCK else o.get("block", self._block),
                o,
            )
        except TimeoutError:
            raise
        except OSError as exc:
            return self._failed(exc, _FAILED_RECV)
        if n < 0 or (n == 0 and self._stream):
            return _NOTHING_RECV
        data = _new(Bytes)
        data._mv = target if n == len(target) else target[:n]
        return n, data

    # -- datagrams --------------------------------------------------------

    def _udp_only(self, what: str) -> None:
        if self._type != UDP:
            raise TypeError(f"{what}() is for UDP sockets; {self} is not one")

    def sendto(
        self, data: Any, addr: str, port: int, opt: Options | None = None, /, **kw: Any
    ) -> int:
        """Send one datagram to ``addr``:``port`` (keys ``block``, ``timeout``).

        Returns the bytes sent, ``0`` (would block, or timed out), ``-1``.
        The timeout covers resolving a host name too.
        """
        o = options("sendto", _K_DGRAM, opt, kw) if opt is not None or kw else EMPTY
        if self._type != UDP:
            self._udp_only("sendto")
        view = data_view(data)
        try:
            # A datagram server answers the peer it just heard from: keep the
            # last destination's validated, resolved address.
            dest = self._dest
            if dest is None or dest[0] != addr or dest[1] != port:
                timeout = o.get("timeout", -1)
                deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
                sockaddr = self._sockaddr(addr, port, deadline, self._live())
                if sockaddr is None:
                    return 0
                dest = self._dest = (addr, port, sockaddr)
                if deadline is not None:
                    o = {**o, "timeout": max(0.0, deadline - _monotonic()) * 1000.0}
            self._to = dest[2]
            n = self._move(SENDTO, view, o.get("block", self._block), o)
        except OSError as exc:
            return self._failed(exc, -1)
        return n if n >= 0 else 0

    def recvfrom(
        self,
        buff: Bytes,
        size: int | Options | None = None,
        opt: Options | None = None,
        /,
        **kw: Any,
    ) -> tuple[int, Bytes | None, str | None, int | None]:
        """Receive one datagram: ``(n, data, peer_addr, peer_port)``.

        ``(0, None, None, None)`` when nothing arrived (would block, or a
        block-mode timeout); ``(-1, None, None, None)`` on failure or after
        ``kill()``.  A datagram larger than the range is cut to fit, and
        ``last_error`` says so (``n`` is what fits).
        """
        if opt is None and size is not None and type(size) is not int and isinstance(size, Mapping):
            size, opt = None, size
        o = options("recvfrom", _K_DGRAM, opt, kw) if opt is not None or kw else EMPTY
        if self._type != UDP:
            self._udp_only("recvfrom")
        target = _target(buff, size, EMPTY)
        try:
            n = self._move(RECVFROM, target, o.get("block", self._block), o)
        except OSError as exc:
            return self._failed(exc, _FAILED_FROM)
        if n < 0:
            return _NOTHING_FROM
        addr = self._from
        return n, received(target, n), addr[0], addr[1]

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

    def close(self) -> bool:
        """Close the socket and wake its waiters; ``False`` when already closed.

        Never raises, except ``WrongThreadError`` from another thread.
        """
        sock = self._sock
        if sock is None:
            return False
        if _ident() != self._io.thread:
            self._io.check_thread()
        if self._tls is not None:
            self._tls.close_notify()
        self._sock = None
        if self._polled:
            from ._multiwait import forget

            forget(self, self._io.fd)
        self._io.close(sock.close)
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
