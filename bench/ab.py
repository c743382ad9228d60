"""Interleaved A/B: server CPU per request of a few servers, or of two builds.

    python -m bench.ab [--mode echo|udp|churn|sink|source] [--transport tcp|unix]
                       [--conns 10] [--size 1024] [--bytes N]
                       [--rounds 8] [--ms 1000] LABEL=SERVER[@PATH] ...

Each ``LABEL=SERVER`` starts ``bench/servers.py SERVER`` (pinned to the
first core, the C generator on the others, as ``python -m bench`` does);
``@PATH`` puts ``PATH`` first on the server's ``PYTHONPATH``, so the same
server can run from another checkout (a git worktree with its own build:
``python setup.py build_ext --inplace`` there).  The servers run side by
side, and each round measures every one of them in turn, so a burst of
outside load hits them alike.  Prints the median server CPU per request
(from ``/proc/<pid>/stat``) of each, its ratio to the first and the user-space
part of it (the rest is the kernel's, on the server's behalf); for the
bulk modes (``sink``: the server receives ``--bytes`` on one connection,
``source``: it sends them) CPU per MiB moved.  On this
shared machine the medians of 8 rounds move by a few per cent between
runs, where ``python -m bench``'s cells move by 20-60 %: use this to decide
between two versions of a change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.run import BENCH, ROOT, Generator, cpu_plan, pin


def _cpu_ticks(pid: int) -> tuple[int, int]:
    """The process's (user, system) CPU time so far, in clock ticks."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])  # utime, stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("servers", nargs="+", metavar="LABEL=SERVER[@PATH]")
    p.add_argument("--mode", choices=("echo", "udp", "churn", "sink", "source"), default="echo")
    p.add_argument("--transport", choices=("tcp", "unix"), default="tcp")
    p.add_argument("--bytes", type=int, default=1 << 30, help="moved per round in the bulk modes")
    p.add_argument("--conns", type=int, default=10)
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--ms", type=int, default=1000, help="measured time per round and server")
    ns = p.parse_args(argv)
    gen = Generator.find(force_python=False)
    if gen.kind != "c":
        p.error(f"needs the C generator ({gen.why})")
    server_cpus, gen_cpus, _ = cpu_plan()
    ticks = os.sysconf("SC_CLK_TCK")
    bulk = ns.mode in ("sink", "source")
    transport = "udp" if ns.mode == "udp" else ns.transport
    procs: dict[str, tuple[subprocess.Popen[str], int, list[str]]] = {}
    with tempfile.TemporaryDirectory(prefix="xsock-ab-") as tmp:
        try:
            for n, spec in enumerate(ns.servers):
                label, _, target = spec.partition("=")
                name, _, path = target.partition("@")
                env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [path, str(ROOT)])))
                argv = [sys.executable, str(BENCH / "servers.py"), name, "--transport", transport]
                argv += ["--role", ns.mode if bulk else "echo"]
                sock_path = os.path.join(tmp, f"{n}.sock")
                if transport == "unix":
                    argv += ["--path", sock_path]
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if not line:
                    raise SystemExit(f"bench.ab: {name} did not start (its error is above)")
                info = json.loads(line)
                pin(info["pid"], server_cpus)
                port = ["--port", str(info["port"])]
                where = ["--unix", sock_path] if transport == "unix" else port
                procs[label or name] = (proc, info["pid"], where)
            results: dict[str, list[float]] = {label: [] for label in procs}
            user: dict[str, list[float]] = {label: [] for label in procs}

            def load(where: list[str], ms: int, nbytes: int) -> float:
                """Run the generator once (``ms`` long, or ``nbytes`` in the bulk
                modes): the requests, connections or MiB it moved."""
                args = [*gen.argv, "--mode", ns.mode, *where]
                if bulk:
                    args += ["--bytes", str(nbytes)]
                else:
                    args += ["--conns", str(ns.conns), "--size", str(ns.size)]
                    args += ["--warmup-ms", "10", "--duration-ms", str(ms)]
                run = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
                pin(run.pid, gen_cpus)
                out, _ = run.communicate(timeout=ms / 1000 + 120)
                doc = json.loads(out)
                if bulk:
                    return float(doc.get("bytes") or 0) / (1 << 20)
                return float(doc.get("requests") or doc.get("connections") or 0)

            for _, _, where in procs.values():  # warm up
                load(where, 300, ns.bytes // 8)
            for _ in range(ns.rounds):
                for label, (_, pid, where) in procs.items():
                    u0, s0 = _cpu_ticks(pid)
                    done = load(where, ns.ms, ns.bytes)
                    u1, s1 = _cpu_ticks(pid)
                    per = 1e6 / ticks / done if done else float("nan")
                    results[label].append((u1 - u0 + s1 - s0) * per)
                    user[label].append((u1 - u0) * per)
        finally:
            for proc, _, _ in procs.values():
                proc.kill()
                proc.wait()
    unit = "MiB" if bulk else "conn" if ns.mode == "churn" else "req"
    first = None
    for label, xs in results.items():
        med = statistics.median(xs)
        first = first or med
        runs = " ".join(f"{x:.1f}" for x in xs)
        mine = statistics.median(user[label])
        print(
            f"{label:14s} {med:7.2f} µs CPU/{unit}  {med / first:5.2f}x"
            f"  (user {mine:.2f})   rounds: {runs}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
