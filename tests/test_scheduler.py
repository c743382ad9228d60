"""``xsock_green.scheduler``: every name, groups with late members, errors, timeouts."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import gevent
import gevent.event
import gevent.util
import pytest
from conftest import Runner

from xsock_green import HubWaitError, scheduler
from xsock_green.scheduler import Coroutine, Group

pytestmark = pytest.mark.usefixtures("no_leftover_coroutines")


def test_co_start_schedules_and_returns_a_greenlet(run: Runner) -> None:
    def body() -> None:
        seen: list[tuple[int, str]] = []

        def task(a: int, b: str) -> str:
            seen.append((a, b))
            return "done"

        co = scheduler.co_start(task, 1, "x")
        assert isinstance(co, Coroutine) and isinstance(co, gevent.Greenlet)
        assert seen == []  # scheduled, not run yet
        assert co.get(timeout=5) == "done"
        assert seen == [(1, "x")]

    run(body)


def test_co_start_refuses_what_is_not_callable() -> None:
    with pytest.raises(TypeError, match="not callable"):
        scheduler.co_start(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="name must be a str"):
        scheduler.co_start_named(1, print)  # type: ignore[arg-type]


def test_co_start_named_and_co_running(run: Runner) -> None:
    def body() -> None:
        seen: list[object] = []
        co = scheduler.co_start_named("worker", lambda: seen.append(scheduler.co_running()))
        co.join(timeout=5)
        assert seen == [co]
        assert co.name == "worker"
        assert "worker" in repr(co)

    run(body)


def test_co_running_outside_coroutines() -> None:
    assert scheduler.co_running() is None
    plain = gevent.spawn(scheduler.co_running)
    assert plain.get(timeout=5) is plain
    in_hub: list[object] = ["unset"]
    done = gevent.event.Event()

    def callback() -> None:
        in_hub[0] = scheduler.co_running()
        done.set()

    gevent.get_hub().loop.run_callback(callback)
    assert done.wait(5)
    assert in_hub == [None]


def test_co_count_counts_live_coroutines_of_co_start() -> None:
    base = scheduler.co_count()
    gate = gevent.event.Event()
    cos = [scheduler.co_start(gate.wait) for _ in range(3)]
    other = gevent.spawn(gate.wait)  # not started by co_start: not counted
    assert scheduler.co_count() == base + 3
    gevent.idle()
    assert scheduler.co_count() == base + 3
    gate.set()
    gevent.joinall([*cos, other], timeout=5)
    assert scheduler.co_count() == base
    killed = scheduler.co_start(gate.wait)
    killed.kill()
    assert scheduler.co_count() == base


def test_co_sleep_sleeps_while_others_run(run: Runner) -> None:
    def body() -> None:
        ran: list[str] = []
        scheduler.co_start(ran.append, "other")
        t0 = time.monotonic()
        with gevent.util.assert_switches():
            scheduler.co_sleep(30)
        elapsed = time.monotonic() - t0
        assert 0.028 <= elapsed < 2.0
        assert ran == ["other"]

    run(body)


def test_co_sleep_zero_returns_at_once_and_bad_values_raise() -> None:
    ran: list[str] = []
    scheduler.co_start(ran.append, "other")
    scheduler.co_sleep(0)
    assert ran == []  # no switch, as in xmake
    with pytest.raises(ValueError, match="'ms'"):
        scheduler.co_sleep(-1)
    with pytest.raises(ValueError, match="'ms'"):
        scheduler.co_sleep(float("nan"))
    with pytest.raises(TypeError, match="'ms'"):
        scheduler.co_sleep("1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="'ms'"):
        scheduler.co_sleep(True)
    scheduler.co_yield()
    assert ran == ["other"]


def test_co_yield_gives_others_a_turn(run: Runner) -> None:
    def body() -> None:
        order: list[str] = []

        def other() -> None:
            order.append("other")

        scheduler.co_start(other)
        order.append("before")
        scheduler.co_yield()
        order.append("after")
        assert order == ["before", "other", "after"]

    run(body)


@pytest.mark.parametrize("name", ["co_sleep", "co_yield", "co_group_wait"])
def test_waiting_from_the_hub_raises(name: str) -> None:
    calls: dict[str, Callable[[], object]] = {
        "co_sleep": lambda: scheduler.co_sleep(5),
        "co_yield": scheduler.co_yield,
        "co_group_wait": lambda: scheduler.co_group_wait("hub-test"),
    }
    gate = gevent.event.Event()
    scheduler.co_group_begin("hub-test", lambda g: scheduler.co_start(gate.wait))
    errors: list[BaseException] = []
    done = gevent.event.Event()

    def callback() -> None:
        try:
            calls[name]()
        except BaseException as exc:
            errors.append(exc)
        done.set()

    gevent.get_hub().loop.run_callback(callback)
    assert done.wait(5)
    assert len(errors) == 1 and isinstance(errors[0], HubWaitError)
    gate.set()
    assert scheduler.co_group_wait("hub-test", 5000) is True


def test_group_waits_for_all_members(run: Runner) -> None:
    def body() -> None:
        done: list[int] = []

        def member(i: int) -> None:
            scheduler.co_sleep(5 + i)
            done.append(i)

        groups: list[Group] = []

        def scope(group: Group) -> None:
            groups.append(group)
            for i in range(5):
                scheduler.co_start(member, i)
            assert len(group) == 5
            assert all(isinstance(co, Coroutine) for co in group)

        scheduler.co_group_begin("five", scope)
        assert groups[0].name == "five" and "five" in repr(groups[0])
        assert scheduler.co_group_wait("five") is True
        assert sorted(done) == [0, 1, 2, 3, 4]
        assert len(groups[0]) == 0

    run(body)


def test_group_wait_covers_coroutines_started_after_the_wait_began(run: Runner) -> None:
    def body() -> None:
        go = gevent.event.Event()
        waiting = gevent.event.Event()
        finished: list[str] = []

        def grandchild() -> None:
            scheduler.co_yield()
            finished.append("grandchild")

        def child() -> None:
            scheduler.co_start(grandchild)
            scheduler.co_yield()
            finished.append("child")

        def member() -> None:
            go.wait()
            # The wait is under way by now; this child joins the group late.
            assert waiting.is_set()
            scheduler.co_start(child)
            finished.append("member")

        scheduler.co_group_begin("tree", lambda g: scheduler.co_start(member))

        def release() -> None:
            waiting.set()
            go.set()

        # Runs once the caller below has switched to the hub inside the wait.
        gevent.spawn(release)
        assert scheduler.co_group_wait("tree") is True
        assert sorted(finished) == ["child", "grandchild", "member"]

    run(body)


def test_only_the_scope_greenlet_adds_members() -> None:
    gate = gevent.event.Event()
    outsider: list[Coroutine] = []

    def scope(group: Group) -> None:
        scheduler.co_start(gate.wait)
        # Another greenlet starting a coroutine while the scope is open
        # does not join: only the scope's own greenlet adds members.
        gevent.spawn(lambda: outsider.append(scheduler.co_start(gate.wait))).join()
        assert len(group) == 1

    scheduler.co_group_begin("mine", scope)
    assert scheduler.co_group_wait("mine", 20) is False
    gate.set()
    assert scheduler.co_group_wait("mine", 5000) is True
    outsider[0].join(timeout=5)


def test_group_wait_timeout_then_later_success(run: Runner) -> None:
    def body() -> None:
        gate = gevent.event.Event()
        scheduler.co_group_begin("slow", lambda g: scheduler.co_start(gate.wait))
        assert scheduler.co_group_wait("slow", 0) is False
        t0 = time.monotonic()
        assert scheduler.co_group_wait("slow", 50) is False
        assert 0.045 <= time.monotonic() - t0 < 2.0
        gate.set()
        assert scheduler.co_group_wait("slow", 5000) is True
        # Forgotten once finished: waiting again returns at once.
        assert scheduler.co_group_wait("slow", 0) is True

    run(body)


def test_unknown_group_and_bad_arguments() -> None:
    assert scheduler.co_group_wait("never-begun") is True
    with pytest.raises(TypeError, match="group name"):
        scheduler.co_group_begin(1, lambda g: None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scope"):
        scheduler.co_group_begin("x", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        scheduler.co_group_wait("x", -5)


def test_group_wait_reraises_a_member_exception(run: Runner) -> None:
    class Boom(Exception):
        pass

    def body() -> None:
        gate = gevent.event.Event()

        def fails() -> None:
            raise Boom("member failed")

        def scope(group: Group) -> None:
            scheduler.co_start(fails)
            scheduler.co_start(gate.wait)

        scheduler.co_group_begin("err", scope)
        # Raised as soon as it happens, while the other member still runs.
        with pytest.raises(Boom, match="member failed"):
            scheduler.co_group_wait("err", 5000)
        assert scheduler.co_group_wait("err", 0) is False
        gate.set()
        assert scheduler.co_group_wait("err", 5000) is True

    run(body)


def test_exception_of_a_finished_group_is_raised_once() -> None:
    def fails() -> None:
        raise KeyError("late")

    scheduler.co_group_begin("once", lambda g: scheduler.co_start(fails))
    gevent.idle()
    with pytest.raises(KeyError, match="late"):
        scheduler.co_group_wait("once")
    assert scheduler.co_group_wait("once") is True


def test_killed_member_counts_as_finished() -> None:
    gate = gevent.event.Event()
    started: list[Coroutine] = []
    scheduler.co_group_begin("kill", lambda g: started.append(scheduler.co_start(gate.wait)))
    started[0].kill()
    assert scheduler.co_group_wait("kill", 5000) is True


def test_nested_groups_and_same_name_twice() -> None:
    gate = gevent.event.Event()

    def inner(group: Group) -> None:
        scheduler.co_start(gate.wait)

    def outer(group: Group) -> None:
        scheduler.co_start(gate.wait)
        scheduler.co_group_begin("inner", inner)
        with pytest.raises(ValueError, match="already open"):
            scheduler.co_group_begin("outer", lambda g: None)

    scheduler.co_group_begin("outer", outer)
    assert scheduler.co_group_wait("inner", 0) is False
    assert scheduler.co_group_wait("outer", 0) is False
    gate.set()
    assert scheduler.co_group_wait("inner", 5000) is True
    assert scheduler.co_group_wait("outer", 5000) is True


def test_begin_twice_adds_to_the_same_group() -> None:
    gates = [gevent.event.Event(), gevent.event.Event()]
    scheduler.co_group_begin("acc", lambda g: scheduler.co_start(gates[0].wait))
    scheduler.co_group_begin("acc", lambda g: scheduler.co_start(gates[1].wait))
    gates[0].set()
    assert scheduler.co_group_wait("acc", 30) is False
    gates[1].set()
    assert scheduler.co_group_wait("acc", 5000) is True


def test_scope_exception_propagates_and_closes_the_scope() -> None:
    gate = gevent.event.Event()

    def scope(group: Group) -> None:
        scheduler.co_start(gate.wait)
        raise RuntimeError("scope failed")

    with pytest.raises(RuntimeError, match="scope failed"):
        scheduler.co_group_begin("broken", scope)
    late = scheduler.co_start(gate.wait)  # outside the scope: not a member
    gate.set()
    assert scheduler.co_group_wait("broken", 5000) is True
    late.join(timeout=5)


def test_wait_from_a_member_of_the_group_raises() -> None:
    errors: list[BaseException] = []

    def member() -> None:
        try:
            scheduler.co_group_wait("self")
        except RuntimeError as exc:
            errors.append(exc)

    scheduler.co_group_begin("self", lambda g: scheduler.co_start(member))
    assert scheduler.co_group_wait("self", 5000) is True
    assert len(errors) == 1 and "waits forever" in str(errors[0])


def test_group_wait_inside_its_own_scope_keeps_later_members() -> None:
    gate = gevent.event.Event()

    def scope(group: Group) -> None:
        assert scheduler.co_group_wait("inscope") is True  # empty so far
        scheduler.co_start(gate.wait)

    scheduler.co_group_begin("inscope", scope)
    assert scheduler.co_group_wait("inscope", 0) is False
    gate.set()
    assert scheduler.co_group_wait("inscope", 5000) is True


def test_state_is_per_thread() -> None:
    gate = gevent.event.Event()
    scheduler.co_group_begin("threaded", lambda g: scheduler.co_start(gate.wait))
    seen: list[object] = []

    def other() -> None:
        try:
            seen.append(scheduler.co_group_wait("threaded", 0))
            seen.append(scheduler.co_count())
            scheduler.co_group_begin("there", lambda g: scheduler.co_start(scheduler.co_sleep, 1))
            seen.append(scheduler.co_group_wait("there", 5000))
        finally:
            gevent.get_hub().destroy(destroy_loop=True)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert seen == [True, 0, True]
    assert scheduler.co_group_wait("there", 0) is True
    assert scheduler.co_group_wait("threaded", 0) is False
    gate.set()
    assert scheduler.co_group_wait("threaded", 5000) is True


_PATCHED_PROGRAM = """
import gevent.monkey
gevent.monkey.patch_all()
from xsock_green import Bytes, poller, scheduler, socket

server = socket.bind("127.0.0.1", 0)
server.listen(10)
port = server.sockname()[1]
got = []

def serve():
    peer = server.accept()
    poller.insert(peer, socket.EV_RECV)
    assert poller.wait(5000) == [(peer, socket.EV_RECV)]
    n, data = peer.recv(Bytes(16))
    got.append(data.str())
    poller.remove(peer)
    peer.close()

def client():
    scheduler.co_start(serve)
    sock = socket.connect("127.0.0.1", port)
    sock.send("patched", {"block": True})
    sock.close()

scheduler.co_group_begin("g", lambda g: scheduler.co_start(client))
assert scheduler.co_group_wait("g", 10000) is True
assert scheduler.co_count() == 0
server.close()
print("OK", got)
"""


def test_works_in_a_monkey_patched_program() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _PATCHED_PROGRAM], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK ['patched']", proc.stdout + proc.stderr
