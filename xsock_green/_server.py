"""``Server``: an accept loop in its own greenlet, a greenlet per connection.

What gevent's ``StreamServer`` gives greenlet servers, built only on the
public socket API.  The accept loop calls ``accept()`` and spawns the handler
for each connection; the server closes the connection when the handler
returns or raises.  Three things make it a server rather than a loop:

* ``max_conns``: at the limit the loop stops calling ``accept()``, so new
  clients wait in the kernel's backlog instead of being accepted and dropped;
  the loop goes on when a handler ends.
* Resource limits: ``accept()`` failing with ``EMFILE`` and friends leaves the
  listener readable, so retrying at once would spin.  The loop backs off (10 ms
  doubling to 1 s), logs one line per burst and recovers when descriptors free.
* ``stop(timeout)``: close the listener (the loop's ``accept()`` returns
  ``None``), wait for the handlers, close the sockets of those still running
  (their calls return failure values: ``close()`` wakes every waiter), then
  kill their greenlets.

A UDP server is one greenlet that receives datagrams and calls the handler
for each, in turn, with a view into one buffer that the next datagram reuses.
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import Event
from greenlet import getcurrent

from . import _proxy, socket
from ._bytes import Bytes
from ._errors import SocketError
from ._options import Options, check_timeout
from ._socket import Socket
from ._tls import server_context

__all__ = ["K_STREAM", "K_UDP", "K_UNIX", "Server", "start", "start_udp", "start_unix"]

log = logging.getLogger("xsock_green.server")

StreamHandler = Callable[[Socket], object]
DatagramHandler = Callable[[Socket, Bytes, str, int], object]

K_STREAM = frozenset(
    {
        "backlog",
        "family",
        "handshake_timeout",
        "max_conns",
        "nodelay",
        "proxy_protocol",
        "reuseport",
        "stop_timeout",
        "tls",
    }
)
K_UNIX = frozenset(
    {
        "backlog",
        "handshake_timeout",
        "is_abstract",
        "max_conns",
        "proxy_protocol",
        "stop_timeout",
        "tls",
    }
)
#: A datagram has no header to read: ``proxy_protocol`` is accepted and ignored.
K_UDP = frozenset({"family", "proxy_protocol", "reuseport", "stop_timeout"})

#: accept() failures that free descriptors or memory would cure: back off.
RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
#: accept() failures that belong to one dropped connection (accept(2), Linux
#: notes); each consumed a queued connection, so retrying at once cannot spin.
_PER_CONNECTION = frozenset(
    {
        errno.ECONNABORTED,
        errno.EPROTO,
        errno.EPERM,
        errno.EINTR,
        errno.ENETDOWN,
        errno.ENOPROTOOPT,
        errno.EHOSTDOWN,
        errno.ENONET,
        errno.EHOSTUNREACH,
        errno.EOPNOTSUPP,
        errno.ENETUNREACH,
        errno.ETIMEDOUT,
    }
)
BACKOFF_FIRST = 0.01
BACKOFF_MAX = 1.0
_DATAGRAM_MAX = 65536
_BLOCK = {"block": True}
_KILL_WAIT = 1.0  # s: how long stop() waits for killed handlers to unwind


class _Backoff:
    """Delays after failures that retrying at once cannot cure; one log line a burst."""

    __slots__ = ("delay", "failures")

    def __init__(self) -> None:
        self.delay = 0.0
        self.failures = 0

    def failed(self, what: str, err: OSError | None) -> float:
        """Count a failure; the seconds to wait before the next try."""
        self.failures += 1
        if self.delay == 0.0:
            self.delay = BACKOFF_FIRST
            log.warning(
                "%s failed: %s; retrying in %.0f ms, backing off up to %.0f s",
                what,
                _reason(err),
                BACKOFF_FIRST * 1000,
                BACKOFF_MAX,
            )
        else:
            self.delay = min(self.delay * 2, BACKOFF_MAX)
        return self.delay

    def succeeded(self) -> None:
        self.delay = 0.0
        self.failures = 0


def _reason(err: OSError | None) -> str:
    """The reason part of an xmake-style error text, without the socket's name."""
    if err is None:
        return "unknown error"
    text = str(err)
    return text.split(">: ", 1)[1] if text.startswith("<socket") and ">: " in text else text


def _name(handler: object) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


class Server:
    """A server that is accepting (or receiving) in its own greenlet.

    Made by ``server.start``, ``start_unix`` and ``start_udp``.  A context
    manager: leaving the ``with`` block calls ``stop(0)``.
    """

    def __init__(
        self,
        sock: Socket,
        handler: Callable[..., object],
        o: Options,
        *,
        datagram: bool = False,
        unix_file: tuple[str, int, int] | None = None,
    ) -> None:
        self._sock = sock
        self._handler = handler
        self._datagram = datagram
        self._unix_file = unix_file
        self._max: int = o.get("max_conns", -1)
        self._nodelay = bool(o.get("nodelay", True)) and sock.family() != socket.UNIX
        #: Milliseconds ``server.run`` gives handlers when it stops on a signal.
        self.stop_timeout: float = o.get("stop_timeout", 5000)
        self._tls = server_context(o.get("tls"))
        self._handshake_timeout: float = o.get("handshake_timeout", 10000)
        self._proxy_protocol = bool(o.get("proxy_protocol", False)) and not datagram
        self._address = sock.sockname()
        self._running: dict[gevent.Greenlet, Socket] = {}
        self._busy = False  # a UDP handler is running (in the loop's greenlet)
        self._room = Event()  # set when a handler ends: the accept loop may go on
        self._stopping = Event()  # set once: ends the loop's backoff sleeps
        self._stopped = Event()
        self._closing = False
        loop = self._receive_loop if datagram else self._accept_loop
        self._loop = gevent.spawn(self._guarded, loop)

    def __repr__(self) -> str:
        kind = "udp" if self._datagram else "unix" if self._unix_file is not None else "tcp"
        state = "closed" if self._closing else f"connections={self.connections()}"
        return f"<xsock_green.server.Server {kind} {self._address!r} {state}>"

    # -- what a user asks -------------------------------------------------

    def sockname(self) -> Any:
        """The bound address as ``Socket.sockname()`` gives it (also after ``stop``)."""
        return self._address

    def connections(self) -> int:
        """The number of handlers running now."""
        return len(self._running) + self._busy

    def closed(self) -> bool:
        """``True`` once ``stop`` has begun: the listener is closed."""
        return self._closing

    def serve_forever(self) -> None:
        """Block (or yield, in a greenlet) until the server has stopped."""
        self._stopped.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop(0)

    def stop(self, timeout: float = -1) -> int:
        """Stop accepting at once, wait up to ``timeout`` ms for running handlers.

        Handlers still running then have their sockets closed (their calls
        return failure values) and their greenlets killed.  Returns how many
        handlers had to be stopped that way; ``0`` when all ended by
        themselves, and for every call after the first.  Called from a
        handler, it does not wait for that handler.
        """
        check_timeout("timeout", timeout)
        if self._closing:
            return 0
        self._closing = True
        self._stopping.set()
        self._room.set()
        me = getcurrent()
        busy_udp = self._busy and self._loop is not me
        if not busy_udp:
            # A UDP handler replies on the server's socket: it stays open for it.
            self._sock.close()
        self._remove_unix_file()
        others = [g for g in self._running if g is not me]
        if busy_udp:
            others.append(self._loop)
        if others and timeout != 0:
            gevent.joinall(others, timeout=None if timeout == -1 else timeout / 1000)
        self._sock.close()
        left = [g for g in others if not g.dead]
        if left:
            for glet in left:
                conn = self._running.get(glet)
                if conn is not None:
                    conn.close()
            gevent.sleep(0)  # the woken handlers see their failure values
            gevent.killall([g for g in left if not g.dead], timeout=_KILL_WAIT)
            for glet in left:
                self._running.pop(glet, None)
            if any(not g.dead for g in left):
                log.warning("a handler survived being killed during stop()")
        if self._loop is not me:
            self._loop.kill(timeout=_KILL_WAIT)
        self._stopped.set()
        return len(left)

    # -- the loops --------------------------------------------------------

    def _guarded(self, loop: Callable[[], None]) -> None:
        try:
            loop()
        except Exception:
            log.error("the server loop of %r failed; stopping", self, exc_info=True)
            gevent.spawn(self.stop, 0)

    def _accept_loop(self) -> None:
        sock, running, room = self._sock, self._running, self._room
        limit, nodelay, backoff = self._max, self._nodelay, _Backoff()
        serve = self._serve
        while not self._closing:
            if 0 < limit <= len(running):
                room.clear()
                room.wait()
                continue
            conn = sock.accept()
            if conn is None:
                if self._closing or sock.rawfd() == -1:
                    return
                err = sock.last_error
                if err is not None and err.errno in _PER_CONNECTION:
                    continue
                self._stopping.wait(backoff.failed("accept", err))
                continue
            if backoff.failures:
                backoff.succeeded()
            if nodelay:
                conn.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
            running[gevent.spawn(serve, conn)] = conn

    def _serve(self, conn: Socket) -> None:
        try:
            # SPEC: the PROXY header comes first, then the TLS handshake.
            if self._proxy_protocol and not _proxy.accept_header(conn, self._handshake_timeout):
                return
            if self._tls is not None and not self._secure(conn):
                return
            self._handler(conn)
        except Exception:
            log.error(
                "handler %s failed on the connection from %s",
                _name(self._handler),
                conn.peeraddr() or conn,
                exc_info=True,
            )
        finally:
            conn.close()
            self._running.pop(getcurrent(), None)
            if self._max > 0:
                self._room.set()

    def _secure(self, conn: Socket) -> bool:
        """Run the TLS handshake on an accepted plain connection; log a failure."""
        opt = {"server_side": True, "timeout": self._handshake_timeout}
        result = conn.starttls(self._tls, opt)
        if result != 1:
            why = (
                f"no handshake within {self._handshake_timeout:g} ms"
                if result == 0
                else _reason(conn.last_error)
            )
            log.warning("TLS handshake with %s failed: %s", conn.peeraddr() or conn, why)
        return result == 1

    def _receive_loop(self) -> None:
        sock, handler, backoff = self._sock, self._handler, _Backoff()
        recvfrom = sock.recvfrom
        buff = Bytes(_DATAGRAM_MAX)
        while not self._closing:
            n, data, addr, port = recvfrom(buff, _DATAGRAM_MAX, _BLOCK)
            if n < 0 or data is None or addr is None or port is None:
                if self._closing or sock.rawfd() == -1:
                    return
                if n < 0:
                    self._stopping.wait(backoff.failed("recvfrom", sock.last_error))
                continue
            if backoff.failures:
                backoff.succeeded()
            self._busy = True
            try:
                handler(sock, data, addr, port)
            except Exception:
                log.error(
                    "handler %s failed on a datagram from %s",
                    _name(handler),
                    f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}",
                    exc_info=True,
                )
            finally:
                self._busy = False

    def _remove_unix_file(self) -> None:
        """Remove the socket file this server made, if it is still that file."""
        if self._unix_file is None:
            return
        path, dev, ino = self._unix_file
        try:
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == (dev, ino):
                os.unlink(path)
        except OSError:
            pass


# -- starting ---------------------------------------------------------------------


def _check_handler(handler: object) -> None:
    if not callable(handler):
        raise TypeError(f"handler must be callable, not {type(handler).__name__}")


def _listening(sock: Socket, where: str, handler: StreamHandler, o: Options, **kw: Any) -> Server:
    try:
        if not sock.listen(o.get("backlog", 1024)):
            err = sock.last_error
            raise SocketError(
                getattr(err, "errno", None), f"cannot listen on {where}: {_reason(err)}"
            )
        return Server(sock, handler, o, **kw)
    except BaseException:
        sock.close()
        raise


def start(handler: StreamHandler, addr: str, port: int, o: Options) -> Server:
    """``server.start``, given its checked options (``server.py`` checks them)."""
    _check_handler(handler)
    server_context(o.get("tls"))
    bind_opt = {key: o[key] for key in ("family", "reuseport") if key in o}
    sock = socket.bind(addr, port, bind_opt)
    return _listening(sock, f"{addr}:{port}", handler, o)


def start_unix(handler: StreamHandler, path: str, o: Options) -> Server:
    """``server.start_unix``, given its checked options."""
    _check_handler(handler)
    server_context(o.get("tls"))
    abstract = bool(o.get("is_abstract", False))
    sock = socket.bind_unix(path, {"is_abstract": abstract})
    unix_file = None
    if not abstract:
        try:
            st = os.stat(path)
            unix_file = (os.fsdecode(path), st.st_dev, st.st_ino)
        except OSError:
            pass
    return _listening(sock, repr(path), handler, o, unix_file=unix_file)


def _set_reuseport(sock: Socket) -> None:
    raw = _socket.socket(fileno=sock.fileno())
    try:
        raw.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
    finally:
        raw.detach()


def start_udp(handler: DatagramHandler, addr: str, port: int, o: Options) -> Server:
    """``server.start_udp``, given its checked options."""
    _check_handler(handler)
    family = o.get("family", socket.IPV6 if ":" in addr else socket.IPV4)
    sock = socket.udp({"family": family})
    try:
        if o.get("reuseport", False):
            _set_reuseport(sock)
        if not sock.bind(addr, port):
            err = sock.last_error
            raise SocketError(
                getattr(err, "errno", None), f"cannot bind {addr}:{port}: {_reason(err)}"
            )
        return Server(sock, handler, o, datagram=True)
    except BaseException:
        sock.close()
        raise
