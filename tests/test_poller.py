"""``xsock_green.poller``: insert, modify, remove and wait over many sockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import pytest
from conftest import Runner, pair

from xsock_green import BusyError, Bytes, HubWaitError, Socket, WrongThreadError, poller, socket

EV_RECV = socket.EV_RECV
EV_SEND = socket.EV_SEND


@pytest.fixture(autouse=True)
def empty_poller() -> Iterator[None]:
    """Each test starts and ends with nothing in this thread's poller."""
    assert poller.wait(0) == []
    yield
    from xsock_green import _multiwait

    mw = _multiwait.multiwait()
    leftover = len(mw)
    for key in list(mw._slots) + list(mw._closed):
        mw.discard(key)
    assert leftover == 0, "a test left sockets in the poller"


def test_insert_and_wait_reports_readable(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair

    def body() -> None:
        assert poller.insert(server, EV_RECV) is True
        assert poller.wait(0) == []
        assert client.send("hello") == 5
        assert poller.wait(-1) == [(server, EV_RECV)]
        # Level-triggered: still ready until drained.
        assert poller.wait(0) == [(server, EV_RECV)]
        n, _ = server.recv(Bytes(16))
        assert n == 5
        assert poller.wait(0) == []
        assert poller.remove(server) is True

    run(body)


def test_wait_blocks_until_another_greenlet_sends(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Callable[..., gevent.Greenlet]
) -> None:
    client, server = tcp_pair

    def body() -> None:
        poller.insert(server, EV_RECV)
        spawn(client.send, "x")
        with gevent.util.assert_switches():
            assert poller.wait(5000) == [(server, EV_RECV)]
        poller.remove(server)

    run(body)


def test_send_and_both_events(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    assert poller.insert(client, EV_SEND)
    assert poller.wait(0) == [(client, EV_SEND)]
    assert poller.modify(client, EV_RECV | EV_SEND)
    assert poller.wait(0) == [(client, EV_SEND)]
    server.send("x")
    assert poller.wait(1000) == [(client, EV_RECV | EV_SEND)]
    assert poller.modify(client, EV_RECV)
    assert poller.wait(0) == [(client, EV_RECV)]
    client.recv(Bytes(4))
    assert poller.wait(0) == []
    assert poller.remove(client)


def test_modify_while_waiting(
    tcp_pair: tuple[Socket, Socket], spawn: Callable[..., gevent.Greenlet]
) -> None:
    client, _server = tcp_pair
    poller.insert(client, EV_RECV)
    # A greenlet changes the events of a socket while the main greenlet
    # waits; the new events count for the wait already under way.
    spawn(poller.modify, client, EV_SEND)
    assert poller.wait(5000) == [(client, EV_SEND)]
    poller.remove(client)


def test_timeout_returns_empty_list_in_time(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    _client, server = tcp_pair

    def body() -> None:
        poller.insert(server, EV_RECV)
        t0 = time.monotonic()
        assert poller.wait(60) == []
        elapsed = time.monotonic() - t0
        assert 0.055 <= elapsed < 2.0
        poller.remove(server)

    run(body)


def test_wait_with_nothing_inserted_times_out() -> None:
    t0 = time.monotonic()
    assert poller.wait(20) == []
    assert 0.015 <= time.monotonic() - t0 < 2.0


def test_remove_and_misuse(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    assert poller.remove(server) is False
    with pytest.raises(ValueError, match="not in the poller"):
        poller.modify(server, EV_RECV)
    assert poller.insert(server, EV_RECV)
    with pytest.raises(ValueError, match="already in the poller"):
        poller.insert(server, EV_SEND)
    for bad in (0, 4, -1):
        with pytest.raises(ValueError, match="events"):
            poller.insert(client, bad)
    with pytest.raises(TypeError, match="events"):
        poller.insert(client, "1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="xsock_green sockets"):
        poller.insert(object(), EV_RECV)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        poller.wait(-2)
    with pytest.raises(TypeError, match="timeout"):
        poller.wait("1")  # type: ignore[arg-type]
    client.send("x")
    assert poller.remove(server) is True
    assert poller.remove(server) is False
    assert poller.wait(0) == []


def test_closed_socket_is_not_inserted() -> None:
    sock = socket.tcp()
    sock.close()
    assert poller.insert(sock, EV_RECV) is False
    assert poller.modify(sock, EV_RECV) is False
    assert poller.remove(sock) is False


def test_close_from_another_greenlet_wakes_the_wait(
    run: Runner, tcp_pair: tuple[Socket, Socket], spawn: Callable[..., gevent.Greenlet]
) -> None:
    client, server = tcp_pair

    def body() -> None:
        poller.insert(server, EV_RECV)
        spawn(server.close)
        t0 = time.monotonic()
        assert poller.wait(-1) == [(server, -1)]
        assert time.monotonic() - t0 < 0.1
        # Reported once, then removed; the caller's recv sees the failure.
        assert poller.wait(0) == []
        assert poller.remove(server) is False
        assert server.recv(Bytes(4)) == (-1, None)
        assert "has been closed" in str(server.last_error)
        # The hub is fine: the peer still works.
        assert client.send("x") == 1

    run(body)


def test_close_then_poll_reports_closed(tcp_pair: tuple[Socket, Socket]) -> None:
    _client, server = tcp_pair
    poller.insert(server, EV_RECV)
    server.close()
    # The hub has not run since the close: a poll still sees it.
    assert poller.wait(0) == [(server, -1)]
    assert poller.wait(0) == []


def test_close_then_blocking_wait_reports_closed(tcp_pair: tuple[Socket, Socket]) -> None:
    _client, server = tcp_pair
    poller.insert(server, EV_RECV)
    server.close()
    assert poller.wait(1000) == [(server, -1)]


def test_closed_after_readiness_was_seen(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    client.send("x")
    assert poller.wait(1000) == [(server, EV_RECV)]
    _fire_unattended()
    server.close()
    assert poller.wait(1000) == [(server, -1)]
    assert poller.remove(server) is False


def _fire_unattended() -> None:
    """Let the hub run: a ready socket's watcher fires with nobody waiting and stops."""
    from xsock_green import _multiwait

    gevent.idle()
    assert len(_multiwait.multiwait()._fired) == 1


def test_closed_descriptor_reused_by_a_new_inserted_socket(
    listener: Socket, tcp_pair: tuple[Socket, Socket]
) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    client.send("x")
    assert poller.wait(1000) == [(server, EV_RECV)]
    _fire_unattended()
    old_fd = server.rawfd()
    server.close()  # closed at once: no running watcher on the descriptor
    # The OS hands out the lowest free descriptor: fill any lower holes.
    made = [socket.udp()]
    while made[-1].rawfd() != old_fd and len(made) < 100:
        made.append(socket.udp())
    fresh = made[-1]
    try:
        assert fresh.rawfd() == old_fd
        assert poller.insert(fresh, EV_RECV | EV_SEND)
        got = poller.wait(1000)
        assert sorted(got, key=lambda p: p[1]) == [(server, -1), (fresh, EV_SEND)]
        assert poller.wait(0) == [(fresh, EV_SEND)]
        assert poller.remove(fresh)
    finally:
        for sock in made:
            sock.close()


def test_modify_closed_inserted_socket_removes_it(tcp_pair: tuple[Socket, Socket]) -> None:
    _client, server = tcp_pair
    poller.insert(server, EV_RECV)
    server.close()
    assert poller.modify(server, EV_SEND) is False
    assert poller.wait(0) == []
    assert poller.remove(server) is False


def test_kill_reports_end_of_stream_as_readable(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    assert client.kill()
    assert poller.wait(1000) == [(server, EV_RECV)]
    assert server.recv(Bytes(4)) == (-1, None)
    poller.remove(server)


def _pairs(listener: Socket, count: int) -> tuple[list[Socket], list[Socket]]:
    clients: list[Socket] = []
    servers: list[Socket] = []
    for _ in range(count):
        c, s = pair(listener)
        clients.append(c)
        servers.append(s)
    return clients, servers


@pytest.fixture
def thousand(listener: Socket) -> Iterator[tuple[list[Socket], list[Socket]]]:
    clients, servers = _pairs(listener, 1000)
    yield clients, servers
    for sock in clients + servers:
        sock.close()


def test_thousand_sockets_exactly_the_ready_ones(
    thousand: tuple[list[Socket], list[Socket]],
) -> None:
    clients, servers = thousand
    for sock in servers:
        assert poller.insert(sock, EV_RECV)
    assert poller.wait(0) == []
    # More than libev takes from epoll in one batch (64 at first).
    chosen = set(range(0, 1000, 7)) | {1, 998, 999}
    for i in sorted(chosen):
        assert clients[i].send("x") == 1
    want = {(servers[i], EV_RECV) for i in chosen}
    got = poller.wait(1000)
    assert len(got) == len(want)
    assert set(got) == want
    # Drain half: exactly the other half stays ready.
    buff = Bytes(8)
    drained = set(sorted(chosen)[::2])
    for i in drained:
        assert servers[i].recv(buff)[0] == 1
    assert set(poller.wait(0)) == {(servers[i], EV_RECV) for i in chosen - drained}
    for i in chosen - drained:
        assert servers[i].recv(buff)[0] == 1
    assert poller.wait(0) == []
    # A blocking wait over 1,000 idle sockets wakes for the one that moves.
    sender = gevent.spawn(clients[500].send, "y")
    try:
        assert poller.wait(5000) == [(servers[500], EV_RECV)]
    finally:
        sender.join()
    for sock in servers:
        assert poller.remove(sock)


def test_thousand_sockets_all_that_became_ready_during_the_wait(
    thousand: tuple[list[Socket], list[Socket]],
) -> None:
    clients, servers = thousand
    for sock in servers:
        poller.insert(sock, EV_RECV)
    chosen = list(range(5, 1000, 6))  # 166: more than one epoll batch

    def send_all() -> None:
        for i in chosen:
            clients[i].send("x")

    sender = gevent.spawn(send_all)
    try:
        got = poller.wait(5000)
    finally:
        sender.join()
    assert sorted(got, key=lambda p: servers.index(p[0])) == [(servers[i], EV_RECV) for i in chosen]
    for sock in servers:
        poller.remove(sock)


def test_thousand_sockets_closed_while_inserted(
    thousand: tuple[list[Socket], list[Socket]],
) -> None:
    clients, servers = thousand
    for sock in servers:
        poller.insert(sock, EV_RECV)
    closing = set(range(3, 1000, 10))
    closer = gevent.spawn(lambda: [servers[i].close() for i in sorted(closing)])
    got: set[tuple[Socket, int]] = set()
    for _ in range(10):
        got.update(poller.wait(2000))
        if len(got) == len(closing):
            break
    closer.join()
    assert got == {(servers[i], -1) for i in closing}
    assert poller.wait(0) == []
    clients[4].send("z")
    assert poller.wait(1000) == [(servers[4], EV_RECV)]
    for i, sock in enumerate(servers):
        assert poller.remove(sock) is (i not in closing)


def test_idle_wait_does_not_spin(thousand: tuple[list[Socket], list[Socket]]) -> None:
    _clients, servers = thousand
    for sock in servers:
        poller.insert(sock, EV_RECV)
    cpu = time.process_time()
    assert poller.wait(200) == []
    assert time.process_time() - cpu < 0.1
    for sock in servers:
        poller.remove(sock)


def test_ready_socket_nobody_waits_for_does_not_spin(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    client.send("x")
    # The hub runs for 200 ms while the socket is ready and nobody waits.
    cpu = time.process_time()
    gevent.sleep(0.2)
    assert time.process_time() - cpu < 0.1
    assert poller.wait(0) == [(server, EV_RECV)]
    poller.remove(server)


def test_second_waiter_is_busy(
    tcp_pair: tuple[Socket, Socket], spawn: Callable[..., gevent.Greenlet]
) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    first = spawn(poller.wait, 5000)
    gevent.idle()
    with pytest.raises(BusyError):
        poller.wait(10)
    client.send("x")
    assert first.get(timeout=5) == [(server, EV_RECV)]
    poller.remove(server)


def test_wait_from_the_hub_raises() -> None:
    result: list[BaseException] = []
    done = gevent.event.Event()

    def in_hub() -> None:
        try:
            poller.wait(0)
        except BaseException as exc:
            result.append(exc)
        done.set()

    gevent.get_hub().loop.run_callback(in_hub)
    assert done.wait(5)
    assert isinstance(result[0], HubWaitError)


def test_timeout_interrupts_and_poller_stays_usable(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    with pytest.raises(gevent.Timeout), gevent.Timeout(0.02):
        poller.wait(-1)
    client.send("x")
    assert poller.wait(1000) == [(server, EV_RECV)]
    poller.remove(server)


def test_kill_interrupts_a_waiting_greenlet(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    waiter = gevent.spawn(poller.wait, -1)
    gevent.idle()
    waiter.kill(block=True, timeout=5)
    assert waiter.dead
    client.send("x")
    assert poller.wait(1000) == [(server, EV_RECV)]
    poller.remove(server)


def test_each_thread_has_its_own_poller(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    poller.insert(server, EV_RECV)
    client.send("x")
    seen: list[object] = []

    def other() -> None:
        try:
            seen.append(poller.wait(0))
            try:
                poller.insert(server, EV_RECV)
            except WrongThreadError as exc:
                seen.append(exc)
        finally:
            gevent.get_hub().destroy(destroy_loop=True)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()
    assert seen[0] == []
    assert isinstance(seen[1], WrongThreadError)
    assert poller.wait(0) == [(server, EV_RECV)]
    poller.remove(server)
