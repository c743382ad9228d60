"""The shortest proof that the package works end to end."""

from __future__ import annotations

from conftest import Runner, pair

from xsock_green import Bytes, Socket, socket


def test_echo_round_trip(run: Runner, listener: Socket) -> None:
    def body() -> None:
        client, server = pair(listener)
        with client, server:
            assert client.send("hello world..", {"block": True}) == 13
            buff = Bytes(64)
            n, data = server.recv(buff, 64, {"block": True})
            assert n == 13 and data == b"hello world.."
            assert server.send(data, block=True) == 13
            n, data = client.recv(buff, 13, block=True, waitall=True)
            assert data is not None and data.str() == "hello world.."

    run(body)


def test_closed_socket_reports_failure() -> None:
    sock = socket.tcp()
    assert sock.close() is True
    assert sock.close() is False
    assert sock.send("x") == -1
    assert str(sock.last_error) == "<socket: tcp4/closed>: has been closed"
