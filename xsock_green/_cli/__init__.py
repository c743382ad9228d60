"""The ``xsock`` command: an echo server, an echo client and a loopback benchmark.

Everything here is built on the public API (``socket``, ``Bytes``) the way a
user would build it: one greenlet per connection, block-mode ``recv`` and
``send``.  ``xsock`` with no arguments runs a short ``bench`` as a
demonstration.  Usage errors print one line on stderr and exit with status 2;
runtime failures (a port in use, a refused connection) print one line and
exit with status 1; SIGINT and SIGTERM stop a server cleanly with status 0.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from xsock_green import __version__

from . import _tls
from ._bench import _bench
from ._client import _echo_client
from ._common import (
    _IO_TIMEOUT,
    _STREAM_MAX,
    _UDP_MAX,
    DEMO_ARGS,
    EXIT_FAIL,
    EXIT_OK,
    _add_endpoint,
    _Parser,
    _positive,
    _say,
)
from ._server import _echo_server
from ._server import add_arguments as add_server_arguments

__all__ = ["main"]


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
    add_server_arguments(server)

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
    client.add_argument(
        "--tls", action="store_true", help="connect with TLS (certificate and host name verified)"
    )
    client.add_argument(
        "--cafile", metavar="FILE", help="with --tls: trust the CAs in FILE instead of the system's"
    )
    client.add_argument(
        "--server-hostname",
        metavar="NAME",
        help="with --tls: the name to verify (default: the host; needed for --unix)",
    )

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
    bench.add_argument(
        "--tls", action="store_true", help="TLS on every connection (certificates made for the run)"
    )
    bench.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


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
    _tls.check_args(args, _Parser(prog=sub_prog))
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
        status = _bench(sub_prog, args)
        if demo and status == EXIT_OK:
            print(_demo_epilogue(), flush=True)
        return status
    except KeyboardInterrupt:
        _say(sub_prog, "interrupted")
        return 130
    except BrokenPipeError:
        # The reader went away (``xsock bench | head``): exit quietly.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAIL


_BENCHMARKS = Path(__file__).resolve().parents[2] / "docs" / "BENCHMARKS.md"


def _stream_server_ratio(doc: Path = _BENCHMARKS) -> str | None:
    """xsock_green's req/s over gevent StreamServer's in docs/BENCHMARKS.md (TCP 1 KiB, 10 conns).

    Read from the document, so the demonstration never quotes a stale figure;
    ``None`` when the document is not there (an installed wheel) or changed shape.
    """
    try:
        text = doc.read_text(encoding="utf-8")
    except OSError:
        return None
    section = text.partition("(`tcp-1k-c10`)")[2]
    header = next((ln for ln in section.splitlines() if ln.startswith("| server |")), "")
    row = next((ln for ln in section.splitlines() if ln.startswith("| xsock_green |")), "")
    names = [cell.strip() for cell in header.strip("|").split("|")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    if "vs gevent_stream" not in names or len(cells) != len(names):
        return None
    ratio = cells[names.index("vs gevent_stream")]
    return ratio if re.fullmatch(r"\d+(\.\d+)?x", ratio) else None


def _demo_epilogue() -> str:
    """The two lines after the demonstration: what the numbers mean, what to try next."""
    ratio = _stream_server_ratio()
    measured = (
        f"there xsock_green serves {ratio} the requests/s of gevent's StreamServer "
        "(TCP echo, 1 KiB, 10 connections)"
        if ratio is not None
        else "there xsock_green is compared with gevent's StreamServer, asyncio, uvloop and trio"
    )
    return (
        "What the numbers mean: server and clients shared this process and its CPU; "
        f"docs/BENCHMARKS.md measures servers against one C load generator, and {measured}.\n"
        "Next: run 'python examples/chat_server.py' and connect to it with "
        "'socat - TCP:127.0.0.1:PORT' from two terminals (examples/ has more to try)."
    )
