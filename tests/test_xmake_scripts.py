"""xmake's manual socket test scripts, automated.

xmake ships echo, UDP, unix and file-server scripts that a person runs by
hand in two terminals.  Here each pair runs in one process: the server in a
greenlet, the client from the main greenlet or a spawned one.
"""

from __future__ import annotations

import os

import gevent
from conftest import Runner

from xsock_green import Bytes, Socket, socket

MSG = "hello world.."  # 13 bytes, xmake's message


def serve_echo(server: Socket) -> int:
    """Accept one client and echo until it ends the stream; returns bytes echoed."""
    client = server.accept()
    assert client is not None
    buff = Bytes(8192)
    total = 0
    while True:
        n, data = client.recv(buff, 8192, {"block": True})
        if n <= 0:
            break
        assert client.send(data, {"block": True}) == n
        total += n
    client.close()
    return total


def test_tcp_echo_10000_messages(run: Runner, listener: Socket) -> None:
    port = listener.sockname()[1]
    srv = gevent.spawn(serve_echo, listener)

    def client() -> int:
        sock = socket.connect("127.0.0.1", port)
        assert sock is not None
        buff = Bytes(8192)
        count = 0
        for _ in range(10_000):
            assert sock.send(MSG, {"block": True}) == 13
            n, data = sock.recv(buff, 13, {"block": True, "waitall": True})
            assert n == 13 and data == MSG.encode()
            count += 1
        sock.close()
        return count

    assert run(client) == 10_000
    assert srv.get(timeout=30) == 130_000


def test_unix_echo(run: Runner, short_tmp: str) -> None:
    path = os.path.join(short_tmp, "echo.sock")
    server = socket.bind_unix(path)
    assert server.listen(10)
    srv = gevent.spawn(serve_echo, server)

    def client() -> int:
        sock = socket.connect_unix(path)
        assert sock is not None
        buff = Bytes(8192)
        for i in range(1000):
            text = f"{i:013d}"
            assert sock.send(text, {"block": True}) == 13
            n, data = sock.recv(buff, 13, {"block": True, "waitall": True})
            assert n == 13 and data is not None and data.str() == text
        sock.close()
        return 1000

    assert run(client) == 1000
    assert srv.get(timeout=30) == 13_000
    server.close()


def test_udp_echo_checks_peer_address(run: Runner) -> None:
    server = socket.udp()
    assert server.bind("127.0.0.1", 0)
    port = server.sockname()[1]
    peers: list[tuple[str | None, int | None]] = []

    def serve(rounds: int) -> None:
        buff = Bytes(8192)
        for _ in range(rounds):
            n, data, addr, peer_port = server.recvfrom(buff, 8192, {"block": True})
            assert n > 0 and addr is not None and peer_port is not None
            peers.append((addr, peer_port))
            assert server.sendto(data, addr, peer_port, {"block": True}) == n

    srv = gevent.spawn(serve, 100)

    def client() -> int:
        sock = socket.udp()
        assert sock.bind("127.0.0.1", 0)
        me = sock.sockname()
        buff = Bytes(8192)
        for i in range(100):
            assert sock.sendto(f"{MSG}{i}", "127.0.0.1", port, {"block": True}) > 0
            _n, data, addr, peer_port = sock.recvfrom(buff, 8192, {"block": True})
            assert data is not None and data.str() == f"{MSG}{i}"
            assert (addr, peer_port) == ("127.0.0.1", port)
        sock.close()
        return int(me[1])

    my_port = run(client)
    srv.get(timeout=10)
    server.close()
    assert peers == [("127.0.0.1", my_port)] * 100


def test_file_server_sendfile(run: Runner, listener: Socket, tmp_path: os.PathLike[str]) -> None:
    content = os.urandom(100_000)
    path = os.path.join(tmp_path, "payload.bin")
    with open(path, "wb") as f:
        f.write(content)
    port = listener.sockname()[1]

    def serve() -> int:
        client = listener.accept()
        assert client is not None
        with open(path, "rb") as f:
            sent = client.sendfile(f, {"block": True})
        client.close()
        return sent

    srv = gevent.spawn(serve)

    def client() -> bytes:
        # The client reads non-blocking, waiting only when nothing is there.
        sock = socket.connect("127.0.0.1", port)
        assert sock is not None
        buff = Bytes(8192)
        chunks: list[bytes] = []
        while True:
            n, data = sock.recv(buff, 8192)
            if n > 0:
                assert data is not None
                chunks.append(bytes(data))
            elif n == 0:
                assert sock.wait(socket.EV_RECV, 5000) == socket.EV_RECV
            else:
                break
        sock.close()
        return b"".join(chunks)

    assert run(client) == content
    assert srv.get(timeout=10) == 100_000


def _duplex(sock: Socket, count: int) -> tuple[int, int]:
    """One receiving and one sending greenlet on ``sock``, both joined."""

    def sender() -> int:
        for _ in range(count):
            assert sock.send(MSG, {"block": True}) == 13
        return count

    def receiver() -> int:
        buff = Bytes(13)
        for _ in range(count):
            n, data = sock.recv(buff, 13, {"block": True, "waitall": True})
            assert n == 13 and data == MSG.encode()
        return count

    s, r = gevent.spawn(sender), gevent.spawn(receiver)
    gevent.joinall([s, r], raise_error=True)
    return s.value, r.value


def test_coroutine_echo_full_duplex(run: Runner, listener: Socket) -> None:
    count = 100_000
    port = listener.sockname()[1]

    def serve() -> tuple[int, int]:
        client = listener.accept()
        assert client is not None
        try:
            return _duplex(client, count)
        finally:
            client.close()

    srv = gevent.spawn(serve)

    def client() -> tuple[int, int]:
        sock = socket.connect("127.0.0.1", port)
        assert sock is not None
        try:
            return _duplex(sock, count)
        finally:
            sock.close()

    assert run(client) == (count, count)
    assert srv.get(timeout=60) == (count, count)
