"""The echo servers under test, one per process.

    python bench/servers.py NAME [--transport tcp|unix|udp]
                                 [--role echo|sink|source|echo64k]
                                 [--path PATH] [--backlog N] [--cprofile FILE]

Each server listens on 127.0.0.1 port 0 (or the unix ``--path``), prints one
JSON line ``{"pid": ..., "port": ..., "path": ...}`` when it is ready, and
serves until it is killed.  Roles (stream transports; UDP always echoes):

* ``echo`` sends back every byte it reads;
* ``sink`` reads and discards until end of stream, then closes (the one-way
  bulk workload, client to server);
* ``source`` reads an 8-byte big-endian byte count, then sends that many
  bytes, one 64 KiB chunk at a time with the library's "send all" call (the
  last chunk cut to size), then closes (the one-way bulk workload, server to
  client);
* ``echo64k`` echoes like ``echo``, but each connection holds one 64 KiB
  receive buffer from its start and receives into it (``recv_into`` or the
  library's equivalent): the idle-connection memory of a server written
  that way.  Only servers whose library receives into a caller's buffer have
  it (not asyncio/uvloop streams nor trio, whose streams return new bytes);
  the protocol servers use ``asyncio.BufferedProtocol``.

``Server.roles`` says which roles a server has; gevent_hub, the reference
loop, has no ``source``.  Every stream server sets TCP_NODELAY on its
connections, as asyncio, uvloop and trio do by default, and listens with the
same backlog.

Each server is the short loop a user of that library would write: read up
to 64 KiB with the library's call, write it back with the library's "send
all" call.  The xsock_green server keeps one ``Bytes`` per connection, as
xmake's own echo example does; it starts at 4 KiB and quadruples, up to
64 KiB, each time a read fills it, so idle connections stay small and busy
ones read as much per call as the others.

This file is run as a script and imports nothing from the harness; it only
imports the library of the server it runs, so a missing peer fails alone.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

READ = 65536  # bytes asked of every read call; also the source role's chunk
BUF_MIN = 4096  # the xsock_green server's first buffer
HOST = "127.0.0.1"
HEAD = 8  # the source role's request: the byte count, big-endian
ROLES = ("echo", "sink", "source", "echo64k")


@dataclass(frozen=True)
class Args:
    transport: str
    role: str
    path: str
    backlog: int
    workers: int = 1


def ready(port: int | None, path: str | None = None) -> None:
    """Tell the harness where to connect."""
    sys.stdout.write(json.dumps({"pid": os.getpid(), "port": port, "path": path}) + "\n")
    sys.stdout.flush()


def nodelay(sock: Any) -> None:
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def plain_listener(a: Args) -> socket.socket:
    """A listening standard-library socket on 127.0.0.1:0 or ``a.path``."""
    if a.transport == "unix":
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(a.path)
    else:
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind((HOST, 0))
    lst.listen(a.backlog)
    return lst


def read_head(recv: Callable[[int], bytes]) -> int | None:
    """The source role's byte count, read with a blocking ``recv``; ``None`` at end of stream."""
    head = b""
    while len(head) < HEAD:
        data = recv(HEAD - len(head))
        if not data:
            return None
        head += data
    return int.from_bytes(head, "big")


def announce(sock: Any, a: Args) -> None:
    if a.transport == "unix":
        ready(None, a.path)
    else:
        name = sock.sockname() if hasattr(sock, "sockname") else sock.getsockname()
        ready(name[1])


# -- xsock_green -------------------------------------------------------------


def xsock_green_handler(role: str) -> Callable[[Any], None]:
    """The per-connection loop both xsock_green servers run: the same code."""
    from xsock_green import Bytes, Socket

    block = {"block": True}

    def echo(c: Socket) -> None:
        buff = Bytes(BUF_MIN)
        size = BUF_MIN
        try:
            while True:
                n, data = c.recv(buff, size, block)
                if n <= 0 or c.send(data, block) < 0:
                    break
                if n == size and size < READ:
                    size *= 4
                    buff = Bytes(size)
        finally:
            c.close()

    def sink(c: Socket) -> None:
        buff = Bytes(BUF_MIN)
        size = BUF_MIN
        try:
            while True:
                n, _ = c.recv(buff, size, block)
                if n <= 0:
                    break
                if n == size and size < READ:
                    size *= 4
                    buff = Bytes(size)
        finally:
            c.close()

    def source(c: Socket) -> None:
        head = Bytes(HEAD)
        chunk = Bytes(READ)
        try:
            n, _ = c.recv(head, HEAD, {"block": True, "waitall": True})
            if n != HEAD:
                return
            left = head.u32be(1) << 32 | head.u32be(5)
            while left >= READ:
                if c.send(chunk, block) < 0:
                    return
                left -= READ
            if left:
                c.send(chunk, {"block": True, "last": left})
        finally:
            c.close()

    def echo64k(c: Socket) -> None:
        buff = Bytes(READ)  # one 64 KiB buffer for the connection's whole life
        try:
            while True:
                n, data = c.recv(buff, READ, block)
                if n <= 0 or c.send(data, block) < 0:
                    break
        finally:
            c.close()

    return {"echo": echo, "sink": sink, "source": source, "echo64k": echo64k}[role]


def xsock_green_udp(block: dict[str, bool]) -> Callable[[Any, Any, str, int], None]:
    def reply(sock: Any, data: Any, peer: str, port: int) -> None:
        sock.sendto(data, peer, port, block)

    return reply


def serve_xsock_green(a: Args) -> None:
    """The hand-written accept loop: accept, set TCP_NODELAY, spawn."""
    from xsock_green import Bytes
    from xsock_green import socket as xs

    block = {"block": True}

    if a.transport == "udp":
        u = xs.udp()
        u.bind(HOST, 0)
        ready(u.sockname()[1])
        ubuf = Bytes(READ)
        while True:
            n, data, peer, port = u.recvfrom(ubuf, READ, block)
            if n > 0 and peer is not None and port is not None:
                u.sendto(data, peer, port, block)

    xsock_accept_loop(a, xsock_green_handler(a.role))


def own_greenlet(loop: Callable[[], None]) -> None:
    """Run a hand-written accept loop in a greenlet of its own, and wait for it.

    At every spawn gevent records the spawning stack with its line numbers
    (``gevent.config.track_greenlet_tree``).  From the main greenlet that
    stack reaches this file's module code, whose whole line table it scans:
    44k instructions per connection (callgrind, churn), a quarter of the
    server's cost, that StreamServer (which spawns from the hub) never pays.
    In a greenlet of its own the stack is the loop's frame alone.
    """
    import gevent

    gevent.spawn(loop).get()


def xsock_accept_loop(a: Args, handler: Callable[[Any], None]) -> None:
    """Listen, then accept, set TCP_NODELAY and spawn ``handler`` for ever."""
    import gevent

    from xsock_green import socket as xs

    srv = xs.bind_unix(a.path) if a.transport == "unix" else xs.bind(HOST, 0)
    srv.listen(a.backlog)
    announce(srv, a)
    tcp = a.transport == "tcp"

    def loop() -> None:
        while True:
            c = srv.accept()
            if c is None:
                continue
            if tcp:
                c.ctrl(xs.CTRL_SET_TCP_NODELAY, True)
            gevent.spawn(handler, c)

    own_greenlet(loop)


def serve_xsock_green_server(a: Args) -> None:
    """The same handler under ``xsock_green.server`` (``start``, ``start_unix``, ``start_udp``)."""
    from xsock_green import server

    if a.transport == "udp":
        srv = server.start_udp(xsock_green_udp({"block": True}), HOST, 0)
        ready(srv.sockname()[1])
    elif a.transport == "unix":
        srv = server.start_unix(xsock_green_handler(a.role), a.path, backlog=a.backlog)
        ready(None, a.path)
    else:
        srv = server.start(xsock_green_handler(a.role), HOST, 0, backlog=a.backlog)
        ready(srv.sockname()[1])
    srv.serve_forever()


def serve_xsock_green_workers(a: Args) -> None:
    """``server.run`` with ``--workers`` processes (TCP); the harness sees the supervisor."""
    from xsock_green import server

    server.run(
        xsock_green_handler(a.role),
        HOST,
        0,
        {"backlog": a.backlog, "workers": a.workers, "ready": lambda addr: ready(addr[1])},
    )


def serve_xsock_core(a: Args) -> None:
    """Reference, not an API: xsock_green's transfer core (``_core.move``) called
    directly, under the same accept loop as ``xsock_green``.  The same system
    calls, waits, slots, fairness and read hint, without the public methods'
    argument checks, option tables, ``Bytes`` views and result tuples: the
    difference to ``xsock_green`` is what that API layer costs per call.
    Echo only."""
    from xsock_green import socket as xs
    from xsock_green._core import RECV, RECVFROM, SEND, SENDTO, move
    from xsock_green._options import BLOCK

    if a.transport == "udp":
        u = xs.udp()
        u.bind(HOST, 0)
        ready(u.sockname()[1])
        whole = memoryview(bytearray(READ))
        while True:
            n = move(u, RECVFROM, whole, True, BLOCK)
            u._to = u._from
            move(u, SENDTO, whole[:n], True, BLOCK)

    def echo(c: Any) -> None:
        size = BUF_MIN  # the buffer grows as xsock_green's handler's does
        whole = memoryview(bytearray(size))
        try:
            while True:
                n = move(c, RECV, whole, True, BLOCK)
                move(c, SEND, whole[:n], True, BLOCK)
                if n == size and size < READ:
                    size *= 4
                    whole = memoryview(bytearray(size))
        except OSError:
            pass
        finally:
            c.close()

    xsock_accept_loop(a, echo)


# -- gevent ------------------------------------------------------------------


def gevent_handler(role: str) -> Callable[[Any, Any], None]:
    def echo(sock: Any, _addr: Any) -> None:
        nodelay(sock)
        recv, sendall = sock.recv, sock.sendall
        try:
            while True:
                data = recv(READ)
                if not data:
                    break
                sendall(data)
        except OSError:
            pass
        finally:
            sock.close()

    def sink(sock: Any, _addr: Any) -> None:
        recv = sock.recv
        try:
            while recv(READ):
                pass
        except OSError:
            pass
        finally:
            sock.close()

    def source(sock: Any, _addr: Any) -> None:
        nodelay(sock)
        sendall = sock.sendall
        chunk = bytes(READ)
        try:
            left = read_head(sock.recv)
            while left and left >= READ:
                sendall(chunk)
                left -= READ
            if left:
                sendall(chunk[:left])
        except OSError:
            pass
        finally:
            sock.close()

    def echo64k(sock: Any, _addr: Any) -> None:
        nodelay(sock)
        buf = bytearray(READ)  # one 64 KiB buffer for the connection's whole life
        view = memoryview(buf)
        recv_into, sendall = sock.recv_into, sock.sendall
        try:
            while True:
                n = recv_into(buf)
                if not n:
                    break
                sendall(view[:n])
        except OSError:
            pass
        finally:
            sock.close()

    return {"echo": echo, "sink": sink, "source": source, "echo64k": echo64k}[role]


def gevent_listener(a: Args) -> Any:
    from gevent import socket as gsocket

    if a.transport == "unix":
        lst = gsocket.socket(gsocket.AF_UNIX, gsocket.SOCK_STREAM)
        lst.bind(a.path)
    else:
        lst = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_STREAM)
        lst.setsockopt(gsocket.SOL_SOCKET, gsocket.SO_REUSEADDR, 1)
        lst.bind((HOST, 0))
    lst.listen(a.backlog)
    return lst


def serve_gevent_stream(a: Args) -> None:
    from gevent.server import DatagramServer, StreamServer

    if a.transport == "udp":

        class Echo(DatagramServer):  # type: ignore[misc]
            def handle(self, data: bytes, address: Any) -> None:
                self.socket.sendto(data, address)

        udp = Echo((HOST, 0))
        udp.start()
        ready(udp.server_port)
        udp.serve_forever()
        return
    server = StreamServer(gevent_listener(a), gevent_handler(a.role))
    server.start()
    announce(server.socket, a)
    server.serve_forever()


def serve_gevent_raw(a: Args) -> None:
    import gevent
    from gevent import socket as gsocket

    if a.transport == "udp":
        u = gsocket.socket(gsocket.AF_INET, gsocket.SOCK_DGRAM)
        u.bind((HOST, 0))
        ready(u.getsockname()[1])
        while True:
            data, peer = u.recvfrom(READ)
            u.sendto(data, peer)
    lst = gevent_listener(a)
    announce(lst, a)
    handler = gevent_handler(a.role)

    def loop() -> None:
        while True:
            c, addr = lst.accept()
            gevent.spawn(handler, c, addr)

    own_greenlet(loop)


def serve_gevent_hub(a: Args) -> None:
    """Reference, not a library: the bare loop on gevent's hub from issue 7.

    Wait for readability, then ``recv``; plain ``send`` and wait for
    writability only when it falls short.  Standard-library sockets, one
    pair of persistent watchers per connection.  ``echo64k``: ``recv_into``
    one 64 KiB ``bytearray`` per connection.  No ``source`` role.
    """
    import gevent
    from gevent.hub import get_hub

    hub = get_hub()
    loop = hub.loop
    wait = hub.wait
    if a.transport == "udp":
        raise SystemExit("gevent_hub: no UDP server")
    lst = plain_listener(a)
    lst.setblocking(False)
    announce(lst, a)
    sink = a.role == "sink"
    own_buffer = a.role == "echo64k"

    def handle(c: socket.socket) -> None:
        fd = c.fileno()
        rw, ww = loop.io(fd, 1), loop.io(fd, 2)
        recv: Callable[[int], Any] = c.recv
        send = c.send
        if own_buffer:  # one 64 KiB buffer for the connection's whole life
            buf = bytearray(READ)
            whole = memoryview(buf)
            recv_into = c.recv_into

            def recv(_n: int) -> memoryview:
                return whole[: recv_into(buf)]

        try:
            while True:
                wait(rw)
                try:
                    data = recv(READ)
                except BlockingIOError:
                    continue
                if not data:
                    break
                if sink:
                    continue
                view = memoryview(data)
                while view:
                    try:
                        view = view[send(view) :]
                    except BlockingIOError:
                        pass
                    if view:
                        wait(ww)
        except OSError:
            pass
        finally:
            rw.close()
            ww.close()
            c.close()

    def accept_loop() -> None:
        aw = loop.io(lst.fileno(), 1)
        while True:
            wait(aw)
            try:
                c, _ = lst.accept()
            except BlockingIOError:
                continue
            c.setblocking(False)
            nodelay(c)
            gevent.spawn(handle, c)

    own_greenlet(accept_loop)


# -- asyncio and uvloop ------------------------------------------------------


def loop_factory(name: str) -> Callable[[], Any]:
    import asyncio

    if name.startswith("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def serve_asyncio_streams(a: Args, factory: Callable[[], Any] | None = None) -> None:
    import asyncio

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(READ)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def sink(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(READ):
                pass
        except OSError:
            pass
        finally:
            writer.close()

    async def source(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        chunk = bytes(READ)
        try:
            left = int.from_bytes(await reader.readexactly(HEAD), "big")
            while left >= READ:
                writer.write(chunk)
                await writer.drain()
                left -= READ
            if left:
                writer.write(chunk[:left])
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()  # sends what is still buffered, then closes

    handler = {"echo": echo, "sink": sink, "source": source}[a.role]

    async def main() -> None:
        if a.transport == "udp":
            raise SystemExit("streams have no UDP server")
        if a.transport == "unix":
            server = await asyncio.start_unix_server(handler, a.path, backlog=a.backlog)
        else:
            server = await asyncio.start_server(handler, HOST, 0, backlog=a.backlog)
        announce(server.sockets[0], a)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=factory or asyncio.new_event_loop) as runner:
        runner.run(main())


def serve_asyncio_proto(a: Args, factory: Callable[[], Any] | None = None) -> None:
    import asyncio

    class Echo(asyncio.Protocol):
        transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(data)

    class Sink(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            pass

    chunk = bytes(READ)

    class Source(asyncio.Protocol):
        """Read the byte count, then write while the transport is not paused."""

        transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.head = b""
            self.left = -1  # bytes still to write; -1 until the count arrived
            self.paused = False

        def data_received(self, data: bytes) -> None:
            if self.left >= 0:
                return
            self.head += data
            if len(self.head) >= HEAD:
                self.left = int.from_bytes(self.head[:HEAD], "big")
                self.pump()

        def pause_writing(self) -> None:
            self.paused = True

        def resume_writing(self) -> None:
            self.paused = False
            self.pump()

        def pump(self) -> None:
            write = self.transport.write
            while self.left > 0 and not self.paused:  # write() may pause us
                n = min(self.left, READ)
                write(chunk if n == READ else chunk[:n])
                self.left -= n
            if self.left == 0:
                self.left = -2  # done: close once
                self.transport.close()  # sends what is still buffered, then closes

        def connection_lost(self, exc: Exception | None) -> None:
            self.left = -2
            self.paused = True

    class Echo64k(asyncio.BufferedProtocol):
        """One 64 KiB receive buffer per connection, which the transport fills."""

        transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buf = bytearray(READ)

        def get_buffer(self, sizehint: int) -> bytearray:
            return self.buf

        def buffer_updated(self, nbytes: int) -> None:
            self.transport.write(self.buf[:nbytes])

    class EchoUDP(asyncio.DatagramProtocol):
        transport: Any = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            self.transport.sendto(data, addr)

    proto: type[asyncio.BaseProtocol] = {
        "echo": Echo,
        "sink": Sink,
        "source": Source,
        "echo64k": Echo64k,
    }[a.role]

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if a.transport == "udp":
            transport, _ = await loop.create_datagram_endpoint(EchoUDP, local_addr=(HOST, 0))
            ready(transport.get_extra_info("sockname")[1])
            await asyncio.Event().wait()
        if a.transport == "unix":
            server = await loop.create_unix_server(proto, a.path, backlog=a.backlog)
        else:
            server = await loop.create_server(proto, HOST, 0, backlog=a.backlog)
        announce(server.sockets[0], a)
        await server.serve_forever()

    with asyncio.Runner(loop_factory=factory or asyncio.new_event_loop) as runner:
        runner.run(main())


def serve_uvloop_streams(a: Args) -> None:
    serve_asyncio_streams(a, loop_factory("uvloop"))


def serve_uvloop_proto(a: Args) -> None:
    serve_asyncio_proto(a, loop_factory("uvloop"))


# -- threads -----------------------------------------------------------------


def serve_threads(a: Args) -> None:
    import threading

    if a.transport == "udp":
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((HOST, 0))
        ready(u.getsockname()[1])
        while True:
            data, peer = u.recvfrom(READ)
            u.sendto(data, peer)

    def echo(c: socket.socket) -> None:
        recv, sendall = c.recv, c.sendall
        try:
            while True:
                data = recv(READ)
                if not data:
                    break
                sendall(data)
        except OSError:
            pass
        finally:
            c.close()

    def sink(c: socket.socket) -> None:
        try:
            while c.recv(READ):
                pass
        except OSError:
            pass
        finally:
            c.close()

    def source(c: socket.socket) -> None:
        chunk = bytes(READ)
        try:
            left = read_head(c.recv)
            while left and left >= READ:
                c.sendall(chunk)
                left -= READ
            if left:
                c.sendall(chunk[:left])
        except OSError:
            pass
        finally:
            c.close()

    def echo64k(c: socket.socket) -> None:
        buf = bytearray(READ)  # one 64 KiB buffer for the connection's whole life
        view = memoryview(buf)
        try:
            while True:
                n = c.recv_into(buf)
                if not n:
                    break
                c.sendall(view[:n])
        except OSError:
            pass
        finally:
            c.close()

    handler = {"echo": echo, "sink": sink, "source": source, "echo64k": echo64k}[a.role]
    lst = plain_listener(a)
    announce(lst, a)
    while True:
        c, _ = lst.accept()
        nodelay(c)
        threading.Thread(target=handler, args=(c,), daemon=True).start()


# -- trio ----------------------------------------------------------------------


def serve_trio(a: Args) -> None:
    import trio

    async def echo(stream: trio.SocketStream) -> None:
        try:
            async for data in stream:
                await stream.send_all(data)
        except (trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    async def sink(stream: trio.SocketStream) -> None:
        try:
            async for _ in stream:
                pass
        except (trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    async def source(stream: trio.SocketStream) -> None:
        chunk = bytes(READ)
        try:
            head = b""
            while len(head) < HEAD:
                data = await stream.receive_some(HEAD - len(head))
                if not data:
                    return
                head += data
            left = int.from_bytes(head, "big")
            while left >= READ:
                await stream.send_all(chunk)
                left -= READ
            if left:
                await stream.send_all(chunk[:left])
        except (trio.BrokenResourceError, OSError):
            pass
        finally:
            await stream.aclose()

    async def udp() -> None:
        u = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await u.bind((HOST, 0))
        ready(u.getsockname()[1])
        while True:
            data, peer = await u.recvfrom(READ)
            await u.sendto(data, peer)

    handler = {"echo": echo, "sink": sink, "source": source}[a.role]

    async def main() -> None:
        if a.transport == "udp":
            await udp()
            return
        async with trio.open_nursery() as nursery:
            if a.transport == "unix":
                sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
                await sock.bind(a.path)
                sock.listen(a.backlog)
                listeners = [trio.SocketListener(sock)]
                nursery.start_soon(trio.serve_listeners, handler, listeners)
                ready(None, a.path)
            else:
                serve = functools.partial(trio.serve_tcp, host=HOST, backlog=a.backlog)
                listeners = await nursery.start(serve, handler, 0)
                ready(listeners[0].socket.getsockname()[1])

    trio.run(main)


# -- the table -----------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    name: str
    serve: Callable[[Args], None]
    needs: tuple[str, ...]  # modules that must be importable
    transports: frozenset[str]
    about: str
    default: bool = True  # part of a run without --only
    roles: frozenset[str] = frozenset(ROLES)  # what --role accepts (stream transports)


_STREAMS = frozenset({"tcp", "unix"})
_ALL = frozenset({"tcp", "unix", "udp"})
_NO_BUFFER = frozenset({"echo", "sink", "source"})  # streams that return new bytes: no echo64k

SERVERS: dict[str, Server] = {
    s.name: s
    for s in (
        Server(
            "xsock_green",
            serve_xsock_green,
            ("xsock_green", "gevent"),
            _ALL,
            "a greenlet per connection, block-mode recv/send into a Bytes",
        ),
        Server(
            "xsock_green_server",
            serve_xsock_green_server,
            ("xsock_green", "gevent"),
            _ALL,
            "the same handler under xsock_green.server.start (accept loop, max_conns, stop)",
            default=False,
        ),
        Server(
            "xsock_green_workers",
            serve_xsock_green_workers,
            ("xsock_green", "gevent"),
            frozenset({"tcp"}),
            "the same handler under xsock_green.server.run, --workers processes (bench/workers.py)",
            default=False,
        ),
        Server(
            "xsock_core",
            serve_xsock_core,
            ("xsock_green", "gevent"),
            _ALL,
            "reference, not an API: the transfer core called directly "
            "(no argument, option or result objects)",
            roles=frozenset({"echo"}),
        ),
        Server(
            "gevent_stream",
            serve_gevent_stream,
            ("gevent",),
            _ALL,
            "gevent.server.StreamServer / DatagramServer, recv + sendall",
        ),
        Server(
            "gevent_raw",
            serve_gevent_raw,
            ("gevent",),
            _ALL,
            "gevent.socket accept loop, a greenlet per connection, recv + sendall",
        ),
        Server(
            "gevent_hub",
            serve_gevent_hub,
            ("gevent",),
            _STREAMS,
            "reference, not a library: wait-then-recv loop on gevent's hub",
            roles=frozenset({"echo", "sink", "echo64k"}),
        ),
        Server(
            "asyncio_streams",
            serve_asyncio_streams,
            (),
            _STREAMS,
            "asyncio.start_server, read + write + drain",
            roles=_NO_BUFFER,
        ),
        Server(
            "asyncio_proto",
            serve_asyncio_proto,
            (),
            _ALL,
            "asyncio Protocol / DatagramProtocol, transport.write",
        ),
        Server(
            "uvloop_streams",
            serve_uvloop_streams,
            ("uvloop",),
            _STREAMS,
            "asyncio streams on uvloop",
            roles=_NO_BUFFER,
        ),
        Server(
            "uvloop_proto",
            serve_uvloop_proto,
            ("uvloop",),
            _ALL,
            "asyncio Protocol / DatagramProtocol on uvloop",
        ),
        Server(
            "threads",
            serve_threads,
            (),
            _ALL,
            "a thread per connection, blocking recv + sendall",
        ),
        Server(
            "trio",
            serve_trio,
            ("trio",),
            _ALL,
            "trio.serve_tcp, async for + send_all",
            roles=_NO_BUFFER,
        ),
    )
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="one echo server under test")
    p.add_argument("name", choices=sorted(SERVERS))
    p.add_argument("--transport", choices=("tcp", "unix", "udp"), default="tcp")
    p.add_argument("--role", choices=ROLES, default="echo")
    p.add_argument("--path", default="")
    p.add_argument("--backlog", type=int, default=1024)
    p.add_argument("--workers", type=int, default=2, help="processes of xsock_green_workers")
    p.add_argument("--cprofile", default="", help="write cProfile stats here on SIGTERM")
    ns = p.parse_args(argv)
    server = SERVERS[ns.name]
    if ns.transport not in server.transports:
        p.error(f"{ns.name} has no {ns.transport} server")
    if ns.transport != "udp" and ns.role not in server.roles:
        p.error(f"{ns.name} has no {ns.role} role")
    if ns.transport == "unix" and not ns.path:
        p.error("--transport unix needs --path")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    args = Args(ns.transport, ns.role, ns.path, ns.backlog, ns.workers)
    if ns.cprofile:
        import cProfile

        prof = cProfile.Profile()

        def dump(_sig: int, _frame: object) -> None:
            prof.disable()
            prof.dump_stats(ns.cprofile)
            os._exit(0)

        signal.signal(signal.SIGTERM, dump)
        prof.enable()
    server.serve(args)


if __name__ == "__main__":
    main()
