"""``server.run``: the blocking form for programs, with one or N worker processes.

One worker: start the server here, wait for ``SIGINT`` or ``SIGTERM``, stop it
with ``stop_timeout``.

N workers: the calling process becomes a supervisor.  It binds the port first
(``SO_REUSEPORT``, bound but never listening, so port 0 is chosen once for
all and stays reserved), then forks N workers that each listen on their own
``SO_REUSEPORT`` socket on that port; the kernel spreads connections over
them.  The supervisor learns that a worker accepts from a line on a shared
pipe, and that it died from a pidfd that becomes readable; it restarts a
worker that dies unexpectedly.  On ``SIGINT``/``SIGTERM`` it sends
``SIGTERM`` to every worker, which stops its server gracefully, and returns
once all have exited (``SIGKILL`` for those still there ``stop_timeout`` plus
a grace period later, or at a second signal).  Workers ignore ``SIGINT``: a
Ctrl-C reaches the whole process group, and the supervisor alone decides.
A worker asks the kernel for ``SIGTERM`` when its supervisor dies
(``PR_SET_PDEATHSIG``), so none outlives it, even when it is killed with
``SIGKILL``.

Forking happens only in the supervisor's main loop.  A worker starts as a
copy of the supervisor, so it first kills the copies of the supervisor's
helper greenlets, cancels its signal handlers and closes its descriptors;
then it runs nothing but its server and ends with ``os._exit``, never
returning into the caller's code.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import gevent.os
import gevent.queue
import gevent.socket
from gevent.event import Event

from . import socket
from ._options import Options
from ._server import K_STREAM, StreamHandler, start
from ._socket import Socket

__all__ = ["K_RUN", "run"]

log = logging.getLogger("xsock_green.server")

K_RUN = K_STREAM | {"workers", "ready"}
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_GRACE = 5.0  # s beyond stop_timeout before stopping workers by force
_QUICK_DEATH = 1.0  # s: a worker that dies younger than this is restarted after a pause
_PR_SET_PDEATHSIG = 1


@contextlib.contextmanager
def _on_stop_signals(callback: Callable[[str], None]) -> Iterator[list[Any]]:
    """Call ``callback(name)`` on SIGINT or SIGTERM; restore the old handlers after."""
    previous = {sig: signal.getsignal(sig) for sig in _STOP_SIGNALS}
    handlers = [gevent.signal_handler(sig, callback, sig.name) for sig in _STOP_SIGNALS]
    try:
        yield handlers
    finally:
        for handler in handlers:
            handler.cancel()
        # libev puts the default action back on cancel; put Python's back.
        for sig, old in previous.items():
            if old is not None:
                signal.signal(sig, old)


def run(handler: StreamHandler, addr: str, port: int, o: Options) -> str:
    """``server.run``, given its checked options; the name of the signal that stopped it."""
    workers: int = o.get("workers", 1)
    ready: Callable[[Any], object] | None = o.get("ready")
    start_opts = {key: value for key, value in o.items() if key in K_STREAM}
    if workers == 1:
        return _run_here(handler, addr, port, start_opts, ready)
    return _Supervisor(handler, addr, port, start_opts, workers, ready).run()


def _run_here(
    handler: StreamHandler,
    addr: str,
    port: int,
    start_opts: Options,
    ready: Callable[[Any], object] | None,
) -> str:
    got: list[str] = []
    stop = Event()

    def on_signal(name: str) -> None:
        got.append(name)
        stop.set()

    with _on_stop_signals(on_signal):
        srv = start(handler, addr, port, start_opts)
        try:
            if ready is not None:
                ready(srv.sockname())
            stop.wait()
        except BaseException:
            srv.stop(0)
            raise
        srv.stop(srv.stop_timeout)
    return got[0]


# -- N workers ---------------------------------------------------------------------


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _die_with_parent(parent: int) -> bool:
    """Ask for SIGTERM when the supervisor dies; ``False`` if it is already gone."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # no prctl: the worker polls instead
        gevent.spawn(_poll_parent, parent)
    return os.getppid() == parent


def _poll_parent(parent: int) -> None:
    while os.getppid() == parent:
        gevent.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class _Worker:
    pid: int
    pidfd: int
    watcher: gevent.Greenlet
    started: float = field(default_factory=time.monotonic)


class _Supervisor:
    """The calling process while N workers serve."""

    def __init__(
        self,
        handler: StreamHandler,
        addr: str,
        port: int,
        start_opts: Options,
        count: int,
        ready: Callable[[Any], object] | None,
    ) -> None:
        self.handler = handler
        self.addr = addr
        self.start_opts = {**start_opts, "reuseport": True}
        self.count = count
        self.ready = ready
        self.stop_timeout: float = start_opts.get("stop_timeout", 5000)
        self.ready_r, self.ready_w = os.pipe()
        bind_opt = {"reuseport": True}
        if "family" in start_opts:
            bind_opt["family"] = start_opts["family"]
        try:
            # Bound, never listening: it picks and holds the port, takes no connections.
            self.reserved: Socket = socket.bind(addr, port, bind_opt)
        except BaseException:
            os.close(self.ready_r)
            os.close(self.ready_w)
            raise
        self.address = self.reserved.sockname()
        self.port: int = self.address[1]
        self.pid = os.getpid()
        self.events: gevent.queue.Queue[tuple[Any, ...]] = gevent.queue.Queue()
        self.workers: dict[int, _Worker] = {}
        self.helpers: list[gevent.Greenlet] = []
        self.signal_handlers: list[Any] = []
        self.ready_pids: set[int] = set()
        self.announced = False
        self.stopping = False
        self.signal_name = ""
        gevent.os.make_nonblocking(self.ready_r)
        self.pending = b""

    # -- the supervisor ---------------------------------------------------

    def run(self) -> str:
        try:
            with _on_stop_signals(lambda name: self.events.put(("signal", name))) as handlers:
                self.signal_handlers = handlers
                self.helpers.append(gevent.spawn(self._read_ready))
                for _ in range(self.count):
                    self._fork()
                self._loop()
        finally:
            self._cleanup()
        return self.signal_name

    def _loop(self) -> None:
        while True:
            kind, *args = self.events.get()
            if kind == "signal":
                if self.stopping:  # a second signal: no more waiting
                    self._signal_all(signal.SIGKILL)
                    continue
                self.stopping = True
                self.signal_name = args[0]
                if not self.workers:
                    return
                self._signal_all(signal.SIGTERM)
                if self.stop_timeout != -1:
                    delay = self.stop_timeout / 1000 + _GRACE
                    self.helpers.append(gevent.spawn_later(delay, self.events.put, ("late",)))
            elif kind == "late":
                self._signal_all(signal.SIGKILL)
            elif kind == "ready":
                self._maybe_announce()
            elif kind == "restart":
                if not self.stopping:
                    self._fork()
            elif kind == "exit":
                pid, code = args
                if self._exited(pid, code):
                    return

    def _exited(self, pid: int, code: int) -> bool:
        """A worker ended; ``True`` when the supervisor is done."""
        self._drain_ready()  # a ready line may still be in the pipe
        worker = self.workers.pop(pid)
        os.close(worker.pidfd)
        if self.stopping:
            return not self.workers
        if pid not in self.ready_pids and not self.announced:
            raise RuntimeError(f"worker {pid} {_describe(code)} before it accepted")
        self.ready_pids.discard(pid)
        if time.monotonic() - worker.started < _QUICK_DEATH:
            log.warning("worker %d %s; starting a new one in 1 s", pid, _describe(code))
            self.helpers.append(gevent.spawn_later(1.0, self.events.put, ("restart",)))
        else:
            log.warning("worker %d %s; starting a new one", pid, _describe(code))
            self._fork()
        return False

    def _maybe_announce(self) -> None:
        if self.announced or len(self.workers) < self.count:
            return
        if all(pid in self.ready_pids for pid in self.workers):
            self.announced = True
            if self.ready is not None:
                self.ready(self.address)

    def _signal_all(self, sig: int) -> None:
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _fork(self) -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        # Signals wait until the worker has its own handlers.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = gevent.os.fork_gevent()
        except BaseException:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise
        if pid == 0:
            self._become_worker(mask)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        pidfd = os.pidfd_open(pid)
        watcher = gevent.spawn(self._watch, pid, pidfd)
        self.workers[pid] = _Worker(pid, pidfd, watcher)

    def _watch(self, pid: int, pidfd: int) -> None:
        gevent.socket.wait_read(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
        except ChildProcessError:  # reaped by someone else (a SIGCHLD handler)
            code = -signal.SIGKILL
        self.events.put(("exit", pid, code))

    def _read_ready(self) -> None:
        while True:
            gevent.socket.wait_read(self.ready_r)
            if self._drain_ready():
                self.events.put(("ready",))

    def _drain_ready(self) -> bool:
        """Read the ready lines that are in the pipe; ``True`` if there were any."""
        got = False
        while True:
            try:
                chunk = os.read(self.ready_r, 4096)
            except BlockingIOError:
                return got
            if not chunk:
                return got
            self.pending += chunk
            *lines, self.pending = self.pending.split(b"\n")
            for line in lines:
                self.ready_pids.add(int(line))
                got = True

    def _cleanup(self) -> None:
        """Whatever happened: no worker, helper or descriptor is left."""
        gevent.killall(self.helpers + [w.watcher for w in self.workers.values()])
        if self.workers:
            self._signal_all(signal.SIGKILL)
            for worker in self.workers.values():
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(worker.pid, 0)
                os.close(worker.pidfd)
            self.workers.clear()
        os.close(self.ready_r)
        os.close(self.ready_w)
        self.reserved.close()

    # -- a worker ----------------------------------------------------------

    def _become_worker(self, mask: Any) -> None:
        """The worker's whole life; never returns."""
        code = 1
        try:
            code = self._work(mask)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)

    def _work(self, mask: Any) -> int:
        stop = Event()
        own = gevent.signal_handler(signal.SIGTERM, stop.set)
        for copied in self.signal_handlers:
            copied.cancel()
        # Ctrl-C reaches the whole process group: the supervisor alone decides.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if not _die_with_parent(self.pid):
            return 0
        gevent.killall(self.helpers + [w.watcher for w in self.workers.values()])
        for worker in self.workers.values():
            os.close(worker.pidfd)
        os.close(self.ready_r)
        self.reserved.close()
        srv = start(self.handler, self.addr, self.port, self.start_opts)
        os.write(self.ready_w, f"{os.getpid()}\n".encode())
        os.close(self.ready_w)
        try:
            stop.wait()
        finally:
            srv.stop(self.stop_timeout)
            own.cancel()
        return 0
