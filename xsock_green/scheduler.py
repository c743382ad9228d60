"""xmake's ``core.base.scheduler`` names, with greenlets as the coroutines.

A ported socket script keeps its shape::

    from xsock_green import scheduler

    def main():
        scheduler.co_group_begin("clients", lambda group: [
            scheduler.co_start(session, "127.0.0.1", port) for _ in range(4)
        ])
        scheduler.co_group_wait("clients")

There is no ``runloop``: gevent's hub is always running.  Decisions where
xmake's module differs or leaves room:

* A coroutine is a ``Coroutine``, a ``gevent.Greenlet`` subclass, so it can be
  joined, killed or asked for its value.  ``co_start`` schedules it, as
  ``gevent.spawn`` does: it starts when the caller next waits or yields, not
  at once (xmake runs it up to its first wait before returning).
* Every name works from the main greenlet too: ``co_sleep``, ``co_yield`` and
  ``co_group_wait`` block there while coroutines run (xmake refuses them
  outside a coroutine).  From the hub greenlet they raise ``HubWaitError``.
* ``co_running()`` is the current ``gevent.Greenlet`` (started by
  ``co_start`` or by ``gevent.spawn``), or ``None`` in the main greenlet or
  the hub.  ``co_count()`` counts the live coroutines ``co_start`` made.
* ``co_sleep(0)`` returns at once, as in xmake; ``co_yield()`` gives every
  other ready greenlet one turn (xmake sleeps 1 ms instead).
* Groups: a coroutine started while a ``co_group_begin`` scope is open in the
  same greenlet joins that group (and every enclosing one).  A coroutine
  started by a member joins the member's groups, at any time, even while
  ``co_group_wait`` is already waiting, so the wait covers the whole tree.
  Coroutines started by other greenlets during the scope do not join.
  Beginning an existing group adds to it; opening one name twice in nested
  scopes raises ``ValueError``.
* ``co_group_wait(name, timeout=-1)`` (milliseconds, ``0`` polls) returns
  ``True`` once every member has finished (a killed member counts as
  finished) and forgets the group, ``False`` on timeout.  A name that has no
  group returns ``True``, as in xmake.  If a member raised, the wait raises
  that exception as soon as it happens, while the other members run on; gevent
  also prints every such error as it happens, as for any greenlet.  Waiting
  on a group from one of its own members raises ``RuntimeError``.
* State is per thread (per gevent hub): a group name in one thread is
  unknown to another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gevent
from gevent.event import Event
from gevent.monkey import get_original

from . import _hub
from ._errors import HubWaitError
from ._options import check_timeout

__all__ = [
    "Coroutine",
    "Group",
    "co_count",
    "co_group_begin",
    "co_group_wait",
    "co_running",
    "co_sleep",
    "co_start",
    "co_start_named",
    "co_yield",
]


class Coroutine(gevent.Greenlet):  # type: ignore[misc]
    """A coroutine of ``co_start``: a ``gevent.Greenlet`` that knows its groups."""

    __slots__ = ("_groups",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._groups: tuple[Group, ...] = ()


class Group:
    """The coroutines of one ``co_group_begin`` name: ``len()`` and iteration
    give the members still running."""

    __slots__ = ("_errors", "_event", "_live", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._live: set[Coroutine] = set()
        self._errors: list[BaseException] = []
        self._event = Event()

    def __len__(self) -> int:
        return len(self._live)

    def __iter__(self) -> Iterator[Coroutine]:
        return iter(list(self._live))

    def __repr__(self) -> str:
        return f"<co_group {self.name!r}: {len(self._live)} running>"

    def _notify(self) -> None:
        # A fresh event per change: a waiter never misses one, and two
        # waiters never race to clear the same flag.
        event = self._event
        self._event = Event()
        event.set()


class _State:
    """One thread's coroutines, groups and open scopes."""

    __slots__ = ("groups", "hub", "live", "scopes")

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.live: set[Coroutine] = set()
        self.groups: dict[str, Group] = {}
        self.scopes: dict[Any, list[Group]] = {}

    def finished(self, co: Coroutine) -> None:
        """A hub callback: ``co`` is dead; tell its groups."""
        self.live.discard(co)
        exc = co.exception
        for group in co._groups:
            group._live.discard(co)
            if exc is not None:
                group._errors.append(exc)
            group._notify()


# A true thread-local even under monkey-patching (gevent replaces
# ``_thread._local`` with a greenlet-local one).
_local: Any = get_original("_thread", "_local")()


def _state() -> _State:
    hub = gevent.get_hub()
    state: _State | None = getattr(_local, "state", None)
    if state is None or state.hub is not hub:
        state = _local.state = _State(hub)
    return state


def _may_wait(what: str) -> None:
    if gevent.getcurrent() is gevent.get_hub():
        raise HubWaitError(
            f"{what}() cannot wait in the hub greenlet (a watcher callback); "
            "start a coroutine for it"
        )


def _start(name: str | None, func: Callable[..., Any], args: tuple[Any, ...]) -> Coroutine:
    if not callable(func):
        raise TypeError(f"cannot start a coroutine: {func!r} is not callable")
    state = _state()
    cur = gevent.getcurrent()
    groups: set[Group] = set(state.scopes.get(cur, ()))
    if isinstance(cur, Coroutine):
        groups.update(cur._groups)
    co = Coroutine(func, *args)
    if name is not None:
        co.name = name
    co._groups = tuple(groups)
    for group in groups:
        group._live.add(co)
    state.live.add(co)
    co.rawlink(state.finished)
    co.start()
    return co


def co_start(func: Callable[..., Any], *args: Any) -> Coroutine:
    """Start ``func(*args)`` as a coroutine; it runs when the caller next waits."""
    return _start(None, func, args)


def co_start_named(name: str, func: Callable[..., Any], *args: Any) -> Coroutine:
    """``co_start`` with a name (``co.name``), shown in gevent's reports."""
    if not isinstance(name, str):
        raise TypeError(f"a coroutine name must be a str, not {type(name).__name__}")
    return _start(name, func, args)


def co_running() -> gevent.Greenlet | None:
    """The running coroutine (a ``gevent.Greenlet``); ``None`` in the main greenlet."""
    cur = gevent.getcurrent()
    return cur if isinstance(cur, gevent.Greenlet) else None


def co_count() -> int:
    """How many coroutines started by ``co_start`` in this thread are still alive."""
    return sum(1 for co in _state().live if not co.dead)


def co_sleep(ms: float) -> None:
    """Sleep ``ms`` milliseconds while other coroutines run; ``0`` returns at once."""
    if not isinstance(ms, (int, float)) or isinstance(ms, bool):
        raise TypeError(f"'ms' must be milliseconds (int or float), not {type(ms).__name__}")
    if not ms >= 0:
        raise ValueError(f"'ms' must be >= 0, got {ms}")
    if ms == 0:
        return
    _may_wait("co_sleep")
    gevent.sleep(ms / 1000.0)


def co_yield() -> None:
    """Give every other ready coroutine a turn, then continue."""
    _may_wait("co_yield")
    gevent.sleep(0)


def co_group_begin(name: str, scope: Callable[[Group], Any]) -> None:
    """Call ``scope(group)`` now; coroutines it starts join group ``name``.

    So do the coroutines those start, at any later time.  An exception from
    ``scope`` propagates after the scope is closed.
    """
    if not isinstance(name, str):
        raise TypeError(f"a group name must be a str, not {type(name).__name__}")
    if not callable(scope):
        raise TypeError(f"scope must be callable, not {type(scope).__name__}")
    state = _state()
    cur = gevent.getcurrent()
    stack = state.scopes.setdefault(cur, [])
    if any(group.name == name for group in stack):
        raise ValueError(f"co_group({name!r}) is already open here")
    group = state.groups.get(name)
    if group is None:
        group = state.groups[name] = Group(name)
    stack.append(group)
    try:
        scope(group)
    finally:
        stack.pop()
        if not stack:
            del state.scopes[cur]
        if group._live or group._errors:
            # A wait inside the scope may have forgotten the group already.
            state.groups.setdefault(name, group)


def co_group_wait(name: str, timeout: float = -1) -> bool:
    """Wait until every coroutine of group ``name`` has finished.

    ``True`` when all finished (the group is then forgotten), ``False`` when
    ``timeout`` milliseconds passed first (``-1`` no limit, ``0`` polls).
    Re-raises the exception of a member that failed.
    """
    check_timeout("timeout", timeout)
    state = _state()
    group = state.groups.get(name)
    if group is None:
        return True
    cur = gevent.getcurrent()
    if cur in group._live:
        raise RuntimeError(f"co_group_wait({name!r}) from a coroutine of that group waits forever")
    deadline = None if timeout == -1 else _hub.monotonic() + timeout / 1000.0
    while True:
        if group._errors:
            exc = group._errors[0]
            group._errors.clear()
            if not group._live and state.groups.get(name) is group:
                del state.groups[name]
            raise exc
        if not group._live:
            if state.groups.get(name) is group:
                del state.groups[name]
            return True
        remaining = None
        if deadline is not None:
            remaining = deadline - _hub.monotonic()
            if remaining <= 0:
                return False
        _may_wait("co_group_wait")
        group._event.wait(remaining)
