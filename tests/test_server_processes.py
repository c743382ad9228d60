"""SPEC section 8 across processes: ``server.run``, workers, and running out of descriptors.

Each server runs as a program in its own session (``start_new_session``), so
a test can find every process it made (supervisor and workers share the
session id) and kill them all at the end, whatever happened.  Clients are
plain blocking standard-library sockets of this process.  Waits are bounded
polls for a condition, never sleeps that order events.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket as std_socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_cli import Child

SCRIPTS = Path(__file__).resolve().parent / "scripts"
PY = sys.executable


class Session(Child):
    """A ``Child`` in a session of its own; ``kill`` kills every process in it."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._pending = b""
        self.lines: list[str] = []

    def kill(self) -> None:
        for pid in live(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        super().kill()


def stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name: state, ppid, pgrp, session, ..."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def live(session: int) -> list[int]:
    """The processes of ``session`` that still run (zombies are done)."""
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = stat_fields(int(name))
            if fields and fields[0] != "Z" and int(fields[3]) == session:
                pids.append(int(name))
    return sorted(pids)


def children(pid: int) -> list[int]:
    """The running children of ``pid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = stat_fields(int(name))
            if fields and fields[0] != "Z" and int(fields[1]) == pid:
                found.append(int(name))
    return sorted(found)


def until(cond: Callable[[], object], seconds: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not reached within {seconds} s")
        time.sleep(0.02)


def greeting(port: int) -> int:
    """Connect, read the serving process's pid, check one echo; the pid."""
    with std_socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")
        pid = int(reader.readline())
        sock.sendall(b"echo me")
        got = b""
        while len(got) < 7:
            chunk = sock.recv(7 - len(got))
            assert chunk, "the server ended the connection early"
            got += chunk
        assert got == b"echo me"
        reader.close()
        return pid


@pytest.fixture
def session() -> Iterator[Callable[[list[str]], Session]]:
    made: list[Session] = []

    def start(args: list[str]) -> Session:
        made.append(Session(args))
        return made[-1]

    yield start
    for each in made:
        each.kill()


def refused(port: int) -> bool:
    with std_socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def run_server(
    session: Callable[[list[str]], Session], workers: int, stop_timeout: int = 5000
) -> tuple[Session, int]:
    proc = session([PY, str(SCRIPTS / "run_server.py"), str(workers), str(stop_timeout)])
    port = int(proc.wait_for(r"^READY (\d+)$", timeout=30).group(1))
    return proc, port


# -- run in one process ---------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_stops_on_a_signal_with_status_0(
    session: Callable[[list[str]], Session], sig: signal.Signals
) -> None:
    proc, port = run_server(session, 1)
    assert greeting(port) == proc.proc.pid
    proc.proc.send_signal(sig)
    status, out, err = proc.finish()
    assert (status, out, err) == (0, f"STOPPED {sig.name}\n", "")
    assert live(proc.proc.pid) == []


def test_run_lets_a_connected_client_finish_then_closes_it(
    session: Callable[[list[str]], Session],
) -> None:
    proc, port = run_server(session, 1, stop_timeout=1500)
    with std_socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        assert int(sock.makefile("rb").readline()) == proc.proc.pid
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        # Not accepting any more, but this connection still echoes...
        until(lambda: refused(port), what="new connections refused")
        sock.sendall(b"still here")
        assert sock.recv(64) == b"still here"
        # ...until stop_timeout (1.5 s) has passed; then the server closes it.
        assert sock.recv(64) == b""
        assert time.monotonic() - started > 1.4
    status, out, _err = proc.finish()
    assert (status, out) == (0, "STOPPED SIGTERM\n")


# -- workers -------------------------------------------------------------------------


def test_two_workers_each_accept_and_sigterm_leaves_no_process(
    session: Callable[[list[str]], Session],
) -> None:
    proc, port = run_server(session, 2)
    supervisor = proc.proc.pid
    workers = children(supervisor)
    assert len(workers) == 2 and len(live(supervisor)) == 3
    pids = {greeting(port) for _ in range(40)}
    assert pids == set(workers), "connections from many clients land on both workers"
    proc.proc.send_signal(signal.SIGTERM)
    status, out, err = proc.finish()
    assert (status, out, err) == (0, "STOPPED SIGTERM\n", "")
    until(lambda: live(supervisor) == [], 5, "every process gone")


def test_ctrl_c_to_the_whole_group_stops_every_worker(
    session: Callable[[list[str]], Session],
) -> None:
    proc, port = run_server(session, 2)
    supervisor = proc.proc.pid
    assert greeting(port) in children(supervisor)
    os.killpg(supervisor, signal.SIGINT)  # what a terminal sends on Ctrl-C
    status, out, err = proc.finish()
    assert (status, out, err) == (0, "STOPPED SIGINT\n", "")
    until(lambda: live(supervisor) == [], 5, "every process gone")


def test_a_worker_killed_by_sigkill_is_replaced(
    session: Callable[[list[str]], Session],
) -> None:
    proc, port = run_server(session, 2)
    supervisor = proc.proc.pid
    first, second = children(supervisor)
    os.kill(first, signal.SIGKILL)
    now: list[int] = []

    def replaced() -> bool:
        # One snapshot per look: the list may change between two reads.
        now[:] = children(supervisor)
        return len(now) == 2 and first not in now and second in now

    until(replaced, what="a new worker beside the survivor")
    (new,) = set(now) - {second}
    # Service continues, and the new worker takes its share.
    seen: set[int] = set()
    for _ in range(200):
        seen.add(greeting(port))
        if seen == {second, new}:
            break
    assert seen == {second, new}
    proc.proc.send_signal(signal.SIGTERM)
    status, out, err = proc.finish()
    assert (status, out) == (0, "STOPPED SIGTERM\n")  # READY was printed once
    assert f"worker {first} was killed by SIGKILL; starting a new one" in err
    until(lambda: live(supervisor) == [], 5, "every process gone")


def test_workers_exit_when_the_supervisor_is_killed(
    session: Callable[[list[str]], Session],
) -> None:
    proc, port = run_server(session, 2)
    supervisor = proc.proc.pid
    workers = children(supervisor)
    assert len(workers) == 2
    greeting(port)
    os.kill(supervisor, signal.SIGKILL)
    until(lambda: live(supervisor) == [], 10, "workers exit after their supervisor")
    proc.proc.wait(5)
    assert proc.proc.returncode == -signal.SIGKILL


# -- out of descriptors ------------------------------------------------------------


def test_accept_out_of_descriptors_backs_off_without_spinning_and_recovers(
    session: Callable[[list[str]], Session],
) -> None:
    proc = session([PY, str(SCRIPTS / "server_emfile.py")])
    port = int(proc.wait_for(r"^PORT (\d+)$", timeout=30).group(1))
    for burst in (1, 2):
        if burst == 2:
            proc.wait_for(r"^AGAIN$")
        with std_socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"ping {burst}".encode())
            # Echoed only after the script measured a window of failing accepts.
            assert sock.recv(64) == f"ping {burst}".encode()
        match = proc.wait_for(rf"^BURST {burst} cpu=([\d.]+)$")
        # A busy loop would use the whole 1 s window; backing off uses almost nothing.
        assert float(match.group(1)) < 0.1, match.group(0)
    status, out, err = proc.finish(30)
    assert (status, err) == (0, ""), err
    assert re.fullmatch(r"OK warnings=2 window=1.0\n", out), out
