"""The ``xsock`` command: an echo server, an echo client and a loopback benchmark.

Everything here is built on the public API (``socket``, ``Bytes``) the way a
user would build it: one greenlet per connection, block-mode ``recv`` and
``send``.  ``xsock`` with no arguments runs a short ``bench`` as a
demonstration.  Usage errors print one line on stderr and exit with status 2;
runtime failures (a port in use, a refused connection) print one line and
exit with status 1; SIGINT and SIGTERM stop a server cleanly with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, TextIO

import gevent
from gevent.event import Event

from xsock_green import Bytes, Socket, __version__, socket

__all__ = ["main"]

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
    """An ``ArgumentParser`` whose usage errors are one line, exit status 2."""

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


def _parser(prog: str) -> _Parser:
    parser = _Parser(
        prog=prog,
        description="xsock_green's command line. With no command it runs a 5-second "
        "demonstration: " + " ".join(DEMO_ARGS) + ".",
    )
    parser.add_argument("--version", action="version", version=f"xsock_green {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    server = sub.add_parser(
        "echo-server",
        help="echo every byte back until interrupted",
        description="Echo every byte (tcp, unix) or datagram (udp) back to its sender "
        "until SIGINT or SIGTERM. Port 0 picks a free port; the bound address is "
        "printed as 'listening on ...'.",
    )
    _add_endpoint(server)
    server.add_argument("-v", "--verbose", action="count", default=0, help="log each connection")

    client = sub.add_parser(
        "echo-client",
        help="send lines and print their echoes",
        description="Send each line of stdin (or --message, --count times) and print the echo.",
    )
    _add_endpoint(client)
    client.add_argument("-m", "--message", help="send MESSAGE plus a newline instead of stdin")
    client.add_argument(
        "-c",
        "--count",
        type=_positive(int, 10**9, "an integer"),
        help="send --message this many times (default 1)",
    )
    client.add_argument(
        "--timeout",
        type=_positive(int, 3_600_000, "milliseconds"),
        default=_IO_TIMEOUT,
        help="milliseconds to wait for a connection or an echo (default %(default)s)",
    )
    client.add_argument("-v", "--verbose", action="count", default=0, help="log the connection")

    bench = sub.add_parser(
        "bench",
        help="benchmark an echo server and many client greenlets on loopback",
        description="Run an echo server and N client greenlets in this process on loopback; "
        "each client sends SIZE bytes and waits for the echo, for DURATION seconds. "
        "Prints requests/s, MB/s (echoed payload, 1 MB = 10^6 bytes) and latency "
        "percentiles in microseconds.",
    )
    bench.add_argument("--clients", type=_positive(int, 10_000, "an integer"), default=10)
    bench.add_argument("--size", type=_positive(int, _STREAM_MAX, "a byte count"), default=1024)
    bench.add_argument(
        "--duration", type=_positive(float, 3600, "seconds"), default=5.0, help="seconds"
    )
    bench.add_argument("--transport", choices=("tcp", "unix", "udp"), default="tcp")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


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


def _listen(ep: Endpoint, backlog: int) -> Socket:
    """A listening stream socket for ``ep``; raises ``OSError`` with a readable reason."""
    unix = ep.transport == "unix"
    server = socket.bind_unix(ep.path) if unix else socket.bind(ep.host, ep.port)
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


def _echo_stream(conn: Socket, log: Log | None, name: str) -> None:
    """Echo one stream connection until end of stream (one greenlet per connection)."""
    buff = Bytes(_BUFF_SIZE)
    total = 0
    try:
        while True:
            n, data = conn.recv(buff, _BUFF_SIZE, {"block": True})
            if n <= 0 or data is None or conn.send(data, {"block": True}) < 0:
                break
            total += n
    finally:
        err = conn.last_error
        conn.close()
        if log is not None:
            why = f": {_reason(err)}" if err is not None and err.errno is not None else ""
            log(f"{name} closed after {total} bytes{why}")


def _accept_loop(server: Socket, tcp: bool, conns: set[Any], log: Log | None) -> None:
    """Accept clients and give each its own echo greenlet."""
    number = 0
    while True:
        conn = server.accept()
        if conn is None:
            if server.rawfd() == -1:
                return
            # EMFILE and friends: the listener stays readable, so back off.
            if log is not None:
                log(f"accept failed: {_reason(server.last_error)}")
            gevent.sleep(0.05)
            continue
        number += 1
        if tcp:
            conn.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
        name = f"connection {number}"
        if log is not None:
            log(f"{name} from {conn.peeraddr() or 'a unix client'}")
        glet = gevent.spawn(_echo_stream, conn, log, name)
        conns.add(glet)
        glet.link(conns.discard)


def _echo_datagrams(sock: Socket, log: Log | None, fatal: list[str]) -> None:
    buff = Bytes(_BUFF_SIZE)
    while True:
        n, data, addr, port = sock.recvfrom(buff, _BUFF_SIZE, {"block": True})
        if n < 0 or data is None or addr is None or port is None:
            if sock.rawfd() != -1:
                fatal.append(f"recvfrom failed: {_reason(sock.last_error)}")
            return
        if log is not None:
            peer = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
            log(f"datagram of {n} bytes from {peer}")
        sock.sendto(data, addr, port, {"block": True, "timeout": _IO_TIMEOUT})


def _stop_all(glets: Sequence[Any]) -> None:
    gevent.killall(list(glets), timeout=2)


# -- echo-server ---------------------------------------------------------------


def _echo_server(prog: str, args: argparse.Namespace) -> int:
    ep: Endpoint = args.endpoint
    log: Log | None = (lambda msg: _say(prog, msg)) if args.verbose else None
    try:
        sock = _bind_udp(ep) if ep.transport == "udp" else _listen(ep, 128)
    except OSError as exc:
        hint = ""
        if ep.transport == "unix" and os.path.exists(ep.path):
            hint = " (the file exists; remove it if no server uses it)"
        _say(prog, f"{exc}{hint}")
        return EXIT_FAIL
    stop = Event()
    fatal: list[str] = []
    conns: set[Any] = set()
    with _on_signals(stop) as got:
        print(f"listening on {_bound(ep, sock)}", flush=True)
        if ep.transport == "udp":
            serving = gevent.spawn(_echo_datagrams, sock, log, fatal)
        else:
            serving = gevent.spawn(_accept_loop, sock, ep.transport == "tcp", conns, log)
        serving.link(lambda _glet: stop.set())
        try:
            stop.wait()
        finally:
            sock.close()
            _stop_all([serving, *conns])
            if ep.transport == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(ep.path)
    if serving.exception is not None:
        fatal.append(f"server failed: {serving.exception!r}")
    if fatal:
        _say(prog, fatal[0])
        return EXIT_FAIL
    _say(prog, f"stopped by {got[0]}" if got else "stopped")
    return EXIT_OK


# -- echo-client ---------------------------------------------------------------


def _messages(args: argparse.Namespace) -> Iterator[bytes]:
    if args.message is not None:
        line = (args.message + "\n").encode("utf-8", "surrogateescape")
        for _ in range(args.count or 1):
            yield line
    else:
        yield from sys.stdin.buffer


def _connect(ep: Endpoint, timeout: int) -> Socket:
    sock = socket.unix() if ep.transport == "unix" else socket.tcp({"family": ep.family})
    if ep.transport == "unix":
        result = sock.connect_unix(ep.path, {"timeout": timeout})
    else:
        result = sock.connect(ep.host, ep.port, {"timeout": timeout})
    if result != 1:
        why = "timed out" if result == 0 else _reason(sock.last_error)
        sock.close()
        raise OSError(f"cannot connect to {ep.address()}: {why}")
    return sock


def _echo_datagram(sock: Socket, ep: Endpoint, line: bytes, buff: Bytes, timeout: int) -> bytes:
    """Send one datagram and return its echo; raises ``OSError`` saying what failed."""
    if sock.sendto(line, ep.host, ep.port, {"block": True, "timeout": timeout}) < 0:
        raise OSError(f"cannot send to {ep.address()}: {_reason(sock.last_error)}")
    n, data, _addr, _port = sock.recvfrom(buff, _BUFF_SIZE, {"block": True, "timeout": timeout})
    if n <= 0 or data is None:
        raise OSError(f"no echo within {timeout} ms" if n == 0 else _reason(sock.last_error))
    return bytes(data)


def _echo_line(sock: Socket, line: bytes, buff: Bytes, timeout: int, out: Any) -> None:
    """Send one line on a stream and copy its echo to ``out``; raises ``OSError``."""
    opt = {"block": True, "timeout": timeout}
    # A line larger than the socket buffers must be read while it is still being
    # sent, or both ends wait for each other: send it from a second greenlet.
    sender = gevent.spawn(sock.send, line, opt) if len(line) > _DUPLEX_OVER else None
    try:
        if sender is None and sock.send(line, opt) < 0:
            raise OSError(f"send failed: {_reason(sock.last_error)}")
        got = 0
        while got < len(line):
            want = min(len(line) - got, _BUFF_SIZE)
            n, data = sock.recv(buff, want, {"block": True, "waitall": True, "timeout": timeout})
            if n < 0 or data is None:
                raise OSError(f"no full echo: {_reason(sock.last_error)}")
            out.write(data.view())
            got += n
        if sender is not None and sender.get() < 0:
            raise OSError(f"send failed: {_reason(sock.last_error)}")
    except TimeoutError:
        raise OSError(f"no echo within {timeout} ms") from None
    finally:
        if sender is not None:
            sender.kill()


def _echo_client(prog: str, args: argparse.Namespace) -> int:
    ep: Endpoint = args.endpoint
    timeout: int = args.timeout
    out = sys.stdout.buffer
    buff = Bytes(_BUFF_SIZE)
    try:
        sock = socket.udp({"family": ep.family}) if ep.transport == "udp" else _connect(ep, timeout)
    except OSError as exc:
        _say(prog, str(exc))
        return EXIT_FAIL
    if args.verbose:
        _say(prog, f"connected to {ep.transport} {ep.address()}")
    with sock:
        try:
            for line in _messages(args):
                if ep.transport == "udp":
                    out.write(_echo_datagram(sock, ep, line, buff, timeout))
                else:
                    _echo_line(sock, line, buff, timeout, out)
                out.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            _say(prog, str(exc))
            return EXIT_FAIL
    return EXIT_OK


# -- bench -----------------------------------------------------------------------


class _Stats:
    """What the client greenlets measured: counts and a latency histogram (µs)."""

    __slots__ = ("errors", "first_error", "hist", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.first_error: str | None = None
        self.hist: dict[int, int] = {}

    def error(self, text: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = text

    def percentile(self, p: float) -> int:
        """The nearest-rank ``p``-th percentile latency in microseconds (0 if none)."""
        total = sum(self.hist.values())
        if total == 0:
            return 0
        rank = max(1, math.ceil(p / 100.0 * total))
        seen = 0
        for us in sorted(self.hist):
            seen += self.hist[us]
            if seen >= rank:
                return us
        return max(self.hist)


def _stream_client(sock: Socket, size: int, stats: _Stats, deadline: float, stop: Event) -> None:
    payload = Bytes(size, "x")
    buff = Bytes(size)
    send_opt = {"block": True, "timeout": _IO_TIMEOUT}
    recv_opt = {"block": True, "waitall": True, "timeout": _IO_TIMEOUT}
    hist = stats.hist
    clock = time.perf_counter_ns
    end = int(deadline * 1e9)
    try:
        while not stop.is_set():
            start = clock()
            if start >= end:
                return
            if size <= _DUPLEX_OVER:
                sent = sock.send(payload, send_opt)
                n = sock.recv(buff, size, recv_opt)[0] if sent == size else 0
            else:
                # A message larger than the socket buffers must be read while it
                # is still being sent, or both ends wait for each other: send from
                # a second greenlet (one sender and one receiver may share a socket).
                sender = gevent.spawn(sock.send, payload, send_opt)
                try:
                    n = sock.recv(buff, size, recv_opt)[0]
                    sent = sender.get()
                finally:
                    sender.kill()
            if sent != size:
                stats.error(f"send: {_reason(sock.last_error)}")
                return
            if n != size:
                stats.error(f"recv: {_reason(sock.last_error)}")
                return
            us = (clock() - start) // 1000
            hist[us] = hist.get(us, 0) + 1
            stats.requests += 1
    except TimeoutError as exc:
        stats.error(str(exc))
    finally:
        sock.close()


def _udp_client(
    sock: Socket, ep: Endpoint, size: int, stats: _Stats, deadline: float, stop: Event
) -> None:
    payload = Bytes(size, "x")
    buff = Bytes(_BUFF_SIZE)
    send_opt = {"block": True, "timeout": _IO_TIMEOUT}
    recv_opt = {"block": True, "timeout": _UDP_TIMEOUT}
    hist = stats.hist
    clock = time.perf_counter_ns
    end = int(deadline * 1e9)
    host, port = ep.host, ep.port
    try:
        while not stop.is_set():
            start = clock()
            if start >= end:
                return
            if sock.sendto(payload, host, port, send_opt) != size:
                stats.error(f"sendto: {_reason(sock.last_error)}")
                return
            n, _data, _addr, _port = sock.recvfrom(buff, _BUFF_SIZE, recv_opt)
            if n != size:
                # A lost or short datagram: count it and carry on.
                stats.error(f"recvfrom: no echo within {_UDP_TIMEOUT} ms" if n == 0 else "short")
                continue
            us = (clock() - start) // 1000
            hist[us] = hist.get(us, 0) + 1
            stats.requests += 1
    finally:
        sock.close()


def _progress(stream: TextIO, started: float, duration: float, stats: _Stats) -> None:
    """Redraw a one-line progress bar on ``stream`` five times a second."""
    width = 30
    while True:
        elapsed = time.perf_counter() - started
        frac = min(1.0, elapsed / duration)
        filled = int(frac * width)
        rate = stats.requests / elapsed if elapsed > 0 else 0.0
        line = (
            f"[{'#' * filled}{'.' * (width - filled)}] {min(elapsed, duration):5.1f}/"
            f"{duration:.1f} s  {stats.requests:>10,} requests  {rate:>9,.0f}/s"
        )
        if stats.errors:
            line += f"  {stats.errors} errors"
        stream.write("\r" + line + _CLEAR_EOL)
        stream.flush()
        gevent.sleep(0.2)


def _nofile_room(clients: int, transport: str) -> str | None:
    """Raise the soft open-file limit if ``clients`` need it; a message if impossible."""
    need = clients * (1 if transport == "udp" else 2) + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or need <= soft:
        return None
    if hard == resource.RLIM_INFINITY or need <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
        return None
    return f"{clients} clients need about {need} open files; the limit is {hard} (ulimit -n)"


def _bench(prog: str, args: argparse.Namespace) -> int:
    transport: str = args.transport
    problem = _nofile_room(args.clients, transport)
    if problem is not None:
        _say(prog, problem)
        return EXIT_FAIL
    tmpdir = tempfile.mkdtemp(prefix="xsock-") if transport == "unix" else None
    try:
        if tmpdir is not None:
            ep = Endpoint("unix", path=os.path.join(tmpdir, "bench.sock"))
        else:
            ep = Endpoint(transport, "127.0.0.1", 0)
        stats = _Stats()
        stop = Event()
        with _on_signals(stop) as got:
            outcome = _bench_run(ep, args, stats, stop)
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    if isinstance(outcome, str):
        _say(prog, outcome)
        return EXIT_FAIL
    elapsed = outcome
    if got:
        _say(prog, f"interrupted by {got[0]} after {elapsed:.1f} s")
    report = _report(args, stats, elapsed)
    print(json.dumps(report) if args.json else _table(report), flush=True)
    if stats.first_error is not None:
        _say(prog, f"{stats.errors} errors; the first: {stats.first_error}")
        return EXIT_FAIL
    return EXIT_OK


def _bench_run(ep: Endpoint, args: argparse.Namespace, stats: _Stats, stop: Event) -> float | str:
    """Serve ``ep`` and run the clients; the seconds measured, or why it could not run."""
    try:
        udp = ep.transport == "udp"
        server = _bind_udp(ep) if udp else _listen(ep, min(args.clients, 4096))
    except OSError as exc:
        return str(exc)
    glets: set[Any] = set()
    fatal: list[str] = []
    with server:
        if ep.transport == "udp":
            serving = gevent.spawn(_echo_datagrams, server, None, fatal)
        else:
            serving = gevent.spawn(_accept_loop, server, ep.transport == "tcp", glets, None)
        port = 0 if ep.transport == "unix" else server.sockname()[1]
        socks: list[Socket] = []
        try:
            return _run_clients(
                Endpoint(ep.transport, ep.host, port, ep.path), args, stats, stop, socks
            )
        finally:
            for sock in socks:
                sock.close()
            server.close()
            gevent.joinall([serving, *glets], timeout=2)
            _stop_all([serving, *glets])


def _run_clients(
    ep: Endpoint, args: argparse.Namespace, stats: _Stats, stop: Event, socks: list[Socket]
) -> float | str:
    """Connect the clients, run them for the duration; the seconds it took, or an error."""
    for _ in range(args.clients):
        if ep.transport == "udp":
            socks.append(socket.udp())
            continue
        try:
            sock = _connect(ep, _IO_TIMEOUT)
        except OSError as exc:
            return str(exc)
        if ep.transport == "tcp":
            sock.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
        socks.append(sock)
    started = time.perf_counter()
    deadline = started + args.duration
    if ep.transport == "udp":
        glets = [gevent.spawn(_udp_client, s, ep, args.size, stats, deadline, stop) for s in socks]
    else:
        glets = [gevent.spawn(_stream_client, s, args.size, stats, deadline, stop) for s in socks]
    bar = None
    if not args.no_progress and sys.stderr.isatty():
        bar = gevent.spawn(_progress, sys.stderr, started, args.duration, stats)
    try:
        gevent.joinall(glets)
    finally:
        _stop_all(glets)
        if bar is not None:
            bar.kill()
            sys.stderr.write("\r" + _CLEAR_EOL)
            sys.stderr.flush()
    return time.perf_counter() - started


def _report(args: argparse.Namespace, stats: _Stats, elapsed: float) -> dict[str, Any]:
    rate = stats.requests / elapsed if elapsed > 0 else 0.0
    return {
        "transport": args.transport,
        "clients": args.clients,
        "size": args.size,
        "duration_s": round(elapsed, 3),
        "requests": stats.requests,
        "requests_per_s": round(rate, 1),
        "mb_per_s": round(rate * args.size / 1e6, 3),
        "p50_us": stats.percentile(50),
        "p99_us": stats.percentile(99),
        "p999_us": stats.percentile(99.9),
        "max_us": max(stats.hist, default=0),
        "errors": stats.errors,
    }


def _table(r: dict[str, Any]) -> str:
    title = (
        f"xsock bench: {r['transport']}, {r['clients']} clients, "
        f"{r['size']}-byte messages, {r['duration_s']:.2f} s"
    )
    rows = [
        ("requests", f"{r['requests']:,}"),
        ("requests/s", f"{r['requests_per_s']:,.0f}"),
        ("MB/s (payload)", f"{r['mb_per_s']:,.2f}"),
        ("latency p50", f"{r['p50_us']:,} us"),
        ("latency p99", f"{r['p99_us']:,} us"),
        ("latency p99.9", f"{r['p999_us']:,} us"),
        ("errors", f"{r['errors']:,}"),
    ]
    left = max(len(name) for name, _ in rows)
    right = max(len(value) for _, value in rows)
    rule = f"+-{'-' * left}-+-{'-' * right}-+"
    lines = [title, rule, f"| {'metric':<{left}} | {'value':>{right}} |", rule]
    lines += [f"| {name:<{left}} | {value:>{right}} |" for name, value in rows]
    lines.append(rule)
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, prog: str = "xsock") -> int:
    """Run the ``xsock`` command with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    demo = not args_list
    parser = _parser(prog)
    args = parser.parse_args(list(DEMO_ARGS) if demo else args_list)
    if args.command is None:
        parser.error("a command is required")
    sub_prog = f"{prog} {args.command}"
    if args.command == "echo-client" and args.count is not None and args.message is None:
        _Parser(prog=sub_prog).error("--count needs --message (without it, stdin is sent)")
    if args.command == "bench" and args.transport == "udp" and args.size > _UDP_MAX:
        _Parser(prog=sub_prog).error(f"--size must be <= {_UDP_MAX} for udp, got {args.size}")
    try:
        if demo:
            print(
                f"{prog}: no command given, so here is a 5-second demonstration "
                f"('{prog} {' '.join(DEMO_ARGS)}'; '{prog} --help' lists the commands)",
                flush=True,
            )
        if args.command == "echo-server":
            return _echo_server(sub_prog, args)
        if args.command == "echo-client":
            return _echo_client(sub_prog, args)
        return _bench(sub_prog, args)
    except KeyboardInterrupt:
        _say(sub_prog, "interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``xsock bench | head``): exit quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL
