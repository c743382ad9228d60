"""The fallback load generator, for machines without a C compiler.

Same command line and the same one JSON line as ``loadgen.c``, built from
plain blocking sockets: the connections are spread over several processes,
one thread per connection.  It is much slower than the C generator, so with
it the generator rather than the server may set the pace; the report says
which generator ran.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import socket
import sys
import threading
import time
from typing import Any

HDR = 8  # bytes of sequence number at the start of every request
MAX_SUMMED = 64


def pattern(size: int) -> bytes:
    return bytes((i * 31 + 7) & 0xFF for i in range(size))


def request(base: bytes, seq: int) -> bytes:
    n = min(HDR, len(base))
    return seq.to_bytes(8, "little")[:n] + base[n:]


# -- the server, seen from /proc ---------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def status_field(pid: int, name: str) -> int:
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(name):
            return int(line.split()[1])
    return -1


def server_cpu(pid: int) -> tuple[float, float, int, int]:
    """(ticks seconds, live threads' schedstat seconds or -1, tid sum, threads)."""
    if pid <= 0:
        return 0.0, -1.0, 0, 0
    stat = _read(f"/proc/{pid}/stat")
    fields = stat[stat.rfind(")") + 2 :].split()
    ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0
    threads = status_field(pid, "Threads:")
    if not 1 <= threads <= MAX_SUMMED:
        return ticks, -1.0, 0, threads
    total, tids = 0.0, 0
    try:
        names = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return ticks, -1.0, 0, threads
    for tid in names:
        text = _read(f"/proc/{pid}/task/{tid}/schedstat")
        if text:
            total += int(text.split()[0]) / 1e9
            tids += int(tid)
    return ticks, total, tids, threads


def cpu_delta(a: tuple[float, float, int, int], b: tuple[float, float, int, int]) -> float:
    ticks = b[0] - a[0]
    if a[1] >= 0 and b[1] >= 0 and a[2:] == b[2:]:
        tasks = b[1] - a[1]
        if ticks - tasks < 3 / os.sysconf("SC_CLK_TCK"):
            return tasks
    return ticks


# -- connections ----------------------------------------------------------------


def connect(ns: argparse.Namespace, kind: int = socket.SOCK_STREAM) -> socket.socket:
    if ns.unix:
        s = socket.socket(socket.AF_UNIX, kind)
        s.connect(ns.unix)
        return s
    s = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.connect((ns.host, ns.port))
    return s


def recv_exact(s: socket.socket, n: int, buf: bytearray) -> bytes:
    view = memoryview(buf)[:n]
    got = 0
    while got < n:
        k = s.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("end of stream")
        got += k
    return bytes(view)


# -- timed modes: echo, udp, churn, in worker processes ----------------------------


def worker(
    ns: argparse.Namespace,
    count: int,
    quota: int,
    ready: Any,
    go: Any,
    times: Any,
    results: Any,
) -> None:
    base = pattern(ns.size)
    socks: list[socket.socket | None] = []
    errors = 0
    if ns.mode != "churn":
        kind = socket.SOCK_DGRAM if ns.mode == "udp" else socket.SOCK_STREAM
        for _ in range(count):
            try:
                s = connect(ns, kind)
                if kind == socket.SOCK_DGRAM:
                    s.settimeout(0.1)
                socks.append(s)
            except OSError:
                errors += 1
                socks.append(None)
    ready.put(errors)
    go.wait()
    t_warm, t_end = times[0], times[1]
    lats: list[int] = []
    done = [0]
    errs = [errors]
    lost = [0]
    lock = threading.Lock()

    def one(i: int) -> None:
        buf = bytearray(max(ns.size, 1))
        seq = i << 40
        n = 0
        s = socks[i] if ns.mode != "churn" else None
        mine: list[int] = []
        while True:
            now = time.monotonic()
            if now >= t_end or (quota and n >= quota):
                break
            seq += 1
            msg = request(base, seq)
            t0 = time.perf_counter_ns()
            try:
                if ns.mode == "churn":
                    s = connect(ns)
                if s is None:
                    break
                s.sendall(msg)
                if ns.mode == "udp":
                    try:
                        data = s.recv(65536)
                        while data[:HDR] != msg[:HDR]:
                            data = s.recv(65536)
                    except TimeoutError:
                        with lock:
                            lost[0] += 1
                        continue
                else:
                    data = recv_exact(s, ns.size, buf)
                if data != msg:
                    raise ConnectionError("echo differs")
                if ns.mode == "churn":
                    s.close()
                    s = None
            except OSError:
                with lock:
                    errs[0] += 1
                if ns.mode != "churn":
                    break
                continue
            t1 = time.perf_counter_ns()
            if quota or t_warm <= time.monotonic() < t_end:
                mine.append(t1 - t0)
            n += 1
        with lock:
            lats.extend(mine)
            done[0] += len(mine)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sk in socks:
        if sk is not None:
            sk.close()
    results.put((done[0], errs[0], lost[0], lats))


def run_timed(ns: argparse.Namespace) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    procs_n = max(1, min(ns.conns, (os.cpu_count() or 2) * 2, 8))
    shares = [ns.conns // procs_n + (i < ns.conns % procs_n) for i in range(procs_n)]
    quota_total = ns.requests
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    times = ctx.Array("d", 2)
    procs = []
    for share in shares:
        quota = -(-quota_total // ns.conns) if quota_total else 0
        p = ctx.Process(target=worker, args=(ns, share, quota, ready, go, times, results))
        p.start()
        procs.append(p)
    setup_errors = sum(ready.get(timeout=ns.timeout_ms / 1000) for _ in procs)
    now = time.monotonic()
    t_warm = now + (0 if quota_total else ns.warmup_ms / 1000)
    t_end = t_warm + (ns.timeout_ms / 1000 if quota_total else ns.duration_ms / 1000)
    times[0], times[1] = t_warm, t_end
    go.set()
    time.sleep(max(0.0, t_warm - time.monotonic()))
    c0 = server_cpu(ns.server_pid)
    w0 = time.monotonic()
    got = [results.get(timeout=ns.timeout_ms / 1000 + 30) for _ in procs] if quota_total else []
    if not quota_total:
        time.sleep(max(0.0, t_end - time.monotonic()))
    w1 = time.monotonic()
    c1 = server_cpu(ns.server_pid)
    if not quota_total:
        got = [results.get(timeout=ns.timeout_ms / 1000 + 30) for _ in procs]
    for p in procs:
        p.join()
    done = sum(g[0] for g in got)
    errors = sum(g[1] for g in got) + setup_errors
    lats = sorted(x for g in got for x in g[3])
    el = w1 - w0
    cpu = cpu_delta(c0, c1)
    out: dict[str, Any] = {"requests": done, "elapsed_s": el, "rps": done / el if el else 0.0}
    out["requests_total"] = done
    if ns.mode == "churn":
        out["conn_s"] = out["rps"]
    else:
        out["mb_s"] = done * ns.size / el / 1e6 if el else 0.0
    out.update(percentiles(lats))
    out.update(errors=errors, lost=sum(g[2] for g in got), server_cpu_s=cpu)
    out["server_cpu_us_per_req"] = cpu * 1e6 / done if done else 0.0
    out["server_threads"] = c1[3]
    return out


def percentiles(lats: list[int]) -> dict[str, float]:
    if not lats:
        return {}

    def pct(p: float) -> float:
        return lats[min(len(lats) - 1, max(0, int(p * len(lats) + 0.999999) - 1))] / 1000

    return {
        "p50_us": pct(0.5),
        "p90_us": pct(0.9),
        "p99_us": pct(0.99),
        "p999_us": pct(0.999),
        "max_us": lats[-1] / 1000,
    }


# -- single-process modes: sink and idle --------------------------------------------


def run_sink(ns: argparse.Namespace) -> dict[str, Any]:
    s = connect(ns)
    chunk = pattern(1 << 18)
    c0 = server_cpu(ns.server_pid)
    t0 = time.monotonic()
    sent = 0
    while sent < ns.bytes:
        want = min(len(chunk), ns.bytes - sent)
        s.sendall(chunk[:want])
        sent += want
    s.shutdown(socket.SHUT_WR)
    extra = s.recv(1)
    t1 = time.monotonic()
    c1 = server_cpu(ns.server_pid)
    s.close()
    el = t1 - t0
    cpu = cpu_delta(c0, c1)
    return {
        "bytes": sent,
        "elapsed_s": el,
        "mb_s": sent / el / 1e6,
        "requests": 1,
        "errors": 1 if extra else 0,
        "server_cpu_s": cpu,
        "server_cpu_us_per_mb": cpu * 1e6 / (sent / 1e6),
    }


def run_idle(ns: argparse.Namespace) -> dict[str, Any]:
    base = pattern(ns.size)
    buf = bytearray(ns.size)
    rss0 = status_field(ns.server_pid, "VmRSS:")
    socks: list[socket.socket] = []
    errors = 0
    t0 = time.monotonic()
    for first in range(0, ns.conns, ns.batch):
        batch: list[socket.socket] = []
        for _ in range(min(ns.batch, ns.conns - first)):
            try:
                batch.append(connect(ns))
            except OSError:
                errors += 1
        for s in batch:
            s.sendall(base)
        for s in batch:
            try:
                recv_exact(s, ns.size, buf)
                socks.append(s)
            except OSError:
                errors += 1
                s.close()
    t1 = time.monotonic()
    time.sleep(ns.settle_ms / 1000)
    rss1 = status_field(ns.server_pid, "VmRSS:")
    c0 = server_cpu(ns.server_pid)
    t2 = time.perf_counter_ns()
    for s in socks:
        s.sendall(base)
    lats = []
    for s in socks:
        recv_exact(s, ns.size, buf)
        lats.append(time.perf_counter_ns() - t2)
    t3 = time.perf_counter_ns()
    c1 = server_cpu(ns.server_pid)
    rss2 = status_field(ns.server_pid, "VmRSS:")
    for s in socks:
        s.close()
    cpu = cpu_delta(c0, c1)
    out: dict[str, Any] = {
        "requests": len(socks),
        "opened": len(socks),
        "open_s": t1 - t0,
        "echo_all_ms": (t3 - t2) / 1e6,
        "rss_before_kb": rss0,
        "rss_after_kb": rss1,
        "rss_after_echo_kb": rss2,
        "kib_per_conn": (rss1 - rss0) / len(socks) if socks else 0.0,
        "errors": errors,
        "server_cpu_s": cpu,
        "server_cpu_us_per_req": cpu * 1e6 / len(socks) if socks else 0.0,
    }
    out.update(percentiles(sorted(lats)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="fallback load generator (blocking sockets)")
    p.add_argument("--mode", choices=("echo", "udp", "churn", "sink", "idle"), default="echo")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--unix", default="")
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--warmup-ms", type=int, default=200)
    p.add_argument("--duration-ms", type=int, default=1000)
    p.add_argument("--requests", type=int, default=0)
    p.add_argument("--bytes", type=int, default=64 << 20)
    p.add_argument("--server-pid", type=int, default=0)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--timeout-ms", type=int, default=120000)
    p.add_argument("--settle-ms", type=int, default=200)
    ns = p.parse_args(argv)
    if not ns.port and not ns.unix:
        p.error("give --port or --unix")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    head = {
        "generator": "python",
        "mode": ns.mode,
        "transport": "udp" if ns.mode == "udp" else "unix" if ns.unix else "tcp",
        "conns": ns.conns,
        "size": ns.size,
    }
    try:
        if ns.mode == "sink":
            body = run_sink(ns)
        elif ns.mode == "idle":
            body = run_idle(ns)
        else:
            body = run_timed(ns)
    except OSError as exc:
        body = {"requests": 0, "errors": 1, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps({**head, **body}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
