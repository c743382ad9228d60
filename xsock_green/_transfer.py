"""xmake's methods that move data (``send``, ``recv``, ``sendto``, ``recvfrom``) and wait.

Each method validates its arguments (misuse raises at once, before
anything happens), turns them into a view of the caller's bytes, calls the
transfer core (``_core.move``) and turns the core's count into xmake's
return values; an ``OSError`` becomes the method's failure value through
``Core._failed``.  This module is compiled with the core (``setup.py``),
so a call goes from the caller to the system call without an interpreted
frame in between; ``Setup`` and ``Socket`` extend the class in Python.
Compiled, a call that names no option gets one empty dict as ``kw``, shared
by all such calls (``setup.py``): a method must never change or keep ``kw``.
"""

from __future__ import annotations

import _socket
from collections.abc import Mapping
from typing import Any, Final, cast

from greenlet import getcurrent

from . import _hub
from ._args import data_view, received, span
from ._args import target as _target
from ._bytes import Bytes
from ._compile import mypyc_attr
from ._constants import _AF, _SOCK_TYPES, UDP, UNIX
from ._core import ENDED, RECV, RECVFROM, SEND, SENDTO, TLS_RECV, TLS_SEND, Core, move
from ._errors import SocketError, TimeoutError
from ._options import BLOCK, EMPTY, Options, check_int, check_port, check_timeout, options

__all__ = ["Transfer", "os_address"]

# Each has ``block`` (``options(..., blocks=True)`` relies on it).
_K_SEND: Final = frozenset({"block", "start", "last", "timeout"})
_K_RECV: Final = frozenset({"block", "start", "timeout", "waitall"})
_K_DGRAM: Final = frozenset({"block", "timeout"})

_monotonic: Final = _hub.monotonic
_inet_pton: Final = _socket.inet_pton
_AF_INET6: Final = _socket.AF_INET6
_FAILED_RECV: Final[tuple[int, None]] = (-1, None)
_NOTHING_RECV: Final[tuple[int, None]] = (0, None)
_FAILED_FROM: Final[tuple[int, None, None, None]] = (-1, None, None, None)
_NOTHING_FROM: Final[tuple[int, None, None, None]] = (0, None, None, None)


# Compiled by mypyc (setup.py) unless XSOCK_PURE_PYTHON; Setup subclasses it in Python.
@mypyc_attr(allow_interpreted_subclasses=True)
class Transfer(Core):
    """The data methods of ``Socket`` over the transfer core, and its readiness wait."""

    __slots__ = ()

    # -- streams ----------------------------------------------------------

    def send(self, data: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Send ``data`` (keys ``block``, ``start``, ``last``, ``timeout``).

        Returns the bytes sent (``0``: would block), ``-1`` on failure.  In
        block mode it sends the whole range or fails; a timeout raises
        ``xsock_green.TimeoutError`` with ``moved`` set.
        """
        o = options("send", _K_SEND, opt, kw, True) if opt is not None or kw else EMPTY
        view = data_view(data)
        if o is BLOCK:
            block = True
        else:
            block = o.get("block", self._block)
            if "start" in o or "last" in o:
                begin, end = span(o, len(view))
                view = memoryview(view)[begin:end]
        try:
            n = move(self, SEND if self._tls is None else TLS_SEND, view, block, o)
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

        Returns ``(n, data)`` with ``data`` a view of ``buff`` (the view of
        the last such call again when it has the same range); ``(0, None)``
        would block; ``(-1, None)`` end of stream or failure.  Block mode
        waits for at least one byte, or with ``waitall`` for exactly ``size``.
        On a UDP socket it receives one datagram (``(0, data)`` for an empty
        one); a datagram larger than the range is cut, and ``last_error``
        says so.
        """
        # recv(buff, {...}): a flag, not a test, so that mypyc does not
        # narrow ``opt`` to ``None`` where it is assigned
        table_first = opt is None and type(size) is not int and isinstance(size, Mapping)
        if table_first:
            opt, size = cast(Options, size), None
        o = options("recv", _K_RECV, opt, kw, True) if opt is not None or kw else EMPTY
        target = _target(buff, size, o)
        block: bool = True if o is BLOCK else o.get("block", self._block)
        try:
            n = move(self, RECV if self._tls is None else TLS_RECV, target, block, o)
        except TimeoutError:
            raise
        except OSError as exc:
            return self._failed(exc, _FAILED_RECV)
        if n < 0 or (n == 0 and self._stream):
            return _FAILED_RECV if n == ENDED else _NOTHING_RECV
        return n, received(buff, target, n)

    # -- datagrams --------------------------------------------------------

    # ``addr`` and ``port`` are checked here, with messages that name them:
    # compiled code would refuse a wrong type on entry with a generic one.
    def sendto(
        self, data: Any, addr: str | Any, port: int | Any, opt: Options | None = None, /, **kw: Any
    ) -> int:
        """Send one datagram to ``addr``:``port`` (keys ``block``, ``timeout``).

        Returns the bytes sent, ``0`` (would block, or timed out), ``-1``.
        The timeout covers resolving a host name too.
        """
        o = options("sendto", _K_DGRAM, opt, kw, True) if opt is not None or kw else EMPTY
        if self._type != UDP:
            raise _udp_only(self, "sendto")
        view = data_view(data)
        try:
            # A server answers the peer it just heard from: the kernel's own
            # address for it is reused (IPv6 scope included), and the caller
            # usually passes back the very objects recvfrom returned.  A
            # client sends to one server: the last resolved destination is kept.
            heard: tuple[Any, ...] | None = self._from
            dest = self._dest
            if type(port) is not int:  # 5000.0 == 5000: let os_address refuse it
                dest = heard = None
            if (
                heard is not None
                and (heard[1] is port or heard[1] == port)
                and (heard[0] is addr or heard[0] == addr)
            ):
                self._to = heard
            elif dest is not None and dest[1] == port and dest[0] == addr:
                self._to = dest[2]
            else:
                timeout = o.get("timeout", -1)
                deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
                sockaddr = os_address(self, addr, port, deadline, self._live())
                if sockaddr is None:
                    return 0
                self._dest = (addr, port, sockaddr)
                self._to = sockaddr
                if deadline is not None:
                    o = {**o, "timeout": max(0.0, deadline - _monotonic()) * 1000.0}
            block: bool = True if o is BLOCK else o.get("block", self._block)
            n = move(self, SENDTO, view, block, o)
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
        table_first = opt is None and type(size) is not int and isinstance(size, Mapping)
        if table_first:
            opt, size = cast(Options, size), None
        o = options("recvfrom", _K_DGRAM, opt, kw, True) if opt is not None or kw else EMPTY
        if self._type != UDP:
            raise _udp_only(self, "recvfrom")
        target = _target(buff, size, EMPTY)
        try:
            n = move(self, RECVFROM, target, True if o is BLOCK else o.get("block", self._block), o)
        except OSError as exc:
            return self._failed(exc, _FAILED_FROM)
        if n < 0:
            return _NOTHING_FROM
        addr: tuple[Any, ...] = self._from
        return n, received(buff, target, n), addr[0], addr[1]

    # -- readiness ---------------------------------------------------------

    def _wait(self, events: int, timeout: float) -> int:
        """``Socket.wait``: readiness, with the directions taken as a block call takes them."""
        check_int("events", events, 1, 3)
        check_timeout("timeout", timeout)
        sock = self._live()
        io = self._io
        if (events & 1 and io.rowner is not None) or (events & 2 and io.wowner is not None):
            raise io.busy(1 if events & 1 and io.rowner is not None else 2)
        fd = io.fd
        if timeout == 0:
            return _hub.poll_now(fd, events)
        cur = getcurrent()
        if events & 1:
            io.rowner = cur
        if events & 2:
            io.wowner = cur
        try:
            deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
            result = io.wait(events, deadline, cur, events)
        finally:
            if events & 1:
                io.rowner = None
            if events & 2:
                io.wowner = None
        if result <= 0:
            if result == _hub.CLOSED or self._sock is not sock:
                raise self._closed()
            return 0
        if events == 3:
            result |= _hub.poll_now(fd, 3 - result)
        return result


# -- helpers --------------------------------------------------------


def os_address(s: Core, addr: object, port: object, deadline: float | None, sock: Any) -> Any:
    """The OS address for ``addr``:``port``, resolving a name within ``deadline``.

    ``None`` when the deadline passed first; raises ``_Closed`` when the
    socket was closed meanwhile.
    """
    if s._family == UNIX:
        raise TypeError(f"{s} is a unix socket: use bind_unix()/connect_unix()")
    if not isinstance(addr, str):
        raise TypeError(f"addr must be a str, not {type(addr).__name__}")
    number = check_port(port)
    af = _AF[s._family]
    try:
        _inet_pton(af, addr)
    except OSError:
        pass
    else:
        return (addr, number, 0, 0) if af == _AF_INET6 else (addr, number)
    found = s._io.resolve(addr, number, af, _SOCK_TYPES[s._type], deadline, getcurrent())
    if s._sock is not sock or found == _hub.CLOSED:
        raise s._closed()
    if found == _hub.TIMEOUT:
        return None
    if isinstance(found, OSError):
        raise SocketError(found.errno, f"{s}: cannot resolve {addr!r}: {found.strerror}")
    return found


def _udp_only(s: Core, what: str) -> TypeError:
    return TypeError(f"{what}() is for UDP sockets; {s} is not one")
