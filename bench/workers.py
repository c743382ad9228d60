"""``server.run`` with two worker processes against one, on this machine's cores.

    python -m bench.workers                  # 1 KiB echo, 100 connections, 5 rounds
    python -m bench.workers --short          # 3 shorter rounds
    python -m bench.workers --pin gen        # the generator pinned to the last core

Both servers are ``bench/servers.py xsock_green_workers`` (the same handler as
every xsock_green row, under ``server.run``) with ``--workers 1`` and
``--workers 2``; both face the C load generator of ``bench/run.py`` in the
same run, interleaved round by round.  The generator needs a core too, so
on a 2-core machine it competes with the workers: by default nothing is
pinned and the kernel spreads all three processes over the cores (``--pin
gen`` puts the generator on the last core and leaves the servers free).
Server CPU is the sum over the supervisor and its workers, from ``/proc``
(clock ticks), per request.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/workers.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import Generator, ServerProc, log, raise_nofile


def tree_cpu(pid: int) -> float:
    """utime + stime (seconds) of ``pid`` and its live children."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                pids.append(int(name))
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(gen: Generator, sp: ServerProc, ns: argparse.Namespace) -> dict[str, Any]:
    argv = [*gen.argv, "--mode", "echo", "--size", str(ns.size), "--conns", str(ns.conns)]
    argv += ["--warmup-ms", str(ns.warmup_ms), "--duration-ms", str(ns.duration_ms)]
    argv += ["--port", str(sp.port), "--timeout-ms", "60000"]
    gen_cpus = None
    if ns.pin == "gen":
        gen_cpus = {sorted(os.sched_getaffinity(0))[-1]}

    def setup() -> None:
        if gen_cpus is not None:
            os.sched_setaffinity(0, gen_cpus)
        raise_nofile()

    before = tree_cpu(sp.pid)
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=90, preexec_fn=setup)
    wall = time.monotonic() - started
    cpu = tree_cpu(sp.pid) - before
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": done.stderr.strip()[-200:] or f"exit {done.returncode}"}
    result: dict[str, Any] = json.loads(lines[-1])
    # The generator's whole run (warm-up and connecting included) against all server CPU.
    total = result.get("requests_total", result.get("requests", 0))
    result["tree_cpu_us_per_req"] = cpu / total * 1e6 if total else None
    result["wall_s"] = wall
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__)
    p.add_argument("--short", action="store_true")
    p.add_argument("--pin", choices=("none", "gen"), default="none")
    p.add_argument("--conns", type=int, default=100)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=0)
    ns = p.parse_args(argv)
    ns.rounds = ns.rounds or (3 if ns.short else 5)
    ns.warmup_ms, ns.duration_ms = (200, 800) if ns.short else (300, 1500)
    gen = Generator.find(False)
    log(f"workers: {ns.rounds} rounds, {ns.conns} conns x {ns.size} B, pin={ns.pin}; {gen.why}")
    workdir = Path(tempfile.mkdtemp(prefix="xsw-", dir="/tmp"))
    servers = {n: ServerProc("xsock_green_workers", "tcp", "echo", workdir) for n in (1, 2)}
    results: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    try:
        for n, sp in servers.items():
            sp.start(["--workers", str(n)])
            sp.wait_ready()
        for rnd in range(ns.rounds):
            for n, sp in servers.items():
                res = measure(gen, sp, ns)
                results[n].append(res)
                log(f"  round {rnd + 1}: {n} worker(s): {res.get('rps', res.get('error'))}")
    finally:
        for sp in servers.values():
            sp.stop()
    rows = {}
    for n, runs in results.items():
        rps = [r["rps"] for r in runs if isinstance(r.get("rps"), (int, float))]
        cpu = [r["tree_cpu_us_per_req"] for r in runs if r.get("tree_cpu_us_per_req")]
        rows[n] = {
            "rps": statistics.median(rps) if rps else 0.0,
            "spread": (max(rps) - min(rps)) / statistics.median(rps) if rps else 0.0,
            "p99_us": statistics.median(r["p99_us"] for r in runs if "p99_us" in r),
            "cpu_us": statistics.median(cpu) if cpu else 0.0,
        }
    ratio = rows[2]["rps"] / rows[1]["rps"] if rows[1]["rps"] else 0.0
    pinning = (
        "nothing pinned (servers and generator share both cores)"
        if ns.pin == "none"
        else "generator pinned to the last core, servers unpinned"
    )
    print(f"server.run, TCP echo {ns.size} B, {ns.conns} connections, {os.cpu_count()} cores, "
          f"{pinning}; median of {ns.rounds} rounds of {ns.duration_ms} ms\n")  # fmt: skip
    print("| workers | req/s | p99 µs | server CPU µs/req (all processes) | spread |")
    print("|---|---|---|---|---|")
    for n, row in rows.items():
        print(
            f"| {n} | {row['rps']:,.0f} | {row['p99_us']:,.0f} | {row['cpu_us']:.1f} "
            f"| {row['spread']:.0%} |"
        )
    print(f"\nworkers=2 / workers=1: {ratio:.2f}x req/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
