"""xmake's scheduler socket scripts (``tests/modules/socket/sched_*``), ported.

Each pair keeps the shape of the Lua scripts: a server coroutine that accepts
and starts coroutines per connection, and ``COUNT`` client sessions started in
a group.  Unlike xmake's own client, which waits only for the sessions and so
closes sockets while the per-connection coroutines still run, the group wait
here covers the coroutines the sessions start, so sockets are closed after
every coroutine using them finished.

``XSOCK_SCRIPT_MESSAGES`` sets the echo messages each way per connection
(xmake's 100,000 by default).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from xsock_green import Bytes, Socket, socket
from xsock_green.scheduler import co_group_begin, co_group_wait, co_start

MESSAGES = int(os.environ.get("XSOCK_SCRIPT_MESSAGES", "100000"))
HELLO = "hello world.."

Log = list[tuple[Any, ...]]


pytestmark = pytest.mark.usefixtures("no_leftover_coroutines")


# -- sched_tcp/echo_server.lua and echo_client.lua ---------------------------


def _session_recv(sock: Socket, log: Log) -> None:
    buff = Bytes(13)
    count = 0
    wrong = 0
    result = None
    while count < MESSAGES:
        recv, data = sock.recv(buff, 13, {"block": True, "waitall": True})
        if recv > 0:
            if data != b"hello world..":
                wrong += 1
            result = data
            count += 1
        else:
            break
    log.append(("recv", count, wrong, result.str() if result is not None else None))


def _session_send(sock: Socket, log: Log) -> None:
    count = 0
    while count < MESSAGES:
        send = sock.send(HELLO, {"block": True})
        if send > 0:
            count += 1
        else:
            break
    log.append(("send", count))


def _listen(server: Socket, count: int, socks: list[Socket], log: Log) -> None:
    # xmake's server accepts forever; this one stops after ``count`` clients.
    for _ in range(count):
        sock_client = server.accept()
        if sock_client is not None:
            co_start(_session_recv, sock_client, log)
            co_start(_session_send, sock_client, log)
            socks.append(sock_client)


def _session(port: int, socks: list[Socket], log: Log) -> None:
    sock = socket.connect("127.0.0.1", port)
    if sock is not None:
        socks.append(sock)
        co_start(_session_recv, sock, log)
        co_start(_session_send, sock, log)
    else:
        log.append(("connect failed",))


@pytest.fixture
def server() -> Iterator[Socket]:
    sock = socket.bind("127.0.0.1", 0)
    assert sock.listen(100)
    yield sock
    sock.close()


def _close_all(socks: list[Socket]) -> None:
    for sock in socks:
        sock.close()


@pytest.mark.parametrize("count", [1, 4])
def test_echo_pair(server: Socket, count: int) -> None:
    port = server.sockname()[1]
    server_log: Log = []
    client_log: Log = []
    server_socks: list[Socket] = []
    client_socks: list[Socket] = []
    try:
        co_group_begin(
            "echo_server", lambda g: co_start(_listen, server, count, server_socks, server_log)
        )
        co_group_begin(
            "echo_client",
            lambda g: [co_start(_session, port, client_socks, client_log) for _ in range(count)],
        )
        assert co_group_wait("echo_client", 60_000) is True
        _close_all(client_socks)
        assert co_group_wait("echo_server", 60_000) is True
    finally:
        _close_all(client_socks)
        _close_all(server_socks)
    for log in (client_log, server_log):
        assert sorted(log) == sorted(
            [("recv", MESSAGES, 0, HELLO)] * count + [("send", MESSAGES)] * count
        )
    assert len(server_socks) == len(client_socks) == count


# -- sched_tcp/file_server.lua and file_client.lua ---------------------------


def _file_session(sock: Socket, path: str, log: Log) -> None:
    with open(path, "rb") as file:
        send = sock.sendfile(file, {"block": True})
        log.append(("sent", send))
    sock.close()


def _file_listen(server: Socket, count: int, path: str, log: Log) -> None:
    for _ in range(count):
        sock_client = server.accept()
        if sock_client is not None:
            co_start(_file_session, sock_client, path, log)


def _file_client(port: int, received: list[bytes]) -> None:
    sock = socket.connect("127.0.0.1", port)
    assert sock is not None
    buff = Bytes(8192)
    results: list[Bytes] = []
    wait = False
    with sock:
        while True:
            real, data = sock.recv(buff, 8192)
            if real > 0:
                assert data is not None
                wait = False
                results.append(data.clone())
            elif real == 0 and not wait:
                if sock.wait(socket.EV_RECV, -1) == socket.EV_RECV:
                    wait = True
                else:
                    break
            else:
                break
    received.append(bytes(Bytes(results)) if results else b"")


@pytest.mark.parametrize("count", [1, 4])
def test_file_pair(server: Socket, count: int, tmp_path: Any) -> None:
    path = str(tmp_path / "payload.bin")
    content = os.urandom(1 << 20) + b"the end"
    with open(path, "wb") as f:
        f.write(content)
    port = server.sockname()[1]
    sent: Log = []
    received: list[bytes] = []
    co_group_begin("file_server", lambda g: co_start(_file_listen, server, count, path, sent))
    co_group_begin(
        "file_client", lambda g: [co_start(_file_client, port, received) for _ in range(count)]
    )
    assert co_group_wait("file_client", 30_000) is True
    assert co_group_wait("file_server", 30_000) is True
    assert sent == [("sent", len(content))] * count
    assert len(received) == count
    assert all(data == content for data in received)


# -- sched_udp/echo_server.lua and echo_client.lua ---------------------------


def _udp_listen(sock: Socket, count: int, log: Log) -> None:
    # xmake's server answers forever; this one stops after ``count`` datagrams.
    buff = Bytes(8192)
    for _ in range(count):
        recv, data, peer_addr, peer_port = sock.recvfrom(buff, 8192, {"block": True})
        log.append(("recv", recv))
        if data is not None:
            assert peer_addr is not None and peer_port is not None
            sock.sendto(data, peer_addr, peer_port)


def _udp_session(port: int, data: str, log: Log) -> None:
    with socket.udp() as sock:
        send = sock.sendto(data, "127.0.0.1", port, {"block": True})
        buff = Bytes(8192)
        recv, back, _addr, peer_port = sock.recvfrom(buff, 8112, {"block": True, "timeout": 10_000})
        log.append((send, recv, back.str() if back is not None else None, peer_port))


@pytest.mark.parametrize("count", [1, 4])
def test_udp_pair(count: int) -> None:
    with socket.udp() as server:
        assert server.bind("127.0.0.1", 0)
        port = server.sockname()[1]
        server_log: Log = []
        client_log: Log = []
        words = [f"hello xmake! #{i}" for i in range(count)]
        co_group_begin("udp_server", lambda g: co_start(_udp_listen, server, count, server_log))
        co_group_begin(
            "udp_client", lambda g: [co_start(_udp_session, port, w, client_log) for w in words]
        )
        assert co_group_wait("udp_client", 30_000) is True
        assert co_group_wait("udp_server", 30_000) is True
    assert sorted(client_log) == sorted((len(w), len(w), w, port) for w in words)
    assert sorted(server_log) == sorted(("recv", len(w)) for w in words)
