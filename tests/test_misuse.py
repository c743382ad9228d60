"""Bad input raises at once and leaves the socket working."""

from __future__ import annotations

import os

import pytest

from xsock_green import Bytes, Socket, socket


def still_works(client: Socket, server: Socket) -> None:
    assert client.send("still", {"block": True}) == 5
    _n, data = server.recv(Bytes(8), 5, {"block": True, "waitall": True})
    assert data == b"still"


def test_bad_ports() -> None:
    with pytest.raises(ValueError, match="'port' must be 0..65535, got 70000"):
        socket.bind("127.0.0.1", 70000)
    with pytest.raises(ValueError, match="'port'"):
        socket.connect("127.0.0.1", -1)
    with pytest.raises(TypeError, match="'port' must be an int"):
        socket.connect("127.0.0.1", "80")  # type: ignore[arg-type]
    sock = socket.tcp()
    with pytest.raises(ValueError):
        sock.bind("127.0.0.1", 65536)
    assert sock.bind("127.0.0.1", 0) is True  # the socket was not harmed
    sock.close()


def test_bad_recv_arguments(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    client.send("abc", {"block": True})
    with pytest.raises(ValueError, match="'size' must be >= 0"):
        server.recv(Bytes(8), -1)
    with pytest.raises(ValueError, match="larger than the buffer"):
        server.recv(Bytes(8), 9)
    with pytest.raises(ValueError, match="larger than the buffer"):
        server.recv(Bytes(8), 8, {"start": 2})
    with pytest.raises(TypeError, match="read-only"):
        server.recv(Bytes("readonly"), 4, {"block": True})
    with pytest.raises(TypeError, match="must be a Bytes"):
        server.recv(bytearray(8), 8)  # type: ignore[arg-type]
    _n, data = server.recv(Bytes(8), 3, {"block": True, "waitall": True})
    assert data == b"abc"  # nothing was consumed by the refused calls
    still_works(client, server)


def test_bad_send_data(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    for bad in (42, None, ["a"], 3.5):
        with pytest.raises(TypeError, match="data must be str, bytes"):
            client.send(bad)
    still_works(client, server)


def test_send_accepts_every_bytes_like(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    parts: list[object] = ["s", b"b", bytearray(b"a"), memoryview(b"m"), Bytes("B")]
    for part in parts:
        assert client.send(part, {"block": True}) == 1
    _n, data = server.recv(Bytes(8), 5, {"block": True, "waitall": True})
    assert data == b"sbamB"


def test_surrogateescape_round_trip(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    raw = b"\xff\xfe ok \x80"
    text = raw.decode("utf-8", "surrogateescape")
    assert client.send(text, {"block": True}) == len(raw)
    _n, data = server.recv(Bytes(16), len(raw), {"block": True, "waitall": True})
    assert data is not None and data.str() == text and bytes(data) == raw


def test_udp_calls_on_tcp(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    with pytest.raises(TypeError, match=r"sendto\(\) is for UDP sockets"):
        client.sendto("x", "127.0.0.1", 9)
    with pytest.raises(TypeError, match=r"recvfrom\(\) is for UDP sockets"):
        client.recvfrom(Bytes(4), 4)
    still_works(client, server)


def test_unix_path_too_long(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "x" * 120)
    with pytest.raises(ValueError, match="limit is 107"):
        socket.bind_unix(path)
    sock = socket.unix()
    with pytest.raises(ValueError, match="limit is 107"):
        sock.connect_unix(path)
    ok = os.path.join(short_tmp, "ok.sock")
    assert sock.bind_unix(ok) is True
    sock.close()


def test_wrong_family_calls() -> None:
    unix = socket.unix()
    with pytest.raises(TypeError, match="unix socket"):
        unix.bind("127.0.0.1", 0)
    unix.close()
    tcp = socket.tcp()
    with pytest.raises(TypeError, match="not a unix socket"):
        tcp.bind_unix("/tmp/nope")
    tcp.close()


def test_bad_wait_and_ctrl(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    with pytest.raises(ValueError, match="'events' must be 1..3"):
        client.wait(4, 0)
    with pytest.raises(ValueError, match="'timeout'"):
        client.wait(socket.EV_RECV, -5)
    with pytest.raises(ValueError, match="'code' must be 0..10"):
        client.ctrl(42, 1)
    with pytest.raises(ValueError, match="'value' must be 0.."):
        client.ctrl(socket.CTRL_SET_RECVBUFF, -1)
    with pytest.raises(TypeError, match="takes a bool"):
        client.ctrl(socket.CTRL_SET_BLOCK, "yes")
    still_works(client, server)


def test_bind_failure_names_address(listener: Socket) -> None:
    port = listener.sockname()[1]
    with pytest.raises(OSError, match=rf"cannot bind 127.0.0.1:{port}: address already in use"):
        socket.bind("127.0.0.1", port)


def test_bind_unix_never_deletes(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "taken")
    with open(path, "w") as f:
        f.write("keep me")
    with pytest.raises(OSError, match="cannot bind .*address already in use"):
        socket.bind_unix(path)
    with open(path) as f:
        assert f.read() == "keep me"
