"""``xsock bench``: an echo server and many client greenlets on loopback."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import ssl
import sys
import tempfile
import time
from typing import Any, TextIO

import gevent
from gevent.event import Event

from xsock_green import Bytes, Socket, server, socket

from ._client import _connect
from ._common import (
    _BUFF_SIZE,
    _CLEAR_EOL,
    _DUPLEX_OVER,
    _IO_TIMEOUT,
    _UDP_TIMEOUT,
    EXIT_FAIL,
    EXIT_OK,
    Endpoint,
    _on_signals,
    _reason,
    _say,
    _stop_all,
)
from ._server import _datagram_handler, _stream_handler
from ._tls import run_contexts


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
        with contextlib.ExitStack() as stack:
            tls = stack.enter_context(run_contexts()) if args.tls else None
            got = stack.enter_context(_on_signals(stop))
            outcome = _bench_run(ep, args, stats, stop, tls)
    except OSError as exc:
        _say(prog, str(exc))
        return EXIT_FAIL
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


def _bench_run(
    ep: Endpoint,
    args: argparse.Namespace,
    stats: _Stats,
    stop: Event,
    tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
) -> float | str:
    """Serve ``ep`` and run the clients; the seconds measured, or why it could not run.

    ``tls``: the (server, client) contexts of a ``--tls`` run.
    """
    opt: dict[str, Any] = {"backlog": min(args.clients, 4096)}
    if tls is not None:
        opt["tls"] = tls[0]
    try:
        if ep.transport == "udp":
            srv = server.start_udp(_datagram_handler(None), ep.host, ep.port, family=ep.family)
        elif ep.transport == "unix":
            srv = server.start_unix(_stream_handler(None), ep.path, opt)
        else:
            srv = server.start(_stream_handler(None), ep.host, ep.port, family=ep.family, **opt)
    except OSError as exc:
        return str(exc)
    with srv:
        port = 0 if ep.transport == "unix" else srv.sockname()[1]
        socks: list[Socket] = []
        try:
            return _run_clients(
                Endpoint(ep.transport, ep.host, port, ep.path),
                args,
                stats,
                stop,
                socks,
                None if tls is None else {"tls": tls[1], "server_hostname": "localhost"},
            )
        finally:
            for sock in socks:
                sock.close()


def _run_clients(
    ep: Endpoint,
    args: argparse.Namespace,
    stats: _Stats,
    stop: Event,
    socks: list[Socket],
    tls: dict[str, Any] | None = None,
) -> float | str:
    """Connect the clients, run them for the duration; the seconds it took, or an error."""
    for _ in range(args.clients):
        if ep.transport == "udp":
            socks.append(socket.udp())
            continue
        try:
            sock = _connect(ep, _IO_TIMEOUT, tls)
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
        "tls": bool(args.tls),
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
        f"xsock bench: {r['transport']}{' with TLS' if r['tls'] else ''}, {r['clients']} clients, "
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
