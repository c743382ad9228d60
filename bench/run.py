"""Benchmark harness: xsock_green against the servers a user would pick instead.

    python -m bench                  # everything, under 10 minutes
    python -m bench --short          # the target rows, under 1 minute
    python -m bench --only xsock_green,gevent_stream --workload tcp-1k-c10
    python -m bench --json           # one JSON document on stdout
    python -m bench --strace         # add system calls per request (strace -c)
    python -m bench --profile        # where xsock_green's server time goes (py-spy)
    python -m bench --update-docs    # rewrite docs/BENCHMARKS.md's tables and chart

Every server runs in its own process (``bench/servers.py``) pinned to one
core; the load generator (``bench/loadgen.c``, built on the fly with ``cc``;
``bench/pyloadgen.py`` when there is no compiler) runs pinned to another.
Each server faces the same generator with the same settings in the same
run; every measurement is repeated and the tables give medians and the
spread.  Progress goes to stderr; tables (or JSON) to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as ``python bench/run.py``
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report
from bench.servers import SERVERS

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BUILD = BENCH / ".build"
DOCS = ROOT / "docs"

# -- what to run -------------------------------------------------------------


@dataclass(frozen=True)
class Workload:
    """One row group of the report: a generator mode with fixed settings."""

    name: str
    title: str
    kind: str  # echo | udp | churn | sink | source | idle | syscalls
    transport: str  # tcp | unix | udp
    size: int = 1024
    conns: int = 1
    short: bool = False  # part of --short
    role: str = ""  # the servers' --role; by default from the kind

    def __post_init__(self) -> None:
        if not self.role:
            role = self.kind if self.kind in ("sink", "source") else "echo"
            object.__setattr__(self, "role", role)


def _kib(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 else f"{n} B"


def _tag(n: int) -> str:
    return f"{n // 1024}k" if n >= 1024 else str(n)


def _workloads() -> list[Workload]:
    out = []
    short_echo = {(1024, 10), (102400, 10), (1024, 1000)}
    for size in (64, 1024, 16384, 102400):
        for conns in (1, 10, 100, 1000):
            out.append(
                Workload(
                    f"tcp-{_tag(size)}-c{conns}",
                    f"TCP echo, {_kib(size)}, {conns} connection{'s' * (conns > 1)}",
                    "echo",
                    "tcp",
                    size,
                    conns,
                    (size, conns) in short_echo,
                )
            )
    out += [
        Workload("unix-1k-c10", "unix-socket echo, 1 KiB, 10 connections", "echo", "unix", 1024, 10,
                 True),
        Workload("unix-100k-c10", "unix-socket echo, 100 KiB, 10 connections", "echo", "unix",
                 102400, 10),
        Workload("udp-64-c10", "UDP ping-pong, 64 B, 10 sockets", "udp", "udp", 64, 10, True),
        Workload("udp-1k-c10", "UDP ping-pong, 1 KiB, 10 sockets", "udp", "udp", 1024, 10),
        Workload("bulk", "bulk transfer one way on one TCP connection", "sink", "tcp", 0, 1, True),
        Workload("bulk-send", "bulk transfer one way on one TCP connection, server to client",
                 "source", "tcp", 0, 1, True),
        Workload("churn-c10", "connection churn: connect, one 64 B echo, close; 10 at a time",
                 "churn", "tcp", 64, 10, True),
        Workload("idle", "idle connections: memory each, then one 64 B echo on all", "idle", "tcp",
                 64, 0, True),
        Workload("idle-64k", "idle connections holding a 64 KiB receive buffer each: memory "
                 "each, then one 64 B echo on all", "idle", "tcp", 64, 0, True, "echo64k"),
        Workload("syscalls", "system calls per request: TCP echo, 1 KiB, 10 connections "
                 "(strace -c -f over a fixed run)", "syscalls", "tcp", 1024, 10),
    ]  # fmt: skip
    return out


WORKLOADS = _workloads()


@dataclass
class Settings:
    """How long and how often: ``--short`` and the full run differ only here."""

    mode: str
    warmup_ms: int
    duration_ms: int
    repeat: int
    #: Measurements per row of the workloads behind issue 11's targets (the
    #: ``--short`` ones): their ratios decide a target, and this shared
    #: machine moves single measurements by 20-60 %.
    target_repeat: int
    bulk_bytes: int
    idle_conns: int
    idle_repeat: int
    settle_ms: int
    strace_requests: int
    profile_s: float

    @classmethod
    def of(cls, short: bool) -> Settings:
        if short:
            return cls("short", 40, 120, 3, 3, 128 << 20, 1000, 1, 50, 3000, 2.0)
        return cls("full", 50, 300, 3, 7, 1 << 30, 10000, 3, 200, 10000, 5.0)


# -- small helpers -------------------------------------------------------------


_T0 = time.monotonic()


def log(msg: str) -> None:
    sys.stderr.write(f"[{time.monotonic() - _T0:6.1f}s] {msg}\n")
    sys.stderr.flush()


def cpu_plan() -> tuple[set[int] | None, set[int] | None, str]:
    """Cores for the servers and for the generator, and a sentence about it."""
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None, None, "no CPU pinning (sched_setaffinity unavailable)"
    if len(cores) < 2:
        return None, None, f"no CPU pinning (only core {cores} available)"
    return {cores[0]}, set(cores[1:]), f"servers on core {cores[0]}, generator on {cores[1:]}"


def pin(pid: int, cpus: set[int] | None) -> None:
    """Pin every thread of ``pid``; threads it starts later inherit it."""
    if cpus is None:
        return
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        tids = [pid]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(tid, cpus)


def raise_nofile() -> None:
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def proc_fds(pid: int) -> int | None:
    """How many file descriptors ``pid`` holds."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def proc_rss_kib(pid: int) -> int | None:
    """``pid``'s VmRSS in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def proc_sleeping(pid: int) -> bool:
    """Every thread of ``pid`` is blocked (state S): it has nothing left to run."""
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] != "S":
                return False
    except (OSError, IndexError):
        return False
    return True


CLOSE_WAIT_S = 10.0  # how long a server may take to close its side of the connections


def wait_closed(pid: int, fds: int, limit: float = CLOSE_WAIT_S) -> tuple[bool, float, int]:
    """Poll until ``pid`` is back to ``fds`` descriptors and idle, at most ``limit`` s.

    Returns whether it got there, the seconds it took and the descriptors left.
    """
    t0 = time.monotonic()
    while True:
        now = proc_fds(pid)
        if now is None:  # the server is gone
            return False, time.monotonic() - t0, 0
        if now <= fds and proc_sleeping(pid):
            return True, time.monotonic() - t0, now
        if time.monotonic() - t0 > limit:
            return False, time.monotonic() - t0, now
        time.sleep(0.005)


def after_close(pid: int, fds: int, run: dict[str, Any]) -> dict[str, Any]:
    """The server's memory once every connection of an idle run is closed.

    ``kib_per_conn_after_close`` is (VmRSS now - VmRSS before the connections)
    / connections, read when the server has closed them all (its descriptor
    count is back to what it was before the run) and is idle.
    """
    ok, waited, now = wait_closed(pid, fds)
    out: dict[str, Any] = {"close_wait_s": round(waited, 3), "fds_left_after_close": now - fds}
    rss, before, opened = proc_rss_kib(pid), run.get("rss_before_kb"), run.get("opened")
    if not ok:
        out["after_close_error"] = (
            f"{now - fds} descriptors still open {waited:.0f} s after the generator closed"
        )
    elif rss is not None and isinstance(before, int) and before > 0 and opened:
        out["rss_after_close_kb"] = rss
        out["kib_per_conn_after_close"] = (rss - before) / opened
    return out


def peer_missing(name: str) -> str | None:
    """Why a server cannot run here, or ``None``."""
    for mod in SERVERS[name].needs:
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (pip install -r bench/requirements.txt)"
    return None


# -- the load generator ------------------------------------------------------------


@dataclass
class Generator:
    argv: list[str]
    kind: str  # "c" or "python"
    why: str  # how it was chosen

    @classmethod
    def find(cls, force_python: bool) -> Generator:
        py = [sys.executable, str(BENCH / "pyloadgen.py")]
        if force_python:
            return cls(py, "python", "--generator python")
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            return cls(py, "python", "no C compiler: blocking Python sockets in processes")
        src = BENCH / "loadgen.c"
        digest = hashlib.sha256(src.read_bytes() + cc.encode()).hexdigest()[:12]
        exe = BUILD / f"loadgen-{digest}"
        if not exe.exists():
            BUILD.mkdir(exist_ok=True)
            tmp = exe.with_suffix(".tmp")
            proc = subprocess.run(
                [cc, "-O2", "-Wall", "-o", str(tmp), str(src)], capture_output=True, text=True
            )
            if proc.returncode != 0:
                log(f"loadgen.c did not build with {cc}:\n{proc.stderr.strip()}")
                return cls(py, "python", f"{cc} failed: blocking Python sockets in processes")
            tmp.replace(exe)
        return cls([str(exe)], "c", f"bench/loadgen.c built with {cc} -O2")


# -- server processes --------------------------------------------------------------


@dataclass
class ServerProc:
    name: str
    transport: str
    role: str
    workdir: Path
    proc: subprocess.Popen[str] | None = None
    port: int | None = None
    path: str | None = None
    log_path: Path = field(default_factory=Path)

    def start(self, extra: list[str] | None = None) -> None:
        tag = f"{self.name}-{self.transport}-{self.role}-{time.monotonic_ns()}"
        self.log_path = self.workdir / f"{tag}.log"
        argv = [sys.executable, str(BENCH / "servers.py"), self.name]
        argv += ["--transport", self.transport, "--role", self.role]
        if self.transport == "unix":
            self.path = str(self.workdir / f"{abs(hash(tag)) % 10**8}.sock")
            argv += ["--path", self.path]
        argv += extra or []
        env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
        with open(self.log_path, "w") as err:
            self.proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=ROOT
            )

    def wait_ready(self, timeout: float = 30.0) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([proc.stdout], [], [], 0.2)
            if r:
                line = proc.stdout.readline()
                if not line:
                    break
                info = json.loads(line)
                self.port = info["port"]
                return
            if proc.poll() is not None:
                break
        raise RuntimeError(f"{self.name} ({self.transport}) did not start: {self.tail()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def target(self) -> list[str]:
        if self.transport == "unix":
            assert self.path is not None
            return ["--unix", self.path]
        return ["--port", str(self.port)]

    def tail(self) -> str:
        """The line of the server's stderr that says what went wrong."""
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        for line in reversed(lines):
            if re.search(r"\b\w*(Error|Exception|Exit)\b", line):
                return line.strip(" |")[:200]
        return lines[-1].strip()[:200] if lines else "(no output)"

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        self.proc = None
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


@contextlib.contextmanager
def servers_up(
    names: list[str], transport: str, role: str, workdir: Path, cpus: set[int] | None
) -> Iterator[dict[str, ServerProc | str]]:
    """Start the servers together (startup is the slow part), pin them, stop them."""
    procs: dict[str, ServerProc | str] = {}
    try:
        for name in names:
            sp = ServerProc(name, transport, role, workdir)
            sp.start()
            procs[name] = sp
        for name in names:
            started = procs[name]
            assert isinstance(started, ServerProc)
            try:
                started.wait_ready()
                pin(started.pid, cpus)
            except (RuntimeError, ValueError, KeyError) as exc:
                started.stop()
                procs[name] = f"server failed to start: {exc}"
        yield procs
    finally:
        for each in procs.values():
            if isinstance(each, ServerProc):
                each.stop()


# -- one measurement ------------------------------------------------------------------


class Bench:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.ns = ns
        self.settings = Settings.of(ns.short)
        if ns.repeat:
            self.settings.repeat = self.settings.idle_repeat = ns.repeat
            self.settings.target_repeat = ns.repeat
        if ns.duration_ms:
            self.settings.duration_ms = ns.duration_ms
        if ns.warmup_ms is not None:
            self.settings.warmup_ms = ns.warmup_ms
        self.gen = Generator.find(ns.generator == "python")
        self.server_cpus, self.gen_cpus, self.pinning = cpu_plan()
        self.runs: list[dict[str, Any]] = []
        self.skipped: dict[str, str] = {}
        self.notes: list[str] = []
        self.syscalls: list[dict[str, Any]] = []
        self.profile: dict[str, Any] | None = None
        self.other_load = "unknown"
        self.workdir = Path("/tmp")  # a private folder while run() runs

    # -- the generator -----------------------------------------------------

    def gen_args(self, w: Workload) -> list[str]:
        s = self.settings
        a = ["--size", str(w.size), "--conns", str(w.conns)]
        if w.kind in ("echo", "udp", "churn"):
            a += ["--warmup-ms", str(s.warmup_ms), "--duration-ms", str(s.duration_ms)]
            a += ["--mode", {"echo": "echo", "udp": "udp", "churn": "churn"}[w.kind]]
        elif w.kind in ("sink", "source"):
            a = ["--mode", w.kind, "--bytes", str(s.bulk_bytes)]
        elif w.kind == "idle":
            a = ["--mode", "idle", "--size", str(w.size), "--conns", str(s.idle_conns)]
            a += ["--settle-ms", str(s.settle_ms)]
        return a

    def generate(self, sp: ServerProc, args: list[str], limit: float) -> dict[str, Any]:
        argv = self.gen.argv + args + sp.target() + ["--server-pid", str(sp.pid)]
        argv += ["--timeout-ms", str(int(limit * 1000))]
        cpus = self.gen_cpus

        def setup() -> None:
            if cpus is not None:
                os.sched_setaffinity(0, cpus)
            raise_nofile()

        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=limit + 15, preexec_fn=setup
            )
        except subprocess.TimeoutExpired:
            return {"errors": 1, "error": f"generator ran past {limit + 15:.0f} s"}
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            why = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
            return {"errors": 1, "error": f"generator failed: {why[0]}"}
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    def measure(self, w: Workload, name: str, sp: ServerProc | str, rep: int) -> None:
        run: dict[str, Any] = {"workload": w.name, "server": name, "rep": rep}
        if isinstance(sp, str):  # it did not start
            run.update(errors=1, error=sp)
        elif not sp.alive():
            run.update(errors=1, error=f"server died: {sp.tail()}")
        else:
            s = self.settings
            limit = 60.0 + (s.warmup_ms + s.duration_ms) / 1000
            fds = proc_fds(sp.pid) if w.kind == "idle" else None
            run.update(self.generate(sp, self.gen_args(w), limit))
            if fds is not None and sp.alive():
                run.update(after_close(sp.pid, fds, run))
            if not sp.alive():
                run["error"] = f"server died: {sp.tail()}"
                run["errors"] = run.get("errors", 0) + 1
        self.runs.append(run)
        value = run.get(report.METRIC[w.kind][0])
        shown = f"{value:,.1f}" if isinstance(value, (int, float)) else run.get("error", "?")
        if w.kind == "idle":
            later = run.get("kib_per_conn_after_close")
            shown += (
                f", after close {later:,.1f}"
                if isinstance(later, (int, float))
                else f", after close: {run.get('after_close_error', '?')}"
            )
        log(f"  {w.name:<15} {name:<16} #{rep + 1}  {shown}")

    # -- the plan ------------------------------------------------------------

    def servers_for(self, w: Workload) -> list[str]:
        if w.kind == "source" and self.gen.kind != "c":
            return []  # bench/pyloadgen.py has no source mode
        return [
            n
            for n in self.server_names
            if w.transport in SERVERS[n].transports and w.role in SERVERS[n].roles
        ]

    def note_unserved(self, w: Workload) -> None:
        """Say which chosen servers a workload leaves out for want of a role."""
        if w.kind == "source" and self.gen.kind != "c":
            self.notes.append(f"{w.name}: needs the C generator (pyloadgen.py has no source mode)")
            log(f"skip {w.name}: needs the C generator")
            return
        missing = [
            n
            for n in self.server_names
            if w.transport in SERVERS[n].transports and w.role not in SERVERS[n].roles
        ]
        if missing:
            note = f"{w.name}: not run for {', '.join(missing)} (no {w.role} server role)"
            self.notes.append(note)
            log(f"  {note}")

    def run(self) -> None:
        self.server_names = []
        for name in self.ns.only or [n for n, s in SERVERS.items() if s.default]:
            why = peer_missing(name)
            if why:
                self.skipped[name] = why
                log(f"skip {name}: {why}")
            else:
                self.server_names.append(name)
        chosen = [w for w in WORKLOADS if self.selected(w)]
        if not chosen:
            raise SystemExit("no workload matches --workload " + ",".join(self.ns.workload or []))
        log(
            f"bench: {self.settings.mode} mode, {len(chosen)} workloads, servers "
            f"{', '.join(self.server_names)}; {self.pinning}; generator: {self.gen.why}"
        )
        self.chosen = chosen
        for w in chosen:
            self.note_unserved(w)
        started = time.monotonic()
        before = OtherLoad.sample()
        # Unix socket paths must stay short: a fresh folder right under /tmp.
        self.workdir = Path(tempfile.mkdtemp(prefix="xsb-", dir="/tmp"))
        try:
            groups: dict[tuple[str, str], list[Workload]] = {}
            for w in chosen:
                if w.kind in ("idle", "syscalls"):
                    continue
                groups.setdefault((w.transport, w.role), []).append(w)
            for (transport, role), ws in groups.items():
                self.run_group(transport, role, ws)
            for w in chosen:
                if w.kind == "idle":
                    self.run_idle(w)
                elif w.kind == "syscalls":
                    self.run_syscalls(w)
            if self.ns.profile:
                self.run_profile()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        self.elapsed = time.monotonic() - started
        self.other_load = OtherLoad.sample().since(before)
        log(f"bench: done in {self.elapsed:.0f} s; other processes used {self.other_load}")

    def selected(self, w: Workload) -> bool:
        pats = self.ns.workload
        if pats:
            # A workload's exact name means that one only: "bulk" is not "bulk-send".
            names = {x.name for x in WORKLOADS}
            return any(
                w.name == p or (p not in names and (w.name.startswith(p + "-") or p == w.kind))
                for p in pats
            )
        if w.kind == "syscalls":  # run_syscalls says so when strace is missing
            return bool(self.ns.strace) or not self.ns.short
        return w.short or not self.ns.short

    def run_group(self, transport: str, role: str, ws: list[Workload]) -> None:
        names = sorted({n for w in ws for n in self.servers_for(w)}, key=self.order)
        if not names:
            return
        log(f"{transport} {role} servers: starting {len(names)}")
        with servers_up(names, transport, role, self.workdir, self.server_cpus) as procs:
            self.note_failures(procs)
            for w in ws:
                repeat = self.settings.target_repeat if w.short else self.settings.repeat
                for rep in range(repeat):
                    # Interleave the servers so slow drift hits all alike.
                    for name in self.servers_for(w):
                        self.measure(w, name, procs[name], rep)

    def order(self, name: str) -> int:
        return list(SERVERS).index(name)

    def note_failures(self, procs: dict[str, ServerProc | str]) -> None:
        for name, sp in procs.items():
            note = f"{name}: {sp}"
            if isinstance(sp, str) and note not in self.notes:
                self.notes.append(note)
                log(f"  {note}")

    def run_idle(self, w: Workload) -> None:
        names = self.servers_for(w)
        if not names:
            return
        for rep in range(min(self.settings.repeat, self.settings.idle_repeat)):
            # A fresh server per measurement: memory is read as a difference
            # and must not reuse what an earlier run freed.
            log(f"{w.name}, round {rep + 1}: starting {len(names)} {w.role} servers")
            with servers_up(names, "tcp", w.role, self.workdir, self.server_cpus) as procs:
                self.note_failures(procs)
                for name in names:
                    self.measure(w, name, procs[name], rep)
                    sp = procs[name]
                    if isinstance(sp, ServerProc):
                        sp.stop()  # give its memory back before the next one

    # -- system calls ------------------------------------------------------------

    def run_syscalls(self, w: Workload) -> None:
        strace = shutil.which("strace")
        if strace is None:
            self.notes.append("syscalls: strace is not installed (apt-get install strace)")
            log("skip syscalls: strace is not installed")
            return
        names = self.servers_for(w)
        log(f"system calls per request: {len(names)} servers under strace -c -f")
        with servers_up(names, "tcp", "echo", self.workdir, self.server_cpus) as procs:
            self.note_failures(procs)
            for name in names:
                sp = procs[name]
                if isinstance(sp, ServerProc):
                    self.syscalls.append(self.strace_one(strace, w, sp))

    def strace_one(self, strace: str, w: Workload, sp: ServerProc) -> dict[str, Any]:
        n = self.settings.strace_requests
        out: dict[str, Any] = {"workload": w.name, "server": sp.name, "requests": n}
        # Warm the server up untraced, so imports and first-use paths do not count.
        warm = ["--mode", "echo", "--size", str(w.size), "--conns", str(w.conns)]
        self.generate(sp, [*warm, "--warmup-ms", "0", "--duration-ms", "100"], 30)
        summary = self.workdir / f"strace-{sp.name}.txt"
        tracer = subprocess.Popen(
            [strace, "-c", "-f", "-p", str(sp.pid), "-o", str(summary)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert tracer.stderr is not None
        # strace says "Process N attached [with T threads]" once it holds them all.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r, _, _ = select.select([tracer.stderr], [], [], 0.5)
            if r:
                line = tracer.stderr.readline()
                if not line or "attached" in line:
                    break
        try:
            res = self.generate(sp, [*warm, "--warmup-ms", "0", "--requests", str(n)], 120)
        finally:
            tracer.send_signal(signal.SIGINT)
            try:
                tracer.wait(10)
            except subprocess.TimeoutExpired:
                tracer.kill()
                tracer.wait()
            tracer.stderr.close()
        # Every request of the traced run counts, the warm-up included: strace saw them all.
        done = res.get("requests_total", res.get("requests", 0))
        calls = parse_strace(summary.read_text() if summary.exists() else "")
        total = sum(calls.values())
        out.update(requests=done, errors=res.get("errors", 0), total_calls=total)
        if done and total:
            out["syscalls_per_req"] = total / done
            out["per_req"] = {k: v / done for k, v in sorted(calls.items(), key=lambda kv: -kv[1])}
        else:
            out["error"] = res.get("error") or "strace counted nothing"
        log(f"  syscalls        {sp.name:<16} {out.get('syscalls_per_req', 0):.2f} per request")
        return out

    # -- profile -------------------------------------------------------------

    def run_profile(self) -> None:
        name = self.ns.profile
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not os.path.exists(pyspy):
            self.notes.append("profile: py-spy is not installed (pip install py-spy)")
            log("skip profile: py-spy is not installed")
            return
        secs = self.settings.profile_s
        log(f"profile: py-spy on {name}, TCP echo 1 KiB, 10 connections, {secs:.0f} s")
        raw = self.workdir / "profile.txt"
        with servers_up([name], "tcp", "echo", self.workdir, self.server_cpus) as procs:
            sp = procs[name]
            if isinstance(sp, str):
                self.notes.append(f"profile: {sp}")
                return
            spy = subprocess.Popen(
                [pyspy, "record", "--pid", str(sp.pid), "--rate", "1000", "--format", "raw",
                 "--output", str(raw), "--duration", str(int(secs)), "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            args = ["--mode", "echo", "--size", "1024", "--conns", "10", "--warmup-ms", "0"]
            args += ["--duration-ms", str(int(secs * 1000) + 1500)]
            res = self.generate(sp, args, secs + 30)
            try:
                _, err = spy.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
        if not raw.exists():
            self.notes.append(f"profile: py-spy wrote nothing: {err.strip()[-300:]}")
            return
        self.profile = report.fold_profile(raw.read_text(), name)
        self.profile["rps"] = res.get("rps")


@dataclass
class OtherLoad:
    """CPU time the whole machine spent in processes other than this run's.

    The busy time in ``/proc/stat`` (user, nice, system, and time the
    hypervisor stole; not interrupts, where loopback traffic is accounted)
    minus what this process and its children used: a direct measure of how
    much the run shared the CPUs.
    """

    busy_s: float
    ours_s: float
    wall_s: float

    @classmethod
    def sample(cls) -> OtherLoad:
        import resource

        busy = 0.0
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
            ticks = [int(x) for x in fields[1:4]] + [int(fields[8]) if len(fields) > 8 else 0]
            busy = sum(ticks) / os.sysconf("SC_CLK_TCK")  # user nice system, + steal
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        ours = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
        return cls(busy, ours, time.monotonic())

    def since(self, start: OtherLoad) -> str:
        wall = self.wall_s - start.wall_s
        other = (self.busy_s - start.busy_s) - (self.ours_s - start.ours_s)
        if wall <= 0 or not self.busy_s:
            return "unknown"
        share = max(0.0, other) / (wall * (os.cpu_count() or 1)) * 100
        return f"{share:.0f}% of the machine's CPU time"


def parse_strace(text: str) -> dict[str, int]:
    """Calls per system call from ``strace -c`` output."""
    calls: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 5 or not re.match(r"^\d+\.\d+$", parts[0]) or parts[-1] == "total":
            continue
        # % time, seconds, usecs/call, calls, [errors], syscall
        try:
            calls[parts[-1]] = calls.get(parts[-1], 0) + int(parts[3])
        except ValueError:
            continue
    return calls


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "kernel": platform.release(),
        "cores": os.cpu_count(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    versions = {}
    for mod in ("xsock_green", "gevent", "uvloop", "trio"):
        with contextlib.suppress(Exception):
            from importlib.metadata import version

            versions[mod] = version(mod)
    info["versions"] = versions
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Echo-server benchmark: xsock_green against gevent, asyncio, uvloop, "
        "threads and trio, all facing one C load generator.",
    )
    p.add_argument("--short", action="store_true", help="the target rows only, under a minute")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    p.add_argument("--only", type=lambda s: s.split(","), help="servers, comma-separated")
    p.add_argument(
        "--workload",
        type=lambda s: s.split(","),
        help="workload names (exact: bulk is not bulk-send), prefixes (tcp, tcp-1k) or kinds "
        "(echo, udp, churn, sink, source, idle, syscalls), comma-separated",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="measurements per row (default 3; 7 for the target rows of a full run)",
    )
    p.add_argument("--duration-ms", type=int, default=0, help="measured time per run")
    p.add_argument("--warmup-ms", type=int, default=None, help="warm-up time per run")
    p.add_argument("--strace", action="store_true", help="count system calls (needs strace)")
    p.add_argument(
        "--profile",
        nargs="?",
        const="xsock_green",
        default=None,
        metavar="SERVER",
        help="sample one server with py-spy during a 1 KiB echo run (default xsock_green)",
    )
    p.add_argument("--generator", choices=("c", "python"), default="c")
    p.add_argument("--save", type=Path, help="also write the JSON document here")
    p.add_argument("--load", type=Path, help="render a saved JSON document; run nothing")
    p.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the results in docs/BENCHMARKS.md and docs/bench.png",
    )
    p.add_argument("--list", action="store_true", help="list servers and workloads, then exit")
    ns = p.parse_args(argv)
    for name in [*(ns.only or []), *([ns.profile] if ns.profile else [])]:
        if name not in SERVERS:
            p.error(f"unknown server {name!r}; choose from {', '.join(SERVERS)}")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if ns.list:
        for s in SERVERS.values():
            print(f"{s.name:<16} {'/'.join(sorted(s.transports)):<13} {s.about}")
        print()
        for w in WORKLOADS:
            print(f"{w.name:<15} {'short ' if w.short else '      '}{w.title}")
        return 0
    if ns.load:
        doc = json.loads(ns.load.read_text())
    else:
        bench = Bench(ns)
        bench.run()
        doc = {
            "meta": {
                "mode": bench.settings.mode,
                "settings": asdict(bench.settings),
                "generator": bench.gen.kind,
                "generator_how": bench.gen.why,
                "pinning": bench.pinning,
                "other_load": bench.other_load,
                "elapsed_s": round(bench.elapsed, 1),
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
                "machine": machine(),
            },
            "workloads": [asdict(w) for w in bench.chosen],
            "servers": [
                {"name": s.name, "about": s.about, "skipped": bench.skipped.get(s.name)}
                for s in SERVERS.values()
                if (s.name in ns.only if ns.only else s.default)
            ],
            "notes": bench.notes,
            "runs": bench.runs,
            "syscalls": bench.syscalls,
            "profile": bench.profile,
        }
    doc["summary"] = report.summarize(doc)
    if ns.save:
        ns.save.write_text(json.dumps(doc, indent=1) + "\n")
    if ns.json:
        print(json.dumps(doc, indent=1))
    else:
        print(report.markdown(doc))
    if ns.update_docs:
        report.update_docs(doc, DOCS / "BENCHMARKS.md", DOCS / "bench.png")
        log(f"wrote {DOCS / 'BENCHMARKS.md'} and {DOCS / 'bench.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
