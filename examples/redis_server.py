"""A small Redis-protocol (RESP) server on ``Reader``, that ``redis-cli`` talks to.

Try it::

    python examples/redis_server.py --port 6380
    redis-cli -p 6380 set greeting hello     # OK
    redis-cli -p 6380 get greeting           # "hello"
    redis-cli -p 6380 incr visits            # (integer) 1

RESP frames are lines (``*3\\r\\n``, ``$5\\r\\n``) followed by binary-safe
payloads of a stated length: ``Reader.readline`` reads the lines and
``Reader.readexactly`` the payloads, however the bytes were split into
receives, and pipelined commands (``redis-cli --pipe``) come out of the
reader's buffer one by one.  Inline commands (``PING`` typed into ``socat``
or ``telnet``) work too.  Commands: ``PING ECHO SET GET DEL EXISTS INCR
DBSIZE KEYS FLUSHALL COMMAND QUIT``; the data lives in one dict, in memory.

One greenlet per client; Ctrl-C or SIGTERM stops the server with status 0.
It prints ``Server listening on HOST:PORT`` first (``--port 0``, the
default, picks a free port) and one line per client; ``--count N`` ends it
after N clients have come and gone.
"""

from __future__ import annotations

import argparse
import errno
import fnmatch
import signal
import sys
from collections.abc import Callable

import gevent
from gevent.event import Event

from xsock_green import Reader, Socket, socket

MAX_LINE = 64 * 1024  # a RESP header or an inline command
MAX_BULK = 512 * 1024 * 1024  # Redis's own limit for one string
MAX_ARGS = 1024 * 1024

Reply = bytes


class ProtocolError(Exception):
    """The client sent something that is not RESP; the connection ends."""


def bulk(value: bytes | None) -> Reply:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


def integer(value: int) -> Reply:
    return b":%d\r\n" % value


def error(text: str) -> Reply:
    return b"-ERR " + text.encode() + b"\r\n"


def read_command(reader: Reader) -> list[bytes] | None:
    """One command as a list of arguments; ``None`` at end of stream."""
    n, line = reader.readline(MAX_LINE)
    if n < 0 or line is None:
        if getattr(reader.last_error, "errno", None) == errno.EMSGSIZE:
            raise ProtocolError("line too long")
        return None
    if not line.startswith(b"*"):
        return line.split()  # an inline command: "PING\r\n"
    count = _number(line, MAX_ARGS)
    args = []
    for _ in range(count):
        n, head = reader.readline(MAX_LINE)
        if n < 0 or head is None:
            return None
        if not head.startswith(b"$"):
            raise ProtocolError(f"expected '$', got {head[:1]!r}")
        size = _number(head, MAX_BULK)
        n, data = reader.readexactly(size + 2)
        if n < 0 or data is None:
            return None
        if not data.endswith(b"\r\n"):
            raise ProtocolError("bulk string not followed by CRLF")
        args.append(data[:-2])
    return args


def _number(line: bytes, most: int) -> int:
    if not line.endswith(b"\r\n"):
        raise ProtocolError("line not ended by CRLF")
    try:
        value = int(line[1:-2])
    except ValueError:
        raise ProtocolError(f"invalid length {line[1:-2]!r}") from None
    if not 0 <= value <= most:
        raise ProtocolError(f"invalid length {value}")
    return value


class Store:
    """The commands, over one dict."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.commands: dict[bytes, tuple[int, Callable[[list[bytes]], Reply]]] = {
            # name: (arity as Redis counts it: negative means "at least"), handler
            b"PING": (-1, self.ping),
            b"ECHO": (2, lambda a: bulk(a[1])),
            b"SET": (3, self.set),
            b"GET": (2, lambda a: bulk(self.data.get(a[1]))),
            b"DEL": (-2, lambda a: integer(sum(self.data.pop(k, None) is not None for k in a[1:]))),
            b"EXISTS": (-2, lambda a: integer(sum(k in self.data for k in a[1:]))),
            b"INCR": (2, self.incr),
            b"DBSIZE": (1, lambda a: integer(len(self.data))),
            b"KEYS": (2, self.keys),
            b"FLUSHALL": (-1, self.flushall),
            b"COMMAND": (-1, lambda a: b"*0\r\n"),  # redis-cli asks for docs; there are none
        }

    def ping(self, args: list[bytes]) -> Reply:
        return b"+PONG\r\n" if len(args) == 1 else bulk(args[1])

    def set(self, args: list[bytes]) -> Reply:
        self.data[args[1]] = args[2]
        return b"+OK\r\n"

    def incr(self, args: list[bytes]) -> Reply:
        try:
            value = int(self.data.get(args[1], b"0")) + 1
        except ValueError:
            return error("value is not an integer or out of range")
        self.data[args[1]] = b"%d" % value
        return integer(value)

    def keys(self, args: list[bytes]) -> Reply:
        pattern = args[1].decode("utf-8", "surrogateescape")
        found = [
            k
            for k in self.data
            if fnmatch.fnmatchcase(k.decode("utf-8", "surrogateescape"), pattern)
        ]
        return b"*%d\r\n" % len(found) + b"".join(bulk(k) for k in sorted(found))

    def flushall(self, args: list[bytes]) -> Reply:
        self.data.clear()
        return b"+OK\r\n"

    def execute(self, args: list[bytes]) -> Reply:
        name = args[0].upper()
        entry = self.commands.get(name)
        if entry is None:
            shown = args[0].decode("utf-8", "replace")
            return error(f"unknown command '{shown}', with args beginning with: ")
        arity, handler = entry
        if (arity >= 0 and len(args) != arity) or len(args) < -arity:
            return error(f"wrong number of arguments for '{name.decode().lower()}' command")
        return handler(args)


def handle(sock: Socket, store: Store) -> None:
    reader = Reader(sock)
    with sock:
        while True:
            try:
                args = read_command(reader)
            except ProtocolError as exc:
                sock.send(b"-ERR Protocol error: " + str(exc).encode() + b"\r\n", {"block": True})
                return
            if args is None:
                return
            if not args:  # an empty inline line
                continue
            if args[0].upper() == b"QUIT":
                sock.send(b"+OK\r\n", {"block": True})
                return
            if sock.send(store.execute(args), {"block": True}) < 0:
                return


def main(host: str, port: int, count: int | None) -> int:
    server = socket.bind(host, port)
    server.listen(128)
    print(f"Server listening on {host}:{server.sockname()[1]}", flush=True)
    store = Store()
    done = Event()
    got: list[str] = []
    served = 0

    def on_signal(signum: int) -> None:
        got.append(signal.Signals(signum).name)
        done.set()

    def client(sock: Socket, number: int) -> None:
        nonlocal served
        print(f"client {number} from {sock.peeraddr()}", flush=True)
        try:
            handle(sock, store)
        finally:
            print(f"client {number} done", flush=True)
            served += 1
            if count is not None and served >= count:
                done.set()

    def serve() -> None:
        number = 0
        while True:
            sock = server.accept()
            if sock is None:  # the listener was closed
                return
            number += 1
            glets.add(gevent.spawn(client, sock, number))

    glets: set[gevent.Greenlet] = set()
    handlers = [gevent.signal_handler(s, on_signal, s) for s in (signal.SIGINT, signal.SIGTERM)]
    acceptor = gevent.spawn(serve)
    try:
        done.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        server.close()
        acceptor.join(timeout=2)
        gevent.killall(list(glets), timeout=2)  # closes their sockets (the with blocks)
    if got:
        print(f"stopped by {got[0]}", flush=True)
    print(f"redis server stopped: {len(store.data)} key(s)", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--count", type=int, help="stop after this many clients have left")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.count))
