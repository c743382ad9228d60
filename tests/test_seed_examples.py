"""The seed document's examples, ported line by line, with bounded loops.

Each Lua example from ``seed/xmake-socket-doc.txt`` appears here with the
same calls in the same order; only the infinite server loops are bounded
and the fixed port 9091 became port 0 so the tests never collide.
"""

from __future__ import annotations

import os

import gevent
from conftest import Runner

from xsock_green import Bytes, Socket, bytes, socket


def echo_server(server: Socket, clients: int) -> list[str]:
    """The seed's TCP echo server, serving ``clients`` clients then closing."""
    seen: list[str] = []
    for _ in range(clients):
        client = server.accept()
        if client:
            buff = bytes(8192)
            while True:
                recv, data = client.recv(buff, 8192, {"block": True})
                if recv > 0:
                    assert data is not None
                    seen.append(data.str())
                    client.send(data, {"block": True})
                else:
                    break
            client.close()
    server.close()
    return seen


def echo_client(port: int) -> int:
    """The seed's TCP client: 1000 messages, each echoed."""
    sock = socket.connect("127.0.0.1", port)
    count = 0
    if sock:
        buff = bytes(8192)
        while count < 1000:
            send = sock.send("hello world..", {"block": True})
            if send > 0:
                sock.recv(buff, 13, {"block": True})
                count = count + 1
            else:
                break
        sock.close()
    return count


def test_tcp_echo_server_and_client(run: Runner) -> None:
    server = socket.bind("127.0.0.1", 0)
    server.listen(20)
    port = server.sockname()[1]
    srv = gevent.spawn(echo_server, server, 1)
    assert run(echo_client, port) == 1000
    seen = srv.get(timeout=30)
    assert "".join(seen) == "hello world.." * 1000


def test_udp_echo_server_and_client(run: Runner) -> None:
    sock = socket.udp()
    assert sock.bind("127.0.0.1", 0)
    port = sock.sockname()[1]

    def server(rounds: int) -> None:
        buff = bytes(8192)
        for _ in range(rounds):
            recv, data, peer_addr, peer_port = sock.recvfrom(buff, 8192, {"block": True})
            if recv > 0:
                assert peer_addr is not None and peer_port is not None
                sock.sendto(data, peer_addr, peer_port)
        sock.close()

    def client() -> list[tuple[str, str, int]]:
        c = socket.udp()
        got = []
        buff = bytes(8192)
        for i in range(20):
            assert c.sendto(f"ping {i}", "127.0.0.1", port, {"block": True}) == len(f"ping {i}")
            recv, data, peer_addr, peer_port = c.recvfrom(buff, 8192, {"block": True})
            assert recv > 0 and data is not None and peer_addr is not None
            assert peer_port is not None
            got.append((data.str(), peer_addr, peer_port))
        c.close()
        return got

    srv = gevent.spawn(server, 20)
    got = run(client)
    srv.get(timeout=10)
    assert got == [(f"ping {i}", "127.0.0.1", port) for i in range(20)]


def test_udp_doc_snippet_nothing_arrived() -> None:
    # The doc's first UDP snippet: a non-blocking recvfrom with nothing sent.
    sock = socket.udp()
    sock.bind("127.0.0.1", 0)
    buff = bytes(8192)
    recv, data, peer_addr, peer_port = sock.recvfrom(buff, 8192)
    assert (recv, data, peer_addr, peer_port) == (0, None, None, None)
    sock.close()


def test_sendto_doc_snippet() -> None:
    peer = socket.udp()
    peer.bind("127.0.0.1", 0)
    sock = socket.udp()
    assert sock.sendto("hello", "127.0.0.1", peer.sockname()[1]) == 5
    sock.close()
    n, data, _, _ = peer.recvfrom(Bytes(16), 16, {"block": True, "timeout": 5000})
    assert n == 5 and data is not None and data.str() == "hello"
    peer.close()


def test_unix_bind_and_connect(run: Runner, short_tmp: str) -> None:
    path = os.path.join(short_tmp, "my.sock")
    server = socket.bind_unix(path)
    server.listen(10)
    srv = gevent.spawn(echo_server, server, 1)

    def client() -> str:
        sock = socket.connect_unix(path)
        assert sock is not None
        assert sock.type() == socket.TCP and sock.family() == socket.UNIX
        assert sock.send("over unix", {"block": True}) == 9
        _n, data = sock.recv(bytes(64), 9, {"block": True, "waitall": True})
        sock.close()
        assert data is not None
        return data.str()

    assert run(client) == "over unix"
    assert srv.get(timeout=10) == ["over unix"]
    assert os.path.exists(path)  # never deleted behind the user's back


def test_wait_before_accept(run: Runner, listener: Socket) -> None:
    port = listener.sockname()[1]

    def body() -> str:
        dialer = gevent.spawn(socket.connect, "127.0.0.1", port)
        events = listener.wait(socket.EV_ACPT, 5000)
        assert events == socket.EV_ACPT
        client = listener.accept()
        assert client is not None
        peer = dialer.get(timeout=5)
        assert peer is not None
        text = str(client)
        client.close()
        peer.close()
        return text

    assert run(body).startswith("<socket: tcp4/")


def test_wait_before_recv_and_send(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    sock, peer = tcp_pair
    buff = bytes(8192)

    def body() -> str:
        events = sock.wait(socket.EV_SEND, 1000)
        assert events == socket.EV_SEND
        assert sock.send("data") == 4
        events = peer.wait(socket.EV_RECV, 1000)
        assert events == socket.EV_RECV
        recv, data = peer.recv(buff, 1024)
        assert recv == 4 and data is not None
        return data.str()

    assert run(body) == "data"


def test_recv_block_with_timeout(run: Runner, tcp_pair: tuple[Socket, Socket]) -> None:
    sock, peer = tcp_pair
    peer.send("Received!", {"block": True})
    buff = bytes(8192)

    def body() -> str:
        recv, data = sock.recv(buff, 1024)  # non-blocking: may or may not be there yet
        if recv == 0:
            recv, data = sock.recv(buff, 1024, {"block": True, "timeout": 5000})
        assert recv > 0 and data is not None
        return data.str()

    assert run(body) == "Received!"


def test_ctrl_buffer_sizes(tcp_pair: tuple[Socket, Socket]) -> None:
    sock, _ = tcp_pair
    assert sock.ctrl(socket.CTRL_SET_RECVBUFF, 65536) is True
    assert sock.ctrl(socket.CTRL_SET_SENDBUFF, 65536) is True
    # Linux doubles the requested size for bookkeeping; never less than asked.
    assert sock.ctrl(socket.CTRL_GET_RECVBUFF) >= 65536
    assert sock.ctrl(socket.CTRL_GET_SENDBUFF) >= 65536
