"""Setting a connection up: ``bind``, ``listen``, ``accept``, ``connect``, TLS.

``Setup`` is the part of ``Socket`` that binds, listens, accepts and
connects through the transfer core's ``ACCEPT`` and ``CONNECT`` kinds, and
starts TLS.  It extends ``_transfer.Transfer`` (the data methods; its
``os_address`` turns xmake's addresses into the OS's, resolving host names
within the call's deadline); ``Socket`` (``_socket``) adds the control
methods.  ``xmake`` adapts the methods of both that move no data: an
``OSError`` becomes the method's failure value and ``last_error``.
"""

from __future__ import annotations

import _socket
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, Self, TypeVar, cast

from . import _hub, _tls
from ._args import unix_path
from ._constants import INT_MAX, TCP, UNIX
from ._core import ACCEPT, CONNECT, Core, move
from ._errors import TimeoutError
from ._options import Options, check_int, check_timeout, options
from ._transfer import Transfer, os_address

__all__ = ["Setup", "xmake"]

_K_TIMEOUT = frozenset({"timeout"})
_K_UNIX = frozenset({"is_abstract"})
_K_CONNECT = frozenset({"timeout", "tls", "server_hostname"})
_K_CONNECT_UNIX = frozenset({"is_abstract", "timeout", "tls", "server_hostname"})
_K_STARTTLS = frozenset({"server_side", "server_hostname", "timeout"})

_monotonic = _hub.monotonic
_R = TypeVar("_R")
_P = ParamSpec("_P")
_S = TypeVar("_S", bound=Core)


def xmake(
    failure: Any,
) -> Callable[[Callable[Concatenate[_S, _P], _R]], Callable[Concatenate[_S, _P], _R]]:
    """The adapter for methods that move no data: an ``OSError`` becomes ``failure``.

    It records the error for ``last_error`` and clears ``last_error`` after
    a success.  ``xsock_green.TimeoutError`` and misuse errors pass through.
    """

    def decorate(
        method: Callable[Concatenate[_S, _P], _R],
    ) -> Callable[Concatenate[_S, _P], _R]:
        @functools.wraps(method)
        def adapted(self: _S, /, *args: _P.args, **kw: _P.kwargs) -> _R:
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


class Setup(Transfer):
    """Addresses, binding, listening, accepting, connecting and TLS set-up."""

    __slots__ = ()

    if TYPE_CHECKING:  # defined by Socket, which this class is only a part of

        def peername(self) -> Any: ...

    # -- addresses --------------------------------------------------------

    def _unix_addr(self, path: object, o: Options) -> bytes:
        if self._family != UNIX:
            raise TypeError(f"{self} is not a unix socket: use bind()/connect()")
        return unix_path(path, o.get("is_abstract", False))

    # -- setting up -----------------------------------------------------

    @xmake(False)
    def bind(self, addr: str, port: int) -> bool:
        """Bind to ``addr``:``port``; ``True``, or ``False`` with ``last_error``."""
        sock = self._live()
        sockaddr = os_address(self, addr, port, None, sock)
        if self._type == TCP:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        sock.bind(sockaddr)
        return True

    @xmake(False)
    def bind_unix(self, path: str, opt: Options | None = None, /, **kw: Any) -> bool:
        """Bind a unix socket to ``path`` (key ``is_abstract``); never removes a file."""
        o = options("bind_unix", _K_UNIX, opt, kw)
        sockaddr = self._unix_addr(path, o)
        self._live().bind(sockaddr)
        return True

    @xmake(False)
    def listen(self, backlog: int = 10) -> bool:
        """Start listening; ``True``, or ``False`` with ``last_error``."""
        check_int("backlog", backlog, 0, INT_MAX)
        self._live().listen(backlog)
        return True

    @xmake(None)
    def accept(self, opt: Options | None = None, /, **kw: Any) -> Self | None:
        """A connected client socket; ``None`` on timeout (key ``timeout``) or failure."""
        o = options("accept", _K_TIMEOUT, opt, kw)
        fd = move(self, ACCEPT, b"", True, o)
        if fd < 0:
            return None
        try:
            client = _socket.socket(self._sock.family, _socket.SOCK_STREAM, 0, fd)
        except BaseException:
            os.close(fd)
            raise
        conn = type(self)(self._type, self._family, client)
        if self._tlsctx is not None:
            conn._tls = _tls.TLSLayer(conn, self._tlsctx, True, None)
        return conn

    @xmake(-1)
    def connect(self, addr: str, port: int, opt: Options | None = None, /, **kw: Any) -> int:
        """Connect; ``1`` connected, ``0`` timed out (key ``timeout``), ``-1`` failed.

        The timeout covers resolving a host name too, and the TLS handshake
        with key ``tls`` (``True`` or an ``ssl.SSLContext``; the name checked
        is ``addr`` unless ``server_hostname`` says otherwise).
        """
        o = options("connect", _K_CONNECT, opt, kw)
        timeout = o.get("timeout", -1)
        deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
        hostname = o.get("server_hostname", addr)
        tls = _tls.client_context(o.get("tls"), hostname)
        sockaddr = os_address(self, addr, port, deadline, self._live())
        if sockaddr is None:
            return 0
        if deadline is not None:
            o = {"timeout": max(0.0, deadline - _monotonic()) * 1000.0}
        return self._connect(sockaddr, o, tls, hostname, deadline)

    @xmake(-1)
    def connect_unix(self, path: str, opt: Options | None = None, /, **kw: Any) -> int:
        """Connect a unix socket (keys ``is_abstract``, ``timeout``, ``tls``,
        ``server_hostname``): ``1``, ``0``, ``-1``."""
        o = options("connect_unix", _K_CONNECT_UNIX, opt, kw)
        timeout = o.get("timeout", -1)
        deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
        hostname = o.get("server_hostname")
        tls = _tls.client_context(o.get("tls"), hostname)
        return self._connect(self._unix_addr(path, o), o, tls, hostname, deadline)

    def _connect(
        self, sockaddr: Any, o: Options, tls: Any, hostname: str | None, deadline: float | None
    ) -> int:
        self._to = sockaddr
        try:
            if move(self, CONNECT, b"", True, o) < 0:
                return 0
        finally:
            self._to = None
        if tls is None:
            return 1
        return _tls.start(self, tls, False, hostname, deadline)

    # -- TLS --------------------------------------------------------------

    @xmake(-1)
    def starttls(self, tls: Any, opt: Options | None = None, /, **kw: Any) -> int:
        """Upgrade this connected socket to TLS (keys ``server_side``,
        ``server_hostname``, ``timeout``): ``1`` done, ``0`` timed out, ``-1`` failed.

        ``tls`` is ``True`` (the default client context) or an
        ``ssl.SSLContext`` (one with a certificate for ``server_side``).  A
        client checks ``server_hostname``, by default the peer's address.
        """
        o = options("starttls", _K_STARTTLS, opt, kw)
        timeout = o.get("timeout", -1)
        deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
        server_side = o.get("server_side", False)
        if not self._stream:
            raise TypeError(f"starttls() is for stream sockets; {self} is not one")
        if self._tls is not None:
            raise ValueError(f"{self} already runs TLS")
        if server_side:
            ctx, hostname = _tls.server_context(tls), None
            if ctx is None:
                raise TypeError("starttls() needs an ssl.SSLContext (or True for a client)")
        else:
            peer = self.peername()
            hostname = o.get("server_hostname", peer[0] if isinstance(peer, tuple) else None)
            ctx = _tls.client_context(tls, hostname)
            if ctx is None:
                raise TypeError("starttls() needs True or an ssl.SSLContext")
        return _tls.start(self, ctx, server_side, hostname, deadline)

    @xmake(-1)
    def handshake(self, timeout: float = -1) -> int:
        """Run the TLS handshake now: ``1`` done (also when it already was),
        ``0`` timed out, ``-1`` failed (``last_error`` says why)."""
        check_timeout("timeout", timeout)
        if self._tls is None:
            self._live()
            raise TypeError(f"handshake() is for TLS sockets; {self} is a plain socket")
        deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
        return _tls.handshake(self, deadline)

    def tls_info(self) -> dict[str, Any] | None:
        """``None`` for a plain socket; otherwise ``version``, ``cipher``,
        ``server_hostname`` and ``peercert`` (as ``ssl.SSLObject`` gives them)."""
        tls = self._tls
        return None if tls is None else tls.info()
