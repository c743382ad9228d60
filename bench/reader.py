"""``python -m bench.reader``: ``Reader.readline`` against asyncio's ``StreamReader.readline``.

A feeder process listens on a unix socket and, for each connection, writes
``--lines`` short lines (16 bytes each with the newline) as fast as the
kernel takes them, then closes.  In this process the same stream is read
line by line, alternately by

* ``xsock_green``: ``socket.connect_unix`` + ``Reader(sock).readline()``,
  called from the main greenlet;
* ``asyncio``: ``asyncio.open_unix_connection`` + ``await
  reader.readline()`` in one coroutine (the default event loop);

``--rounds`` times each, in the same run, and prints lines/s (median of the
rounds) for both and their ratio.  Every round checks that it read every
line and byte.  Not part of the test suite; the result is quoted in
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket as std_socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

LINE = b"%015d\n"  # 16 bytes: a short protocol line
BLOCK_LINES = 4096


def _block() -> bytes:
    return b"".join(LINE % i for i in range(BLOCK_LINES))


def feed(path: str, lines: int) -> None:
    """The feeder process: serve ``lines`` lines to each connection, forever."""
    srv = std_socket.socket(std_socket.AF_UNIX, std_socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    print("ready", flush=True)
    block = _block()
    while True:
        conn, _ = srv.accept()
        with conn:
            left = lines
            while left >= BLOCK_LINES:
                conn.sendall(block)
                left -= BLOCK_LINES
            if left:
                conn.sendall(block[: left * len(LINE % 0)])


def read_xsock(path: str, lines: int) -> tuple[int, int]:
    from xsock_green import Reader, socket

    sock = socket.connect_unix(path, {"timeout": 10_000})
    if sock is None:
        raise RuntimeError(f"connect_unix {path}: {socket.last_error()}")
    with sock:
        reader = Reader(sock)
        readline = reader.readline
        count = total = 0
        while True:
            n, _data = readline()
            if n < 0:
                break
            count += 1
            total += n
    return count, total


def read_asyncio(path: str, lines: int) -> tuple[int, int]:
    async def main() -> tuple[int, int]:
        reader, writer = await asyncio.open_unix_connection(path)
        readline = reader.readline
        count = total = 0
        while True:
            data = await readline()
            if not data:
                break
            count += 1
            total += len(data)
        writer.close()
        await writer.wait_closed()
        return count, total

    return asyncio.run(main())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--lines", type=int, default=2_000_000, help="lines per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds for each reader")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--feed", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feed:
        feed(args.feed, args.lines)
        return 0
    tmp = tempfile.mkdtemp(prefix="xs-bench-")
    path = os.path.join(tmp, "feed.sock")
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.reader", "--feed", path, "--lines", str(args.lines)],
        stdout=subprocess.PIPE,
    )
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            raise RuntimeError("the feeder did not start")
        readers: dict[str, Callable[[str, int], tuple[int, int]]] = {
            "xsock_green": read_xsock,
            "asyncio": read_asyncio,
        }
        rates: dict[str, list[float]] = {name: [] for name in readers}
        want = (args.lines, args.lines * len(LINE % 0))
        for _ in range(args.rounds):
            for name, read in readers.items():  # interleaved: outside load hits both
                started = time.perf_counter()
                got = read(path, args.lines)
                elapsed = time.perf_counter() - started
                if got != want:
                    raise RuntimeError(f"{name} read {got} (lines, bytes), expected {want}")
                rates[name].append(args.lines / elapsed)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(tmp)
    median = {name: statistics.median(r) for name, r in rates.items()}
    ratio = median["xsock_green"] / median["asyncio"]
    if args.json:
        print(json.dumps({"lines": args.lines, "rounds": args.rounds, "lines_per_s": median,
                          "all": rates, "ratio": round(ratio, 3)}))  # fmt: skip
        return 0
    print(
        f"readline of {args.lines:,} lines of {len(LINE % 0)} bytes over a unix socket, "
        f"median of {args.rounds} rounds (Python {sys.version.split()[0]}):"
    )
    for name, rate in median.items():
        spread = (max(rates[name]) - min(rates[name])) / rate
        print(f"  {name:<12} {rate:>12,.0f} lines/s   (spread {spread:.0%})")
    print(f"  ratio xsock_green / asyncio: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
