"""Every call on a closed socket returns its failure value (SPEC section 4)."""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable
from typing import Any

import pytest

from xsock_green import Bytes, Socket, socket

CALLS: list[tuple[str, Callable[[Socket], Any], Any]] = [
    ("bind", lambda s: s.bind("127.0.0.1", 0), False),
    ("listen", lambda s: s.listen(), False),
    ("accept", lambda s: s.accept({"timeout": 10}), None),
    ("connect", lambda s: s.connect("127.0.0.1", 9), -1),
    ("send", lambda s: s.send("x"), -1),
    ("send block", lambda s: s.send("x", {"block": True}), -1),
    ("recv", lambda s: s.recv(Bytes(4), 4), (-1, None)),
    ("recv block", lambda s: s.recv(Bytes(4), 4, {"block": True}), (-1, None)),
    ("sendfile", lambda s: s.sendfile(io.BytesIO(b"abc")), -1),
    ("wait", lambda s: s.wait(socket.EV_RECV, 10), -1),
    ("wait poll", lambda s: s.wait(socket.EV_SEND, 0), -1),
    ("ctrl set", lambda s: s.ctrl(socket.CTRL_SET_RECVBUFF, 4096), False),
    ("ctrl get", lambda s: s.ctrl(socket.CTRL_GET_RECVBUFF), None),
    ("kill", lambda s: s.kill(), False),
]


@pytest.mark.parametrize(("name", "call", "failure"), CALLS, ids=[c[0] for c in CALLS])
def test_call_on_closed_tcp_socket(name: str, call: Callable[[Socket], Any], failure: Any) -> None:
    sock = socket.tcp()
    assert sock.close() is True
    assert call(sock) == failure
    assert re.fullmatch(r"<socket: tcp4/closed>: has been closed", str(sock.last_error))


def test_udp_calls_on_closed_socket() -> None:
    sock = socket.udp()
    sock.close()
    assert sock.sendto("x", "127.0.0.1", 9) == -1
    assert "has been closed" in str(sock.last_error)
    assert sock.recvfrom(Bytes(4), 4, {"block": True}) == (-1, None, None, None)
    assert "has been closed" in str(sock.last_error)


def test_close_twice_and_accessors() -> None:
    sock = socket.udp()
    assert sock.close() is True
    assert sock.close() is False
    assert sock.rawfd() == -1
    assert sock.sockname() is None
    assert (sock.type(), sock.family()) == (socket.UDP, socket.IPV4)


def test_close_after_the_descriptor_was_closed_behind_its_back(
    tcp_pair: tuple[Socket, Socket],
) -> None:
    # SPEC: close() never raises; the descriptor is gone either way (EBADF).
    client, server = tcp_pair
    assert client.send(b"x", {"block": True}) == 1
    assert server.recv(Bytes(4), 4, {"block": True})[0] == 1  # its reader exists
    for sock in (server, socket.udp()):
        os.close(sock.rawfd())
        assert sock.close() is True
        assert sock.close() is False
        assert sock.rawfd() == -1
