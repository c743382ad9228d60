"""Servers on the xmake socket API: what gevent's ``StreamServer`` gives greenlet servers.

    from xsock_green import server

    def echo(sock):                      # one greenlet per connection
        buff = Bytes(8192)
        while True:
            n, data = sock.recv(buff, 8192, {"block": True})
            if n <= 0 or sock.send(data, {"block": True}) < 0:
                return                   # the server closes sock

    srv = server.start(echo, "127.0.0.1", 9091, {"max_conns": 1000})
    ...
    srv.stop(5000)                       # or: server.run(echo, "0.0.0.0", 9091, workers=4)

Times are milliseconds; ``-1`` means no limit.  Handler exceptions are logged
on the logger ``xsock_green.server`` (level ``ERROR``, with the traceback)
and never stop the server.
"""

from __future__ import annotations

from typing import Any

from . import _server, _workers
from ._options import Options, options
from ._server import DatagramHandler, Server, StreamHandler

__all__ = ["Server", "run", "start", "start_udp", "start_unix"]

Server.__module__ = __name__


def start(
    handler: StreamHandler, addr: str, port: int, opt: Options | None = None, /, **kw: Any
) -> Server:
    """Bind ``addr``:``port``, listen, and accept in a new greenlet; returns the ``Server``.

    ``handler(sock)`` runs in a new greenlet per connection; the server
    closes ``sock`` when it returns or raises.  Keys: ``backlog`` (default
    1024), ``max_conns`` (default ``-1``; at the limit nothing is accepted,
    new clients wait in the backlog), ``reuseport``, ``family``, ``nodelay``
    (``TCP_NODELAY`` on accepted sockets, default ``True``), ``stop_timeout``
    (used by ``run``), ``proxy_protocol`` (default ``False``: each
    connection must start with a PROXY protocol header, version 1 or 2, read
    before the handler runs; ``peeraddr()`` and ``peername()`` then give the
    client's address from it), ``tls`` (an ``ssl.SSLContext`` with the
    server's certificate: the handshake runs before the handler, after the
    PROXY header if any; a failed one is logged and the handler is not
    called) and ``handshake_timeout`` (ms for the header and the handshake,
    default 10000).  A binding failure raises ``SocketError`` as
    ``socket.bind`` does.
    """
    o = options("server.start", _server.K_STREAM, opt, kw)
    return _server.start(handler, addr, port, o)


def start_unix(
    handler: StreamHandler, path: str, opt: Options | None = None, /, **kw: Any
) -> Server:
    """``start`` on a unix socket at ``path`` (keys ``backlog``, ``max_conns``,
    ``is_abstract``, ``stop_timeout``, ``proxy_protocol``, ``tls``, ``handshake_timeout``).

    Never replaces an existing file; ``stop`` removes the socket file the
    server made (if it is still there).
    """
    o = options("server.start_unix", _server.K_UNIX, opt, kw)
    return _server.start_unix(handler, path, o)


def start_udp(
    handler: DatagramHandler, addr: str, port: int, opt: Options | None = None, /, **kw: Any
) -> Server:
    """Bind a UDP socket and call ``handler(sock, data, peer_addr, peer_port)`` per datagram.

    ``sock`` is the server's socket (reply with ``sock.sendto``); ``data`` is
    a ``Bytes`` view that is only valid during the call.  Handlers run one at
    a time, in the server's greenlet.  Keys ``family``, ``reuseport``,
    ``stop_timeout``; ``proxy_protocol`` is accepted and ignored (a datagram
    carries no header).
    """
    o = options("server.start_udp", _server.K_UDP, opt, kw)
    return _server.start_udp(handler, addr, port, o)


def run(
    handler: StreamHandler, addr: str, port: int, opt: Options | None = None, /, **kw: Any
) -> str:
    """Serve until ``SIGINT`` or ``SIGTERM``, stop gracefully, return the signal's name.

    Takes ``start``'s keys plus ``workers`` (default 1: serve in this
    process; N > 1: N forked processes, each with its own ``SO_REUSEPORT``
    listener on the same port, restarted if they die, stopped on the
    signal) and ``ready``, a callable called once, here, with the bound
    address (``sockname()``'s form) when the server (every worker) accepts.
    Handlers get ``stop_timeout`` ms (default 5000) to finish.  Nothing is
    left running when it returns.
    """
    o = options("server.run", _workers.K_RUN, opt, kw)
    return _workers.run(handler, addr, port, o)
