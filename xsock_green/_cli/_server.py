"""``xsock echo-server``: echo every byte (tcp, unix) or datagram (udp) back.

The server is ``xsock_green.server``: ``server.run`` for TCP (``--workers N``
processes), ``start_unix`` and ``start_udp`` otherwise; ``xsock bench`` serves
with the same handlers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from gevent.event import Event

from xsock_green import Bytes, Socket, server

from . import _tls
from ._common import (
    _BUFF_SIZE,
    _IO_TIMEOUT,
    EXIT_FAIL,
    EXIT_OK,
    Endpoint,
    Log,
    _on_signals,
    _Parser,
    _positive,
    _reason,
    _say,
)


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


# -- echo-server ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``echo-server``'s own options."""
    parser.add_argument(
        "--workers",
        type=_positive(int, 1024, "an integer"),
        default=1,
        help="serve from N processes on one port (SO_REUSEPORT; tcp only; default 1)",
    )
    parser.add_argument(
        "--stop-timeout",
        type=_non_negative_ms,
        default=0,
        metavar="MS",
        help="on SIGINT/SIGTERM, give open connections MS milliseconds to end "
        "(default %(default)s: close them at once)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="serve TLS with this PEM certificate (tcp, unix)"
    )
    parser.add_argument(
        "--tls-key", metavar="FILE", help="the certificate's PEM key (default: in --tls-cert)"
    )
    parser.add_argument(
        "--proxy-protocol",
        action="store_true",
        help="each connection starts with a PROXY protocol header (v1 or v2, as HAProxy's "
        "send-proxy sends); the client's address is taken from it (tcp, unix)",
    )


def _non_negative_ms(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected milliseconds (>= 0), got {text!r}")
    return int(text)


class _LogLines(logging.Handler):
    """The server's log records as ``PROG: message`` lines on stderr."""

    def __init__(self, prog: str) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter(f"{prog}: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), file=sys.stderr, flush=True)


@contextlib.contextmanager
def _server_log(prog: str) -> Iterator[None]:
    """Show the server's warnings and errors (backoff, handler failures) on stderr."""
    logger = logging.getLogger("xsock_green.server")
    handler, propagate = _LogLines(prog), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _stream_handler(log: Log | None) -> Callable[[Socket], None]:
    """The per-connection handler: number the connection, log it, echo it."""
    numbers = itertools.count(1)

    def handle(conn: Socket) -> None:
        name = f"connection {next(numbers)}"
        if log is not None:
            log(f"{name} from {conn.peeraddr() or 'a unix client'}")
        _echo_stream(conn, log, name)

    return handle


def _datagram_handler(log: Log | None) -> Callable[[Socket, Bytes, str, int], None]:
    def handle(sock: Socket, data: Bytes, addr: str, port: int) -> None:
        if log is not None:
            peer = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
            log(f"datagram of {data.size()} bytes from {peer}")
        sock.sendto(data, addr, port, {"block": True, "timeout": _IO_TIMEOUT})

    return handle


def _echo_server(prog: str, args: argparse.Namespace) -> int:
    ep: Endpoint = args.endpoint
    log: Log | None = (lambda msg: _say(prog, msg)) if args.verbose else None
    if args.workers > 1 and ep.transport != "tcp":
        _Parser(prog=prog).error("--workers needs --tcp")
    opt: dict[str, Any] = {
        "stop_timeout": args.stop_timeout,
        "proxy_protocol": args.proxy_protocol,
    }
    try:
        if args.tls_cert:
            opt["tls"] = _tls.server_context(args.tls_cert, args.tls_key)
        with _server_log(prog):
            if ep.transport == "tcp":
                got = _serve_tcp(ep, args.workers, _stream_handler(log), opt)
            else:
                got = _serve_here(ep, log, opt)
    except OSError as exc:
        hint = ""
        if ep.transport == "unix" and os.path.exists(ep.path):
            hint = " (the file exists; remove it if no server uses it)"
        _say(prog, f"{exc}{hint}")
        return EXIT_FAIL
    _say(prog, f"stopped by {got}")
    return EXIT_OK


def _serve_tcp(
    ep: Endpoint, workers: int, handler: Callable[[Socket], None], opt: dict[str, Any]
) -> str:
    """``server.run``: here, or in ``workers`` processes; the signal that stopped it."""

    def ready(address: Any) -> None:
        print(f"listening on {ep.transport} {ep.address(address[1])}", flush=True)

    return server.run(
        handler,
        ep.host,
        ep.port,
        {**opt, "family": ep.family, "backlog": 128, "workers": workers, "ready": ready},
    )


def _serve_here(ep: Endpoint, log: Log | None, opt: dict[str, Any]) -> str:
    """A unix or UDP server in this process, until SIGINT or SIGTERM."""
    proxy = opt["proxy_protocol"]
    if ep.transport == "udp":
        srv = server.start_udp(
            _datagram_handler(log), ep.host, ep.port, family=ep.family, proxy_protocol=proxy
        )
    else:
        tls = {"tls": opt["tls"]} if "tls" in opt else {}
        srv = server.start_unix(
            _stream_handler(log), ep.path, {"backlog": 128, "proxy_protocol": proxy, **tls}
        )
    stop = Event()
    with srv, _on_signals(stop) as got:
        where = ep.path if ep.transport == "unix" else ep.address(srv.sockname()[1])
        print(f"listening on {ep.transport} {where}", flush=True)
        stop.wait()
        srv.stop(opt["stop_timeout"])
    return got[0]
