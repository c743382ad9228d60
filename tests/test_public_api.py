"""Every public name exists, is documented and reports its public module."""

from __future__ import annotations

import inspect
import subprocess
import sys

import xsock_green
from xsock_green import socket


def test_package_all_is_documented() -> None:
    assert xsock_green.__doc__
    for name in xsock_green.__all__:
        obj = getattr(xsock_green, name)
        if name == "__version__":
            assert isinstance(obj, str) and obj.count(".") == 2
            continue
        assert inspect.getdoc(obj), f"xsock_green.{name} has no docstring"


def test_socket_module_names() -> None:
    constants = {
        "TCP": 1, "UDP": 2, "ICMP": 3, "IPV4": 1, "IPV6": 2, "UNIX": 3,
        "EV_RECV": 1, "EV_SEND": 2, "EV_CONN": 2, "EV_ACPT": 1,
        "CTRL_SET_BLOCK": 0, "CTRL_GET_BLOCK": 1, "CTRL_SET_RECVBUFF": 2,
        "CTRL_GET_RECVBUFF": 3, "CTRL_SET_SENDBUFF": 4, "CTRL_GET_SENDBUFF": 5,
        "CTRL_SET_TCP_NODELAY": 6, "CTRL_GET_TCP_NODELAY": 7,
        "CTRL_SET_TCP_KEEPINTVL": 8, "CTRL_SET_KEEPALIVE": 9, "CTRL_SET_NOSIGPIPE": 10,
    }  # fmt: skip
    for name, value in constants.items():
        assert getattr(socket, name) == value and name in socket.__all__
    for name in socket.__all__:
        obj = getattr(socket, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"socket.{name} has no docstring"
            if inspect.isfunction(obj):
                assert obj.__module__ == "xsock_green.socket"


def test_socket_methods_documented() -> None:
    methods = [
        "bind", "bind_unix", "listen", "accept", "connect", "connect_unix", "send", "recv",
        "sendto", "recvfrom", "sendfile", "wait", "ctrl", "close", "kill", "peeraddr",
        "type", "family", "rawfd", "fileno", "sockname", "peername", "last_error",
    ]  # fmt: skip
    for name in methods:
        assert inspect.getdoc(getattr(xsock_green.Socket, name)), name


def test_reader_methods_documented() -> None:
    assert "Reader" in xsock_green.__all__
    for name in ["readline", "readuntil", "readexactly", "read", "buffered", "sock"]:
        assert inspect.getdoc(getattr(xsock_green.Reader, name)), name
    assert "last_error" in socket.__all__ and inspect.getdoc(socket.last_error)


def test_scheduler_and_poller_names() -> None:
    for module in (xsock_green.scheduler, xsock_green.poller):
        assert inspect.getdoc(module)
        for name in module.__all__:
            obj = getattr(module, name)
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"
            assert obj.__module__ == module.__name__


def test_server_names() -> None:
    server = xsock_green.server
    assert "server" in xsock_green.__all__
    assert inspect.getdoc(server)
    assert sorted(server.__all__) == ["Server", "run", "start", "start_udp", "start_unix"]
    for name in server.__all__:
        obj = getattr(server, name)
        assert inspect.getdoc(obj), f"server.{name} has no docstring"
        assert obj.__module__ == "xsock_green.server", name
    for method in ("sockname", "connections", "serve_forever", "closed", "stop"):
        assert inspect.getdoc(getattr(server.Server, method)), method


def test_bytes_alias_is_not_public() -> None:
    assert xsock_green.bytes is xsock_green.Bytes
    assert "bytes" not in xsock_green.__all__


def test_import_does_not_monkey_patch() -> None:
    code = (
        "import socket, threading, xsock_green, gevent.monkey;"
        "assert not gevent.monkey.is_anything_patched();"
        "assert socket.socket.__module__ == 'socket', socket.socket.__module__;"
        "print('clean')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "clean"
