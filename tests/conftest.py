"""Fixtures every test module uses: the hang guard, both-ways runs, peers.

The hang guard is a hub timer armed for each test: when it fires it prints
every greenlet's stack (``gevent.util.format_run_info``) and throws
``HangError`` into the main greenlet, so a test that waits forever fails
with a picture of who was waiting on what.  pytest-timeout (``timeout`` in
pyproject.toml) is the backstop for a hub that never runs at all.
"""

from __future__ import annotations

import os
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import gevent
import gevent.event
import gevent.util
import pytest
from greenlet import getcurrent

from xsock_green import Socket, scheduler, socket

T = TypeVar("T")

HANG_LIMIT = float(os.environ.get("XSOCK_HANG_LIMIT", "60"))


class HangError(Exception):
    """The per-test hang guard fired."""


try:  # this (the main) thread's scheduler statistics: run time, run-queue wait, slices
    _SCHEDSTAT: int | None = os.open("/proc/thread-self/schedstat", os.O_RDONLY)
except OSError:
    _SCHEDSTAT = None


def own_clock() -> float:
    """Seconds of wall time, less the time this thread waited for a CPU that
    other processes had (its run-queue wait, Linux; wall time elsewhere).

    The fairness tests measure a ticker's gaps with it: a ticker that the
    library starves shows, and so does time blocked in a system call, but a
    test process that the machine's other work kept off the CPU does not.
    """
    now = time.perf_counter()
    if _SCHEDSTAT is None:
        return now
    return now - int(os.pread(_SCHEDSTAT, 64, 0).split()[1]) / 1e9


@pytest.fixture(autouse=True)
def hang_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    marker = request.node.get_closest_marker("hang_limit")
    limit = float(marker.args[0]) if marker else HANG_LIMIT
    main = getcurrent()
    timer = gevent.get_hub().loop.timer(limit)

    def fire() -> None:
        sys.stderr.write(f"hang guard: test ran past {limit:.0f} s; greenlets:\n")
        sys.stderr.write("\n".join(gevent.util.format_run_info()) + "\n")
        main.throw(HangError(f"{request.node.nodeid} hung for {limit:.0f} s"))

    timer.start(fire)
    try:
        yield
    finally:
        timer.stop()
        timer.close()


@pytest.fixture
def no_hub_traceback(capfd: pytest.CaptureFixture[str]) -> Iterator[None]:
    """Fail the test if anything (the hub's error handler) printed a traceback."""
    yield
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    assert "Traceback" not in err, err


@pytest.fixture
def no_leftover_coroutines() -> Iterator[None]:
    """Every scheduler group is finished after a test; a failed test's members are killed."""
    yield
    state = scheduler._state()
    leftover = [co for group in state.groups.values() for co in group]
    gevent.killall(leftover, timeout=5)
    state.groups.clear()
    assert not leftover, f"coroutines still running after the test: {leftover}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hang_limit(seconds): per-test hang guard limit")


def pytest_report_header() -> str:
    from xsock_green import _compile

    if _compile.compiled():
        return "xsock_green: compiled modules (mypyc)"
    why = "XSOCK_PURE_PYTHON is set" if _compile.PURE_PYTHON else "no compiled modules built"
    return f"xsock_green: pure Python ({why})"


Runner = Callable[..., Any]


@pytest.fixture(params=["main", "greenlet"])
def run(request: pytest.FixtureRequest) -> Runner:
    """Run a test body from the main greenlet or from a spawned greenlet.

    ``run(fn, *args)`` returns ``fn``'s result and re-raises its exception.
    """

    def in_main(fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)

    def in_greenlet(fn: Callable[..., T], *args: Any) -> T:
        glet = gevent.spawn(fn, *args)
        try:
            result: T = glet.get()
        finally:
            glet.kill()
        return result

    return in_main if request.param == "main" else in_greenlet


@pytest.fixture
def listener() -> Iterator[Socket]:
    """A TCP listener on 127.0.0.1 and a free port, closed after the test."""
    srv = socket.bind("127.0.0.1", 0)
    assert srv.listen(64)
    yield srv
    srv.close()


@pytest.fixture
def short_tmp() -> Iterator[str]:
    """A short temporary folder for unix socket paths (the limit is 107 bytes)."""
    path = tempfile.mkdtemp(prefix="xs-", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def spawn() -> Iterator[Callable[..., gevent.Greenlet]]:
    """``spawn(fn, *args)``: a greenlet that is killed if still alive at teardown."""
    started: list[gevent.Greenlet] = []

    def _spawn(fn: Callable[..., Any], *args: Any) -> gevent.Greenlet:
        glet = gevent.spawn(fn, *args)
        started.append(glet)
        return glet

    yield _spawn
    gevent.killall(started, timeout=5)
    assert all(g.dead for g in started), "a greenlet survived its test"


def pair(listener: Socket) -> tuple[Socket, Socket]:
    """A connected (client, server-side) TCP pair over ``listener``."""
    port = listener.sockname()[1]
    client = socket.connect("127.0.0.1", port)
    assert client is not None, "connect to own listener failed"
    server = listener.accept()
    assert server is not None, listener.last_error
    return client, server


@pytest.fixture
def tcp_pair(listener: Socket) -> Iterator[tuple[Socket, Socket]]:
    client, server = pair(listener)
    yield client, server
    client.close()
    server.close()


# -- TLS: certificates made for the run (trustme) ------------------------------


@pytest.fixture(scope="session")
def ca() -> Any:
    """A certificate authority made for this run."""
    trustme = pytest.importorskip(
        "trustme", reason="trustme is not installed (pip install trustme)"
    )
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ctx(ca: Any) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1, localhost and xsock.test."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost", "xsock.test").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def client_ctx(ca: Any) -> ssl.SSLContext:
    """A client context that trusts ``ca`` (host names verified)."""
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    return ctx


def from_hub(fn: Callable[[], Any], how: str = "run_callback") -> BaseException | Any:
    """Run ``fn`` inside a hub callback (``run_callback`` or a zero ``timer``);
    return what it returned or raised."""
    done = gevent.event.Event()
    outcome: list[Any] = []
    loop = gevent.get_hub().loop
    timer = None

    def callback() -> None:
        try:
            outcome.append(fn())
        except BaseException as exc:
            outcome.append(exc)
        done.set()

    if how == "run_callback":
        loop.run_callback(callback)
    else:
        timer = loop.timer(0.0)
        timer.start(callback)
    try:
        assert done.wait(timeout=2), "the hub callback hung"
    finally:
        if timer is not None:
            timer.close()
    return outcome[0]
