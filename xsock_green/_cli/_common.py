"""What every ``xsock`` command shares: exit codes, endpoints, argument
types, one-line messages, signals, and opening the server's socket."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import gevent
from gevent.event import Event

from xsock_green import Socket, socket

EXIT_OK = 0
EXIT_FAIL = 1
EXIT_USAGE = 2

#: The demonstration ``xsock`` runs when given no arguments.
DEMO_ARGS = ("bench", "--clients", "10", "--size", "1024", "--duration", "5", "--transport", "tcp")

_BUFF_SIZE = 65536
_UDP_MAX = 65507  # the largest UDP payload over IPv4
_STREAM_MAX = 16 * 1024 * 1024
_IO_TIMEOUT = 5000  # ms: a bench request or an echo that takes longer is an error
_UDP_TIMEOUT = 1000  # ms: a lost datagram costs the bench client this long
_CLEAR_EOL = "\x1b[K"  # the progress bar is only drawn on a terminal
_DUPLEX_OVER = 65536  # larger messages are sent from a second greenlet while echoes are read

Log = Callable[[str], None]


# -- arguments ----------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, exit status 2.

    ``COMMAND_ARGUMENTS`` lets a command's module add its own options to its
    sub-parser (keyed by the command's name), so ``_parser()`` need not know
    them all.
    """

    COMMAND_ARGUMENTS: ClassVar[dict[str, Callable[[argparse.ArgumentParser], None]]] = {}

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        add = self.COMMAND_ARGUMENTS.get(self.prog.rsplit(" ", 1)[-1])
        if add is not None:
            add(self)

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_USAGE, f"{self.prog}: error: {text} (see '{self.prog} --help')\n")


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens or a client connects: tcp/udp ``host:port`` or a unix path."""

    transport: str
    host: str = ""
    port: int = 0
    path: str = ""

    @property
    def family(self) -> int:
        return socket.IPV6 if ":" in self.host else socket.IPV4

    def address(self, port: int | None = None) -> str:
        """``host:port`` (``[host]:port`` for IPv6) or the unix path."""
        if self.transport == "unix":
            return self.path
        port = self.port if port is None else port
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:9000), got {text!r}")
    port = int(port_text)
    if port > 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {port}")
    return host, port


def _tcp(text: str) -> Endpoint:
    return Endpoint("tcp", *_host_port(text))


def _udp(text: str) -> Endpoint:
    return Endpoint("udp", *_host_port(text))


def _unix(text: str) -> Endpoint:
    if not text:
        raise argparse.ArgumentTypeError("the unix socket path must not be empty")
    if len(os.fsencode(text)) > 107:
        raise argparse.ArgumentTypeError(f"unix socket path is longer than 107 bytes: {text!r}")
    return Endpoint("unix", path=text)


def _positive(kind: Callable[[str], Any], high: float, what: str) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not 0 < value <= high or (isinstance(value, float) and math.isnan(value)):
            raise argparse.ArgumentTypeError(f"must be > 0 and <= {high:g}, got {text}")
        return value

    return convert


def _add_endpoint(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--tcp", dest="endpoint", type=_tcp, metavar="HOST:PORT")
    group.add_argument("--udp", dest="endpoint", type=_udp, metavar="HOST:PORT")
    group.add_argument("--unix", dest="endpoint", type=_unix, metavar="PATH")


# -- small helpers --------------------------------------------------------------


def _say(prog: str, message: str) -> None:
    print(f"{prog}: {message}", file=sys.stderr, flush=True)


def _reason(err: OSError | None) -> str:
    """The reason part of an xmake-style error text, without the socket's name."""
    if err is None:
        return "unknown error"
    text = str(err)
    return text.split(">: ", 1)[1] if text.startswith("<socket") and ">: " in text else text


@contextlib.contextmanager
def _on_signals(stop: Event) -> Iterator[list[str]]:
    """Set ``stop`` on SIGINT or SIGTERM; yields the list of signal names received."""
    got: list[str] = []

    def handle(name: str) -> None:
        got.append(name)
        stop.set()

    handlers = [
        gevent.signal_handler(signal.SIGINT, handle, "SIGINT"),
        gevent.signal_handler(signal.SIGTERM, handle, "SIGTERM"),
    ]
    try:
        yield got
    finally:
        for handler in handlers:
            handler.cancel()
        # libev restores the default action on cancel; put Python's back.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _listen(ep: Endpoint, backlog: int, tls: Any = None) -> Socket:
    """A listening stream socket for ``ep`` (accepting TLS with a ``tls`` context);
    raises ``OSError`` with a readable reason."""
    unix = ep.transport == "unix"
    opt = {"tls": tls} if tls is not None else {}
    server = socket.bind_unix(ep.path, opt) if unix else socket.bind(ep.host, ep.port, opt)
    if not server.listen(backlog):
        err = server.last_error
        server.close()
        raise OSError(f"cannot listen on {ep.address()}: {_reason(err)}")
    return server


def _bind_udp(ep: Endpoint) -> Socket:
    sock = socket.udp({"family": ep.family})
    if not sock.bind(ep.host, ep.port):
        err = sock.last_error
        sock.close()
        raise OSError(f"cannot bind {ep.address()}: {_reason(err)}")
    return sock


def _bound(ep: Endpoint, sock: Socket) -> str:
    if ep.transport == "unix":
        return f"unix {ep.path}"
    return f"{ep.transport} {ep.address(sock.sockname()[1])}"


def _stop_all(glets: Sequence[Any]) -> None:
    gevent.killall(list(glets), timeout=2)
