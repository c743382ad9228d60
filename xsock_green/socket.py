"""xmake's ``core.base.socket`` module: constructors and constants.

``from xsock_green import socket`` gives the module a ported script imports
as ``import("core.base.socket")``.  The methods live on ``Socket``.
"""

from __future__ import annotations

import _socket
import errno as _errno
from collections.abc import Callable
from typing import Any

from gevent.local import local as _GreenletLocal

from ._constants import (
    _AF,
    _SOCK_TYPES,
    CTRL_GET_BLOCK,
    CTRL_GET_RECVBUFF,
    CTRL_GET_SENDBUFF,
    CTRL_GET_TCP_NODELAY,
    CTRL_SET_BLOCK,
    CTRL_SET_KEEPALIVE,
    CTRL_SET_NOSIGPIPE,
    CTRL_SET_RECVBUFF,
    CTRL_SET_SENDBUFF,
    CTRL_SET_TCP_KEEPINTVL,
    CTRL_SET_TCP_NODELAY,
    EV_ACPT,
    EV_CONN,
    EV_RECV,
    EV_SEND,
    ICMP,
    IPV4,
    IPV6,
    TCP,
    UDP,
    UNIX,
)
from ._errors import SocketError
from ._options import Options, check_int, options
from ._socket import Socket
from ._tls import server_context

__all__ = [
    "CTRL_GET_BLOCK",
    "CTRL_GET_RECVBUFF",
    "CTRL_GET_SENDBUFF",
    "CTRL_GET_TCP_NODELAY",
    "CTRL_SET_BLOCK",
    "CTRL_SET_KEEPALIVE",
    "CTRL_SET_NOSIGPIPE",
    "CTRL_SET_RECVBUFF",
    "CTRL_SET_SENDBUFF",
    "CTRL_SET_TCP_KEEPINTVL",
    "CTRL_SET_TCP_NODELAY",
    "EV_ACPT",
    "EV_CONN",
    "EV_RECV",
    "EV_SEND",
    "ICMP",
    "IPV4",
    "IPV6",
    "TCP",
    "UDP",
    "UNIX",
    "Socket",
    "bind",
    "bind_unix",
    "connect",
    "connect_unix",
    "last_error",
    "open",
    "tcp",
    "udp",
    "unix",
]

_K_FAMILY = frozenset({"family"})
_K_BIND = frozenset({"family", "reuseport", "tls"})
_K_CONNECT = frozenset({"family", "timeout", "tls", "server_hostname"})
_K_UNIX = frozenset({"is_abstract", "tls"})
_K_CONNECT_UNIX = frozenset({"is_abstract", "timeout", "tls", "server_hostname"})


def open(type: int = TCP, family: int = IPV4) -> Socket:
    """A new socket of ``type`` (``TCP``, ``UDP``, ``ICMP``) and ``family``.

    Raises ``SocketError`` when the OS refuses (an ICMP socket needs
    permission for unprivileged ping on Linux).
    """
    check_int("type", type, 1, 3)
    check_int("family", family, 1, 3)
    if family == UNIX and type != TCP:
        raise ValueError(
            "unix datagram sockets are not supported: a unix socket is a stream "
            "socket (socket.unix()); use UDP over 127.0.0.1 for datagrams"
        )
    proto = 0
    if type == ICMP:
        proto = _socket.IPPROTO_ICMPV6 if family == IPV6 else _socket.IPPROTO_ICMP
    try:
        sock = _socket.socket(_AF[family], _SOCK_TYPES[type], proto)
    except OSError as exc:
        raise SocketError(exc.errno, f"cannot open a socket: {exc.strerror or exc}") from exc
    if family == IPV6:
        sock.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
    return Socket(type, family, sock)


def tcp(opt: Options | None = None, /, **kw: Any) -> Socket:
    """A TCP socket (key ``family``, default ``IPV4``)."""
    o = options("tcp", _K_FAMILY, opt, kw)
    return open(TCP, o.get("family", IPV4))


def udp(opt: Options | None = None, /, **kw: Any) -> Socket:
    """A UDP socket (key ``family``, default ``IPV4``)."""
    o = options("udp", _K_FAMILY, opt, kw)
    return open(UDP, o.get("family", IPV4))


def unix() -> Socket:
    """A unix stream socket: ``type()`` is ``TCP``, ``family()`` is ``UNIX``."""
    return open(TCP, UNIX)


def _family_of(addr: object, o: Options) -> int:
    family: int = o.get("family", IPV6 if isinstance(addr, str) and ":" in addr else IPV4)
    if family == UNIX:
        raise ValueError("family UNIX: use bind_unix()/connect_unix()")
    return family


def bind(addr: str, port: int, opt: Options | None = None, /, **kw: Any) -> Socket:
    """A TCP socket bound to ``addr``:``port``, not yet listening.

    Keys ``family`` (inferred from ``addr`` when absent), ``reuseport`` and
    ``tls`` (an ``ssl.SSLContext`` with the server's certificate: the
    sockets it accepts run TLS, with the handshake on their first
    ``send``/``recv``/``wait`` or at ``handshake(timeout)``).  Sets
    ``SO_REUSEADDR``; ``SO_REUSEPORT`` only when asked.  Raises
    ``SocketError`` naming the address and the reason on failure.
    """
    o = options("bind", _K_BIND, opt, kw)
    tls = server_context(o.get("tls"))
    sock = open(TCP, _family_of(addr, o))
    sock._tlsctx = tls
    try:
        if o.get("reuseport", False):
            sock._live().setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
        if not sock.bind(addr, port):
            raise _bind_error(sock, f"{addr}:{port}")
    except BaseException:
        sock.close()
        raise
    return sock


def bind_unix(path: str, opt: Options | None = None, /, **kw: Any) -> Socket:
    """A unix socket bound to ``path`` (keys ``is_abstract``, ``tls`` as for ``bind``).

    Never deletes an existing file: binding over one raises ``SocketError``.
    """
    o = options("bind_unix", _K_UNIX, opt, kw)
    tls = server_context(o.get("tls"))
    sock = unix()
    sock._tlsctx = tls
    try:
        if not sock.bind_unix(path, _only(o, "is_abstract")):
            raise _bind_error(sock, repr(path))
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_error(sock: Socket, where: str) -> SocketError:
    err = sock.last_error
    reason = str(err).split(">: ", 1)[-1] if err is not None else "unknown error"
    return SocketError(getattr(err, "errno", None), f"cannot bind {where}: {reason}")


def connect(addr: str, port: int, opt: Options | None = None, /, **kw: Any) -> Socket | None:
    """A TCP socket connected to ``addr``:``port``; ``None`` on timeout or refusal.

    Keys ``family`` (inferred from ``addr`` when absent), ``timeout``,
    ``tls`` (``True`` or an ``ssl.SSLContext``: the handshake is part of the
    connect and of its timeout; a failed verification returns ``None``) and
    ``server_hostname`` (the name checked and sent, default ``addr``).
    """
    o = options("connect", _K_CONNECT, opt, kw)
    sock = open(TCP, _family_of(addr, o))
    return _connected(
        sock, lambda: sock.connect(addr, port, _only(o, "timeout", "tls", "server_hostname"))
    )


def connect_unix(path: str, opt: Options | None = None, /, **kw: Any) -> Socket | None:
    """A unix socket connected to ``path`` (keys ``is_abstract``, ``timeout``, ``tls``,
    ``server_hostname``), or ``None``."""
    o = options("connect_unix", _K_CONNECT_UNIX, opt, kw)
    sock = unix()
    return _connected(sock, lambda: sock.connect_unix(path, o))


def _only(o: Options, *keys: str) -> Options:
    return {key: o[key] for key in keys if key in o}


class _Why(_GreenletLocal):  # type: ignore[misc]
    """Per-greenlet: why this greenlet's last module-level connect failed."""

    error: OSError | None = None


_why = _Why()


def last_error() -> OSError | None:
    """Why the last module-level ``connect``/``connect_unix`` in this greenlet returned ``None``.

    A ``SocketError`` as ``sock.last_error`` gives it (``"<socket: tcp4/7>:
    connection refused"``, or ``"... connect timed out"`` after a timeout);
    ``None`` after a connect that succeeded, or before any.  Each greenlet
    sees its own.
    """
    return _why.error


def _connected(sock: Socket, connect: Callable[[], int]) -> Socket | None:
    """``sock`` once ``connect()`` succeeded; otherwise it is closed.

    Records why in the calling greenlet, for ``last_error()``.
    """
    why = _why
    why.error = None
    try:
        result = connect()
        if result == 1:
            return sock
        err = sock.last_error
        if result == 0 or err is None:
            err = SocketError(_errno.ETIMEDOUT, f"{sock}: connect timed out")
        elif err.__traceback__ is not None:
            # Keep the reason, not the frames (and through them the socket).
            err = SocketError(err.errno, str(err))
        why.error = err
    except BaseException:
        sock.close()
        raise
    sock.close()
    return None
