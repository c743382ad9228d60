"""Families, names and how sockets print themselves."""

from __future__ import annotations

import os
import re
import sys

import gevent
import pytest
from conftest import Runner

from xsock_green import Bytes, socket


def _has_ipv6() -> bool:
    try:
        probe = socket.bind("::1", 0)
    except OSError:
        return False
    probe.close()
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6(), reason="this machine has no IPv6 loopback")


@needs_ipv6
def test_ipv6_echo_and_formats(run: Runner) -> None:
    server = socket.bind("::1", 0, {"family": socket.IPV6})
    assert server.listen(5)
    host, port = server.sockname()[:2]
    assert host == "::1" and port > 0

    def body() -> None:
        client = socket.connect("::1", port, {"family": socket.IPV6})
        assert client is not None
        peer = server.accept()
        assert peer is not None
        assert client.peeraddr() == f"[::1]:{port}"
        assert re.fullmatch(r"<socket: tcp6/\d+>", str(client))
        assert client.send("six", {"block": True}) == 3
        _n, data = peer.recv(Bytes(8), 3, {"block": True, "waitall": True})
        assert data == b"six"
        client.close()
        peer.close()

    run(body)
    server.close()


@needs_ipv6
def test_ipv6_family_inferred_and_v6only() -> None:
    server = socket.bind("::1", 0)  # family inferred from the address
    assert server.family() == socket.IPV6
    server.close()
    udp = socket.udp({"family": socket.IPV6})
    assert re.fullmatch(r"<socket: udp6/\d+>", str(udp))
    assert udp.bind("::1", 0)
    udp.close()


@needs_ipv6
def test_ipv6_udp_peer_address() -> None:
    a = socket.udp({"family": socket.IPV6})
    b = socket.udp({"family": socket.IPV6})
    assert a.bind("::1", 0) and b.bind("::1", 0)
    assert a.sendto("x", "::1", b.sockname()[1]) == 1
    n, _, addr, port = b.recvfrom(Bytes(4), 4, {"block": True, "timeout": 5000})
    assert (n, addr, port) == (1, "::1", a.sockname()[1])
    a.close()
    b.close()


@pytest.mark.parametrize("host", ["127.0.0.1", pytest.param("::1", marks=needs_ipv6)])
def test_udp_replies_reach_each_sender(host: str) -> None:
    # The server answers whoever it just heard from, alternating between
    # clients, and also sends to a fixed third address in between: each
    # reply must reach its own sender (the last sender's and the last
    # destination's addresses are both kept).
    family = {"family": socket.IPV6 if ":" in host else socket.IPV4}
    server, third, *clients = (socket.udp(family) for _ in range(5))
    try:
        for sock in (server, third, *clients):
            assert sock.bind(host, 0)
        buf = Bytes(64)
        for i in range(12):
            client = clients[i % 3]
            assert client.sendto(f"q{i}", host, server.sockname()[1]) == len(f"q{i}")
            _n, data, addr, port = server.recvfrom(buf, 64, {"block": True, "timeout": 5000})
            assert data == f"q{i}".encode() and port == client.sockname()[1]
            assert server.sendto(f"r{i}", addr, port) == len(f"r{i}")
            assert server.sendto("aside", host, third.sockname()[1]) == 5
            _n, data, _addr, port = client.recvfrom(buf, 64, {"block": True, "timeout": 5000})
            assert data == f"r{i}".encode() and port == server.sockname()[1]
            _n, data, _addr, _port = third.recvfrom(buf, 64, {"block": True, "timeout": 5000})
            assert data == b"aside"
    finally:
        for sock in (server, third, *clients):
            sock.close()


def test_udp_port_of_the_last_sender_is_still_checked() -> None:
    a, b = socket.udp(), socket.udp()
    try:
        assert a.bind("127.0.0.1", 0) and b.bind("127.0.0.1", 0)
        assert a.sendto("x", "127.0.0.1", b.sockname()[1]) == 1
        _n, _data, addr, port = b.recvfrom(Bytes(4), 4, {"block": True, "timeout": 5000})
        assert addr is not None and port is not None
        with pytest.raises(TypeError, match="'port' must be an int, not float"):
            b.sendto("y", addr, float(port))
        assert b.sendto("y", addr, port) == 1  # now the last destination too
        with pytest.raises(TypeError, match="'port' must be an int, not float"):
            b.sendto("y", addr, float(port))
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")
def test_abstract_unix_socket(run: Runner) -> None:
    name = f"xsock-test-{os.getpid()}-{id(run)}"
    server = socket.bind_unix(name, {"is_abstract": True})
    assert server.listen(5)

    def body() -> None:
        client = socket.connect_unix(name, {"is_abstract": True})
        assert client is not None
        peer = server.accept()
        assert peer is not None
        assert client.peeraddr() == "@" + name
        assert client.send("abstract", {"block": True}) == 8
        assert peer.recv(Bytes(8), 8, {"block": True, "waitall": True})[1] == b"abstract"
        client.close()
        peer.close()

    run(body)
    server.close()
    assert not os.path.exists(name)


def test_host_names_resolve(run: Runner, listener: socket.Socket) -> None:
    port = listener.sockname()[1]

    def body() -> None:
        client = socket.connect("localhost", port)
        assert client is not None
        peer = listener.accept()
        assert peer is not None
        assert client.peeraddr() == f"127.0.0.1:{port}"
        client.close()
        peer.close()
        udp = socket.udp()
        assert udp.sendto("n", "localhost", port) == 1  # nobody listens: sent anyway
        udp.close()

    run(body)


def test_unresolvable_name_fails_cleanly() -> None:
    sock = socket.tcp()
    assert sock.connect("no-such-host.invalid", 80) == -1
    assert "cannot resolve 'no-such-host.invalid'" in str(sock.last_error)
    assert sock.bind("127.0.0.1", 0)  # the socket still works
    sock.close()


def test_sockname_after_port_zero_and_peeraddr(run: Runner) -> None:
    def body() -> None:
        server = socket.bind("127.0.0.1", 0)
        host, port = server.sockname()
        assert host == "127.0.0.1" and 0 < port < 65536
        assert server.peeraddr() is None and server.peername() is None
        server.listen(5)
        client = socket.connect("127.0.0.1", port)
        assert client is not None
        peer = server.accept()
        assert peer is not None
        assert client.peeraddr() == f"127.0.0.1:{port}"
        assert client.peername() == ("127.0.0.1", port)
        assert peer.peeraddr() == f"127.0.0.1:{client.sockname()[1]}"
        for s in (client, peer, server):
            s.close()
        assert client.peeraddr() is None and client.sockname() is None

    run(body)


def test_unix_peeraddr_is_the_path(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "p.sock")
    server = socket.bind_unix(path)
    server.listen(1)
    client = socket.connect_unix(path)
    assert client is not None
    assert client.peeraddr() == path
    assert server.sockname() == path
    peer = server.accept()
    assert peer is not None
    assert re.fullmatch(r"<socket: unix/\d+>", str(peer))
    for s in (client, peer, server):
        s.close()


def test_str_and_repr(listener: socket.Socket) -> None:
    fd = listener.rawfd()
    assert str(listener) == f"<socket: tcp4/{fd}>"
    assert listener.fileno() == fd and isinstance(fd, int)
    port = listener.sockname()[1]
    assert repr(listener) == f"<xsock_green.Socket tcp4/{fd} laddr=127.0.0.1:{port}>"
    client = socket.connect("127.0.0.1", port)
    assert client is not None
    assert f"raddr=127.0.0.1:{port}" in repr(client)
    client.close()
    assert str(client) == "<socket: tcp4/closed>"
    assert repr(client) == "<xsock_green.Socket tcp4/closed>"
    assert client.rawfd() == -1
    udp = socket.udp()
    assert str(udp) == f"<socket: udp4/{udp.rawfd()}>"
    udp.close()


def test_context_manager_closes() -> None:
    with socket.tcp() as sock:
        assert sock.rawfd() >= 0
    assert sock.rawfd() == -1
    assert sock.close() is False


def test_open_and_types() -> None:
    sock = socket.open()
    assert (sock.type(), sock.family()) == (socket.TCP, socket.IPV4)
    sock.close()
    dgram = socket.open(socket.UDP, socket.IPV4)
    assert dgram.type() == socket.UDP
    dgram.close()
    unix = socket.unix()
    assert (unix.type(), unix.family()) == (socket.TCP, socket.UNIX)
    unix.close()
    with pytest.raises(ValueError):
        socket.open(socket.ICMP, socket.UNIX)


def test_gevent_keeps_running_during_main_block(listener: socket.Socket) -> None:
    # A greenlet spawned earlier connects while the main greenlet blocks in accept.
    port = listener.sockname()[1]
    dialer = gevent.spawn(socket.connect, "127.0.0.1", port)
    peer = listener.accept({"timeout": 5000})
    assert peer is not None
    client = dialer.get(timeout=5)
    assert client is not None
    client.close()
    peer.close()
