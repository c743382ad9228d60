"""The socket object: xmake's ``socket`` methods over a non-blocking OS socket.

Each method is written as plain Python that raises ``OSError`` on failure;
``Socket._failed`` is the one translation into xmake's return values (``-1``,
``None``, ``False``) and ``last_error``.  The ``_xmake`` decorator applies it
to every method but the four hot ones, which call it from their own
``except`` clause.  Misuse (bad types, impossible values) is not an outcome:
it raises before anything happens.

Waiting goes through ``_hub.IOWait``; this module never talks to gevent.
The OS socket is the C-level ``_socket.socket``, which monkey-patching never
replaces, so behaviour is the same in patched and unpatched programs.
"""

from __future__ import annotations

import _socket
import errno as _errno
import functools
import os
import sys
import warnings
from collections.abc import Callable, Mapping
from typing import IO, Any, Concatenate, Final, ParamSpec, TypeVar, cast

from . import _hub
from ._bytes import Bytes
from ._errors import SocketError, TimeoutError
from ._options import Options, check_int, check_port, check_timeout, options

__all__ = ["Socket"]

TCP: Final = 1
UDP: Final = 2
ICMP: Final = 3

IPV4: Final = 1
IPV6: Final = 2
UNIX: Final = 3

EV_RECV: Final = 1
EV_SEND: Final = 2
EV_CONN: Final = EV_SEND
EV_ACPT: Final = EV_RECV

CTRL_SET_BLOCK: Final = 0
CTRL_GET_BLOCK: Final = 1
CTRL_SET_RECVBUFF: Final = 2
CTRL_GET_RECVBUFF: Final = 3
CTRL_SET_SENDBUFF: Final = 4
CTRL_GET_SENDBUFF: Final = 5
CTRL_SET_TCP_NODELAY: Final = 6
CTRL_GET_TCP_NODELAY: Final = 7
CTRL_SET_TCP_KEEPINTVL: Final = 8
CTRL_SET_KEEPALIVE: Final = 9
CTRL_SET_NOSIGPIPE: Final = 10

_AF = {IPV4: _socket.AF_INET, IPV6: _socket.AF_INET6, UNIX: _socket.AF_UNIX}
_SOCK_TYPES = {TCP: _socket.SOCK_STREAM, UDP: _socket.SOCK_DGRAM, ICMP: _socket.SOCK_DGRAM}
_TYPE_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
_FAMILY_DIGIT = {IPV4: "4", IPV6: "6"}
_EMPTY: Options = {}
_BLOCK: Options = {"block": True}
_SEND_FLAGS = getattr(_socket, "MSG_NOSIGNAL", 0)
_UNIX_PATH_MAX = 107  # sun_path holds 108 bytes including the final NUL
#: The most one system call of a block-mode transfer moves, so that other
#: greenlets get their turn between pieces (SPEC: every 50 ms at least).
_CHUNK = 1 << 20
_IN_PROGRESS = frozenset({_errno.EINPROGRESS, _errno.EALREADY, _errno.EAGAIN})

_K_SEND = frozenset({"block", "start", "last", "timeout"})
_K_RECV = frozenset({"block", "start", "timeout", "waitall"})
_K_DGRAM = frozenset({"block", "timeout"})
_K_TIMEOUT = frozenset({"timeout"})
_K_UNIX = frozenset({"is_abstract"})
_K_CONNECT_UNIX = frozenset({"is_abstract", "timeout"})

# How a block recv starts (the ``_rtry`` state).  In request/response
# traffic a read right after our own reply almost always fails, so after a
# short read followed by a send, the next block recv waits for readiness
# first and saves the failing call and its exception.  In a stream (a short
# read with no send in between) more is on its way: try first.
_TRY = 1  # try the call first
_SHORT = 0  # the last read was short: a send now turns this into _WAIT
_WAIT = -1  # wait for readiness first

_ident = _hub.get_thread_ident
_monotonic = _hub.monotonic
_new = object.__new__
_FAILED_RECV: tuple[int, None] = (-1, None)
_FAILED_FROM: tuple[int, None, None, None] = (-1, None, None, None)
_NOTHING_FROM: tuple[int, None, None, None] = (0, None, None, None)

_R = TypeVar("_R")
_F = TypeVar("_F")
_P = ParamSpec("_P")


def _xmake(
    failure: Any,
) -> Callable[[Callable[Concatenate[Socket, _P], _R]], Callable[Concatenate[Socket, _P], _R]]:
    """The adapter: an ``OSError`` raised by ``method`` becomes ``failure``.

    It records the error on ``last_error`` in xmake's words and clears
    ``last_error`` after a success.  ``xsock_green.TimeoutError`` and misuse
    errors pass through unchanged.
    """

    def decorate(
        method: Callable[Concatenate[Socket, _P], _R],
    ) -> Callable[Concatenate[Socket, _P], _R]:
        @functools.wraps(method)
        def adapted(self: Socket, /, *args: _P.args, **kw: _P.kwargs) -> _R:
            try:
                result = method(self, *args, **kw)
            except TimeoutError:
                raise
            except OSError as exc:
                return cast(_R, self._failed(exc, failure))
            self._last = None
            return result

        return adapted

    return decorate


class _Closed(OSError):
    """Raised inside a method when the socket is (or became) closed."""


class _EndOfStream(OSError):
    """Raised inside a method when the peer ended the stream."""


def _data_view(data: object) -> memoryview:
    """A flat unsigned-byte view of anything ``send`` accepts."""
    if isinstance(data, Bytes):
        return data._mv
    if isinstance(data, str):
        return memoryview(data.encode("utf-8", "surrogateescape"))
    if isinstance(data, (bytes, bytearray, memoryview)):
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        return mv
    raise TypeError(
        f"data must be str, bytes, bytearray, memoryview or Bytes, not {type(data).__name__}"
    )


def _range(o: Options, size: int) -> tuple[int, int]:
    """0-based ``[begin, end)`` of the 1-based inclusive ``start``/``last``."""
    start = o.get("start", 1)
    last = o.get("last", size)
    if last > size:
        raise ValueError(f"last ({last}) is beyond the data size ({size})")
    if start > last + 1:
        raise ValueError(f"start ({start}) is past last ({last}) + 1")
    return start - 1, last


def _deadline(timeout: float) -> float | None:
    return None if timeout == -1 else _hub.monotonic() + timeout / 1000.0


def _format_addr(addr: Any) -> str:
    if isinstance(addr, tuple):
        if len(addr) == 4:
            return f"[{addr[0]}]:{addr[1]}"
        return f"{addr[0]}:{addr[1]}"
    if isinstance(addr, bytes):
        return "@" + addr[1:].decode("utf-8", "surrogateescape")
    return str(addr)


class Socket:
    """One xmake socket: non-blocking at the OS level, waiting on gevent's hub.

    Create sockets with the functions of ``xsock_green.socket``.  Every
    method returns xmake's values; ``last_error`` explains the last failure.
    """

    __slots__ = (
        "__weakref__",
        "_block",
        "_dest",
        "_family",
        "_io",
        "_last",
        "_rtry",
        "_sock",
        "_type",
    )

    def __init__(self, type_: int, family: int, sock: Any) -> None:
        self._sock: Any = None
        self._type = type_
        self._family = family
        self._block = False
        self._rtry = _TRY
        self._dest: tuple[str, int, Any] | None = None
        self._last: OSError | tuple[OSError, object] | None = None
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
        if sock is None:
            return f"<xsock_green.Socket {str(self)[9:-1]}>"
        parts = [str(self)[9:-1]]
        for label, getter in (("laddr", sock.getsockname), ("raddr", sock.getpeername)):
            try:
                addr = getter()
            except OSError:
                continue
            if addr:
                parts.append(f"{label}={_format_addr(addr)}")
        return f"<xsock_green.Socket {' '.join(parts)}>"

    def _failed(self, exc: OSError, failure: _F) -> _F:
        """The adapter's one translation: record ``exc``, return ``failure``.

        ``_xmake`` calls it for every method but the four hot ones (``send``,
        ``recv``, ``sendto``, ``recvfrom``), which call it from their own
        ``except`` clause: a wrapper frame costs a sixth of a request
        (cachegrind: 33.3k against 28.8k instructions per 1 KiB echo on
        the server).  The xmake-style text
        is made when ``last_error`` is read: an end of stream ends every
        connection, and most programs never look at why.
        """
        self._last = (exc, "closed" if self._sock is None else self._io.fd)
        return failure

    @property
    def last_error(self) -> OSError | None:
        """Why the last call failed, in xmake's words; ``None`` after a success."""
        last = self._last
        if isinstance(last, tuple):
            err = self._last = self._error(*last)
            return err
        return last

    def _error(self, exc: OSError, label: object) -> SocketError:
        if isinstance(exc, SocketError):
            return exc
        if isinstance(exc, _Closed):
            return SocketError(None, f"{self._name(exc.args[0])}: has been closed")
        if isinstance(exc, _EndOfStream):
            return SocketError(None, f"{self._name(label)}: {exc.args[0]}")
        reason = exc.strerror or str(exc)
        reason = reason[:1].lower() + reason[1:]
        return SocketError(exc.errno, f"{self._name(label)}: {reason}")

    def _live(self) -> Any:
        """The OS socket, after checking that it is open and in its thread."""
        sock = self._sock
        if sock is None:
            raise _Closed("closed")
        if _ident() != self._io.thread:
            self._io.check_thread()
        return sock

    def _woken(self, result: int, sock: Any) -> None:
        """Raise ``_Closed`` if a wait ended because the socket closed."""
        if result == _hub.CLOSED or self._sock is not sock:
            raise _Closed(sock.fileno() if self._sock is sock else "closed")

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

    def sockname(self) -> Any:
        """The local address as Python gives it (``(ip, port)``, a path), or ``None``."""
        sock = self._sock
        if sock is None:
            return None
        try:
            return sock.getsockname()
        except OSError:
            return None

    def peername(self) -> Any:
        """The peer address as Python gives it, or ``None`` when not connected."""
        sock = self._sock
        if sock is None:
            return None
        try:
            return sock.getpeername()
        except OSError:
            return None

    def peeraddr(self) -> str | None:
        """``"ip:port"``, ``"[ip6]:port"`` or the unix path; ``None`` when not connected."""
        addr = self.peername()
        if addr is None:
            return None
        return _format_addr(addr)

    # -- addresses --------------------------------------------------------

    def _sockaddr(self, addr: object, port: object) -> Any:
        if self._family == UNIX:
            raise TypeError(f"{self} is a unix socket: use bind_unix()/connect_unix()")
        if not isinstance(addr, str):
            raise TypeError(f"addr must be a str, not {type(addr).__name__}")
        port = check_port(port)
        af = _AF[self._family]
        try:
            _socket.inet_pton(af, addr)
        except OSError:
            try:
                resolved = _hub.resolve(addr, port, af, _SOCK_TYPES[self._type])
            except OSError as exc:
                raise SocketError(
                    getattr(exc, "errno", None), f"{self}: cannot resolve {addr!r}: {exc}"
                ) from exc
            return resolved
        return (addr, port, 0, 0) if af == _socket.AF_INET6 else (addr, port)

    def _unix_addr(self, path: object, o: Options) -> str | bytes:
        if self._family != UNIX:
            raise TypeError(f"{self} is not a unix socket: use bind()/connect()")
        if isinstance(path, os.PathLike):
            path = os.fspath(path)
        if not isinstance(path, (str, bytes)):
            raise TypeError(f"path must be a str or bytes, not {type(path).__name__}")
        raw = os.fsencode(path)
        if not raw:
            raise ValueError("path must not be empty")
        if o.get("is_abstract", False):
            raw = b"\0" + raw
        if len(raw) > _UNIX_PATH_MAX:
            raise ValueError(
                f"unix socket path is {len(raw)} bytes; the limit is {_UNIX_PATH_MAX}: {path!r}"
            )
        return raw

    # -- setting up -----------------------------------------------------

    @_xmake(False)
    def bind(self, addr: str, port: int) -> bool:
        """Bind to ``addr``:``port``; ``True``, or ``False`` with ``last_error``."""
        sockaddr = self._sockaddr(addr, port)
        sock = self._live()
        if self._type == TCP:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        return True

    @_xmake(False)
    def bind_unix(self, path: str, opt: Options | None = None, /, **kw: Any) -> bool:
        """Bind a unix socket to ``path`` (key ``is_abstract``); never removes a file."""
        o = options("bind_unix", _K_UNIX, opt, kw)
        sockaddr = self._unix_addr(path, o)
        self._live().bind(sockaddr)
        return True

    @_xmake(False)
    def listen(self, backlog: int = 10) -> bool:
        """Start listening; ``True``, or ``False`` with ``last_error``."""
        check_int("backlog", backlog, 0)
        self._live().listen(backlog)
        return True

    @_xmake(None)
    def accept(self, opt: Options | None = None, /, **kw: Any) -> Socket | None:
        """A connected client socket; ``None`` on timeout (key ``timeout``) or failure."""
        o = options("accept", _K_TIMEOUT, opt, kw) if opt or kw else _EMPTY
        sock = self._live()
        deadline = _deadline(o.get("timeout", -1))
        while True:
            try:
                fd, _addr = sock._accept()
            except BlockingIOError:
                result = self._io.wait(1, deadline)
                if result <= 0:
                    self._woken(result, sock)
                    return None
                continue
            try:
                client = _socket.socket(sock.family, _socket.SOCK_STREAM, 0, fd)
            except BaseException:
                os.close(fd)
                raise
            return Socket(self._type, self._family, client)

    @_xmake(-1)
    def connect(self, addr: str, port: int, opt: Options | None = None, /, **kw: Any) -> int:
        """Connect; ``1`` connected, ``0`` timed out (key ``timeout``), ``-1`` failed."""
        o = options("connect", _K_TIMEOUT, opt, kw) if opt or kw else _EMPTY
        sockaddr = self._sockaddr(addr, port)
        return self._connect(sockaddr, o)

    @_xmake(-1)
    def connect_unix(self, path: str, opt: Options | None = None, /, **kw: Any) -> int:
        """Connect a unix socket (keys ``is_abstract``, ``timeout``): ``1``, ``0``, ``-1``."""
        o = options("connect_unix", _K_CONNECT_UNIX, opt, kw)
        return self._connect(self._unix_addr(path, o), o)

    def _connect(self, sockaddr: Any, o: Options) -> int:
        sock = self._live()
        deadline = _deadline(o.get("timeout", -1))
        while True:
            err = sock.connect_ex(sockaddr)
            if err == 0 or err == _errno.EISCONN:
                return 1
            if err not in _IN_PROGRESS:
                raise OSError(err, os.strerror(err))
            if err == _errno.EAGAIN and self._family == UNIX:
                # A unix listener's backlog is full: there is nothing to
                # wait on, so retry after a short cooperative pause.
                if deadline is not None and _hub.monotonic() >= deadline:
                    return 0
                _hub.sleep(0.001)
                self._woken(0 if self._sock is sock else _hub.CLOSED, sock)
                continue
            result = self._io.wait(2, deadline)
            if result <= 0:
                self._woken(result, sock)
                return 0
            err = sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            if err == 0:
                return 1
            raise OSError(err, os.strerror(err))

    # -- streams ----------------------------------------------------------

    def send(self, data: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Send ``data`` (keys ``block``, ``start``, ``last``, ``timeout``).

        Returns the bytes sent (``0``: would block), ``-1`` on failure.  In
        block mode it sends the whole range or fails; a timeout raises
        ``xsock_green.TimeoutError`` with ``moved`` set.
        """
        if opt is None and not kw:
            o = _EMPTY
        elif opt.__class__ is dict and len(opt) == 1 and opt.get("block") is True and not kw:
            o = _BLOCK  # xmake's {block = true}, the table of nearly every call
        else:
            o = options("send", _K_SEND, opt, kw)
        try:
            sock = self._sock
            if sock is None or _ident() != self._io.thread:
                sock = self._live()
            cls = type(data)
            if cls is Bytes:
                data = data._mv
            elif cls is not bytes:
                data = _data_view(data)
            if "start" in o or "last" in o or not o.get("block", self._block) or len(data) > _CHUNK:
                sent = self._send(sock, data, o)
            else:
                # The common block send, inline: one try, done.
                try:
                    sent = sock.send(data, _SEND_FLAGS)
                except BlockingIOError:
                    sent = 0
                if sent == len(data):
                    io = self._io
                    if _monotonic() - io.turn > _hub.SLICE:
                        io.cooperate()
                else:
                    sent = self._send_rest(sock, data, sent, o, True)
            if self._rtry == _SHORT:
                self._rtry = _WAIT  # a reply after a short read: request/response
        except TimeoutError:
            raise
        except OSError as exc:
            return self._failed(exc, -1)
        self._last = None
        return sent

    def _send(self, sock: Any, data: bytes | memoryview, o: Options) -> int:
        if o and ("start" in o or "last" in o):
            begin, end = _range(o, len(data))
            data = memoryview(data)[begin:end]
        total = len(data)
        if total == 0:
            return 0
        if not o.get("block", self._block):
            try:
                return int(sock.send(data, _SEND_FLAGS))
            except BlockingIOError:
                return 0
        return self._send_rest(sock, data, 0, o, False)

    def _send_rest(
        self, sock: Any, data: bytes | memoryview, sent: int, o: Options, wait_first: bool
    ) -> int:
        """Block mode: send ``data[sent:]`` in pieces of at most ``_CHUNK`` bytes.

        A short write means the buffer is full: wait, do not retry (the
        caller says whether its own attempt was short).  Between
        full pieces other greenlets get their turn when one is due, so no
        single call holds the CPU for long however much there is to send.
        """
        io = self._io
        total = len(data)
        deadline = _deadline(o.get("timeout", -1))
        mv = memoryview(data)
        while True:
            if wait_first:
                result = io.wait(2, deadline)
                if result <= 0:
                    self._woken(result, sock)
                    raise TimeoutError(f"{self}: send timeout", sent)
            piece = min(total - sent, _CHUNK)
            try:
                n = sock.send(mv[sent : sent + piece], _SEND_FLAGS)
            except BlockingIOError:
                n = 0
            sent += n
            if sent == total:
                io.cooperate()
                return total
            wait_first = n < piece
            if not wait_first:
                self._yield_if_due(sock)

    def _yield_if_due(self, sock: Any) -> None:
        """Give other greenlets a turn if one is due; raise if closed meanwhile."""
        self._io.cooperate()
        if self._sock is not sock:
            raise _Closed("closed")

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
        """
        if opt is None and not kw:
            o = _EMPTY
            if size is not None and type(size) is not int and isinstance(size, Mapping):
                size, o = None, options("recv", _K_RECV, size, kw)  # recv(buff, {...})
        elif opt.__class__ is dict and len(opt) == 1 and opt.get("block") is True and not kw:
            o = _BLOCK
        else:
            o = options("recv", _K_RECV, opt, kw)
        try:
            sock = self._sock
            if sock is None or _ident() != self._io.thread:
                sock = self._live()
            target = buff._mv if type(buff) is Bytes else None
            if target is None or target.readonly or size != len(target) or "start" in o:
                target = self._recv_target(buff, size, o)
            if not o.get("block", self._block):
                result = self._recv_now(sock, target)
            elif "waitall" in o or "timeout" in o or not target or len(target) > _CHUNK:
                result = self._recv_wait(sock, target, o)
            else:
                # The common block recv, inline (see _TRY, _SHORT, _WAIT).
                io = self._io
                n = -1
                if self._rtry != _WAIT:
                    try:
                        n = sock.recv_into(target)
                    except BlockingIOError:
                        pass
                if n < 0:
                    while True:
                        if io.wait(1, None) < 0:
                            self._woken(_hub.CLOSED, sock)
                        try:
                            n = sock.recv_into(target)
                            break
                        except BlockingIOError:
                            pass
                elif _monotonic() - io.turn > _hub.SLICE:
                    io.cooperate()
                if n == 0:
                    self._rtry = _TRY
                    result = self._ended(0, len(target))
                elif n == len(target):
                    self._rtry = _TRY
                    data = _new(Bytes)
                    data._mv = target
                    result = n, data
                else:
                    self._rtry = _SHORT
                    data = _new(Bytes)
                    data._mv = target[:n]
                    result = n, data
        except TimeoutError:
            raise
        except OSError as exc:
            return self._failed(exc, _FAILED_RECV)
        self._last = None
        return result

    def _recv_now(self, sock: Any, target: memoryview) -> tuple[int, Bytes | None]:
        """One non-blocking read."""
        if not target:
            return 0, None
        try:
            n = sock.recv_into(target)
        except BlockingIOError:
            return 0, None
        if n == 0 and self._type == TCP:
            raise _EndOfStream("end of stream")
        return n, Bytes._wrap(target[:n])

    def _recv_wait(self, sock: Any, target: memoryview, o: Options) -> tuple[int, Bytes | None]:
        """Block mode with a timeout or ``waitall``: loop until done or the deadline."""
        want = len(target)
        if want == 0:
            return 0, None
        timeout = o.get("timeout", -1)
        waitall = o.get("waitall", False)
        deadline = _deadline(timeout)
        io = self._io
        got = 0
        waited = False
        # 0 means do not wait: then the read must be tried first.
        attempt = self._rtry != _WAIT or timeout == 0
        while True:
            if attempt:
                piece = min(want - got, _CHUNK)
                try:
                    n = sock.recv_into(target[got : got + piece])
                except BlockingIOError:
                    n = -1
                if n > 0:
                    got += n
                    self._rtry = _TRY if n == piece else _SHORT
                    if got == want or not waitall:
                        if not waited:
                            io.cooperate()
                        return got, Bytes._wrap(target[:got] if got != want else target)
                    self._yield_if_due(sock)
                    attempt = n == piece  # a short piece drained the queue: wait
                    continue
                if n == 0:
                    return self._ended(got, want)
            attempt = True
            result = io.wait(1, deadline)
            if result <= 0:
                self._woken(result, sock)
                raise TimeoutError(f"{self}: recv timeout", got)
            waited = True

    def _ended(self, got: int, want: int) -> tuple[int, Bytes | None]:
        if self._type != TCP:  # an empty datagram, not an end of stream
            return 0, Bytes._wrap(memoryview(b""))
        suffix = f" after {got} of {want} bytes" if got else ""
        raise _EndOfStream("end of stream" + suffix)

    @staticmethod
    def _recv_target(buff: object, size: object, o: Options) -> memoryview:
        if not isinstance(buff, Bytes):
            raise TypeError(f"buff must be a Bytes buffer, not {type(buff).__name__}")
        mv = buff._mv
        if mv.readonly:
            raise TypeError("buff is read-only; receive into a writable Bytes(size)")
        begin = o.get("start", 1) - 1
        room = len(mv) - begin
        if room < 0:
            raise ValueError(f"start ({begin + 1}) is beyond the buffer size ({len(mv)})")
        if size is None:
            size = room
        else:
            check_int("size", size, 0)
            if cast(int, size) > room:
                raise ValueError(
                    f"size ({size}) is larger than the buffer's room from start ({room} bytes)"
                )
        return mv[begin : begin + cast(int, size)] if begin or size != len(mv) else mv

    # -- datagrams --------------------------------------------------------

    def _udp_only(self, what: str) -> None:
        if self._type != UDP:
            raise TypeError(f"{what}() is for UDP sockets; {self} is not one")

    def sendto(
        self, data: Any, addr: str, port: int, opt: Options | None = None, /, **kw: Any
    ) -> int:
        """Send one datagram to ``addr``:``port`` (keys ``block``, ``timeout``).

        Returns the bytes sent, ``0`` (would block, or timed out), ``-1``.
        """
        if opt is None and not kw:
            o = _EMPTY
        elif opt.__class__ is dict and len(opt) == 1 and opt.get("block") is True and not kw:
            o = _BLOCK
        else:
            o = options("sendto", _K_DGRAM, opt, kw)
        if self._type != UDP:
            self._udp_only("sendto")
        cls = type(data)
        if cls is Bytes:
            data = data._mv
        elif cls is not bytes:
            data = _data_view(data)
        try:
            sock = self._sock
            if sock is None or _ident() != self._io.thread:
                sock = self._live()
            # A datagram server answers the peer it just heard from: keep the
            # last destination's validated, resolved address.
            dest = self._dest
            if dest is None or dest[0] != addr or dest[1] != port:
                dest = self._dest = (addr, port, self._sockaddr(addr, port))
            try:
                sent = sock.sendto(data, _SEND_FLAGS, dest[2])
            except BlockingIOError:
                sent = 0
                if o.get("block", self._block):
                    sent = self._sendto_wait(sock, data, dest[2], o)
        except OSError as exc:
            return self._failed(exc, -1)
        self._last = None
        return int(sent)

    def _sendto_wait(self, sock: Any, data: Any, sockaddr: Any, o: Options) -> int:
        deadline = _deadline(o.get("timeout", -1))
        while True:
            result = self._io.wait(2, deadline)
            if result <= 0:
                self._woken(result, sock)
                return 0
            try:
                return int(sock.sendto(data, _SEND_FLAGS, sockaddr))
            except BlockingIOError:
                pass

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
        block-mode timeout); ``(-1, None, None, None)`` on failure.
        """
        if opt is None and not kw:
            o = _EMPTY
            if size is not None and type(size) is not int and isinstance(size, Mapping):
                size, o = None, options("recvfrom", _K_DGRAM, size, kw)
        elif opt.__class__ is dict and len(opt) == 1 and opt.get("block") is True and not kw:
            o = _BLOCK
        else:
            o = options("recvfrom", _K_DGRAM, opt, kw)
        if self._type != UDP:
            self._udp_only("recvfrom")
        target = buff._mv if type(buff) is Bytes else None
        if target is None or target.readonly or size != len(target):
            target = self._recv_target(buff, size, _EMPTY)
        try:
            sock = self._sock
            if sock is None or _ident() != self._io.thread:
                sock = self._live()
            try:
                n, addr = sock.recvfrom_into(target)
            except BlockingIOError:
                if o.get("block", self._block):
                    result = self._recvfrom_block(sock, target, o)
                else:
                    result = _NOTHING_FROM
            else:
                data = _new(Bytes)
                data._mv = target[:n]
                result = n, data, addr[0], addr[1]
        except OSError as exc:
            return self._failed(exc, _FAILED_FROM)
        self._last = None
        return result

    def _recvfrom_block(
        self, sock: Any, target: memoryview, o: Options
    ) -> tuple[int, Bytes | None, str | None, int | None]:
        """Block mode after a first attempt found nothing: wait, read, repeat."""
        deadline = _deadline(o.get("timeout", -1))
        while True:
            result = self._io.wait(1, deadline)
            if result <= 0:
                self._woken(result, sock)
                return _NOTHING_FROM
            try:
                n, addr = sock.recvfrom_into(target)
            except BlockingIOError:
                continue
            return n, Bytes._wrap(target[:n]), addr[0], addr[1]

    # -- files ------------------------------------------------------------

    @_xmake(-1)
    def sendfile(self, file: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Send a file's bytes (keys ``block``, ``start``, ``last``, ``timeout``).

        ``file`` is a binary file object or a path.  Uses ``os.sendfile``
        (zero-copy) when the file has a descriptor.  Returns bytes sent,
        ``0`` would block, ``-1`` on failure; block mode sends the whole
        range or raises ``xsock_green.TimeoutError``.
        """
        o = options("sendfile", _K_SEND, opt, kw) if opt or kw else _EMPTY
        if isinstance(file, (str, bytes, os.PathLike)):
            with open(file, "rb") as f:
                return self._sendfile(f, o)
        if not hasattr(file, "read"):
            raise TypeError(
                f"file must be a binary file object or a path, not {type(file).__name__}"
            )
        return self._sendfile(file, o)

    def _sendfile(self, f: IO[bytes], o: Options) -> int:
        try:
            fd = f.fileno()
        except (OSError, AttributeError, ValueError):
            # No descriptor (io.BytesIO): send its bytes the ordinary way.
            data = f.read()
            if isinstance(data, str):
                raise TypeError("file must be opened in binary mode") from None
            return self._send(self._live(), data, o)
        size = os.fstat(fd).st_size
        begin, end = _range(o, size)
        total = end - begin
        sock = self._live()
        if total == 0:
            return 0
        out = sock.fileno()
        if not o.get("block", self._block):
            try:
                return os.sendfile(out, fd, begin, total)
            except BlockingIOError:
                return 0
        deadline = _deadline(o.get("timeout", -1))
        io = self._io
        sent = 0
        while True:
            try:
                n = os.sendfile(out, fd, begin + sent, min(total - sent, _CHUNK))
            except BlockingIOError:
                n = 0
            else:
                if n == 0:
                    raise _EndOfStream(f"file ended after {sent} of {total} bytes")
            sent += n
            if sent == total:
                io.cooperate()
                return total
            if n:
                self._yield_if_due(sock)
                continue
            result = io.wait(2, deadline)
            if result <= 0:
                self._woken(result, sock)
                raise TimeoutError(f"{self}: sendfile timeout", sent)

    # -- events and control -------------------------------------------------

    @_xmake(-1)
    def wait(self, events: int, timeout: float = -1) -> int:
        """Wait for ``EV_RECV``/``EV_SEND`` (or both); returns what happened.

        ``0`` on timeout (``0`` polls, ``-1`` waits forever), ``-1`` on
        failure or when the socket is closed meanwhile.
        """
        check_int("events", events, 1, 3)
        check_timeout("timeout", timeout)
        sock = self._live()
        fd = sock.fileno()
        if timeout == 0:
            return _hub.poll_now(fd, events)
        result = self._io.wait(events, _deadline(timeout))
        if result <= 0:
            self._woken(result, sock)
            return 0
        if events == 3:
            result |= _hub.poll_now(fd, 3 - result)
        return result

    def ctrl(self, code: int, value: Any = None) -> Any:
        """Set (even codes) or get (odd codes) a socket option.

        A SET code returns ``True``/``False``; a GET code returns the value
        (``None`` on failure).  ``CTRL_SET_BLOCK`` makes ``block`` the default
        of this socket's calls; the OS socket stays non-blocking.
        """
        check_int("code", code, 0, 10)
        if code in (CTRL_GET_BLOCK, CTRL_GET_RECVBUFF, CTRL_GET_SENDBUFF, CTRL_GET_TCP_NODELAY):
            if value is not None:
                raise TypeError(f"ctrl code {code} reads a value and takes none")
            return self._ctrl_get(code)
        return self._ctrl_set(code, value)

    @_xmake(None)
    def _ctrl_get(self, code: int) -> Any:
        sock = self._live()
        if code == CTRL_GET_BLOCK:
            return self._block
        if code == CTRL_GET_RECVBUFF:
            return sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF)
        if code == CTRL_GET_SENDBUFF:
            return sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF)
        self._tcp_only(code)
        return bool(sock.getsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY))

    @_xmake(False)
    def _ctrl_set(self, code: int, value: Any) -> bool:
        if code in (CTRL_SET_BLOCK, CTRL_SET_TCP_NODELAY, CTRL_SET_KEEPALIVE, CTRL_SET_NOSIGPIPE):
            if not isinstance(value, (bool, int)):
                raise TypeError(f"ctrl code {code} takes a bool, not {type(value).__name__}")
            value = bool(value)
        else:
            check_int("value", value, 1 if code == CTRL_SET_TCP_KEEPINTVL else 0)
        sock = self._live()
        if code == CTRL_SET_BLOCK:
            self._block = value
        elif code == CTRL_SET_RECVBUFF:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, value)
        elif code == CTRL_SET_SENDBUFF:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDBUF, value)
        elif code == CTRL_SET_KEEPALIVE:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_KEEPALIVE, int(value))
        elif code == CTRL_SET_NOSIGPIPE:
            # Sends already pass MSG_NOSIGNAL where the OS has it.
            if not _SEND_FLAGS and sys.platform != "win32":
                raise OSError(_errno.ENOTSUP, "no MSG_NOSIGNAL on this system")
        else:
            self._tcp_only(code)
            if code == CTRL_SET_TCP_NODELAY:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, int(value))
            else:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_KEEPINTVL, value)
        return True

    def _tcp_only(self, code: int) -> None:
        if self._type != TCP or self._family == UNIX:
            raise OSError(_errno.ENOPROTOOPT, f"ctrl code {code} is for TCP sockets only")

    # -- ending -----------------------------------------------------------

    @_xmake(False)
    def kill(self) -> bool:
        """Shut the connection down both ways; waiters and the peer see end of stream."""
        self._live().shutdown(_socket.SHUT_RDWR)
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
        self._sock = None
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
