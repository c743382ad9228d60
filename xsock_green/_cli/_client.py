"""``xsock echo-client``: send lines and print their echoes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

import gevent

from xsock_green import Bytes, Socket, socket

from . import _tls
from ._common import (
    _BUFF_SIZE,
    _DUPLEX_OVER,
    EXIT_FAIL,
    EXIT_OK,
    Endpoint,
    _reason,
    _say,
)


def _messages(args: argparse.Namespace) -> Iterator[bytes]:
    if args.message is not None:
        line = (args.message + "\n").encode("utf-8", "surrogateescape")
        for _ in range(args.count or 1):
            yield line
    else:
        yield from sys.stdin.buffer


def _connect(ep: Endpoint, timeout: int, tls: dict[str, Any] | None = None) -> Socket:
    """A connected socket (TLS with ``tls``: the ``tls``/``server_hostname`` options)."""
    sock = socket.unix() if ep.transport == "unix" else socket.tcp({"family": ep.family})
    opt = {"timeout": timeout, **(tls or {})}
    if ep.transport == "unix":
        result = sock.connect_unix(ep.path, opt)
    else:
        result = sock.connect(ep.host, ep.port, opt)
    if result != 1:
        why = "timed out" if result == 0 else _reason(sock.last_error)
        sock.close()
        raise OSError(f"cannot connect to {ep.address()}: {why}")
    return sock


def _echo_datagram(sock: Socket, ep: Endpoint, line: bytes, buff: Bytes, timeout: int) -> bytes:
    """Send one datagram and return its echo; raises ``OSError`` saying what failed."""
    if sock.sendto(line, ep.host, ep.port, {"block": True, "timeout": timeout}) < 0:
        raise OSError(f"cannot send to {ep.address()}: {_reason(sock.last_error)}")
    n, data, _addr, _port = sock.recvfrom(buff, _BUFF_SIZE, {"block": True, "timeout": timeout})
    if n <= 0 or data is None:
        raise OSError(f"no echo within {timeout} ms" if n == 0 else _reason(sock.last_error))
    return bytes(data)


def _echo_line(sock: Socket, line: bytes, buff: Bytes, timeout: int, out: Any) -> None:
    """Send one line on a stream and copy its echo to ``out``; raises ``OSError``."""
    opt = {"block": True, "timeout": timeout}
    # A line larger than the socket buffers must be read while it is still being
    # sent, or both ends wait for each other: send it from a second greenlet.
    sender = gevent.spawn(sock.send, line, opt) if len(line) > _DUPLEX_OVER else None
    try:
        if sender is None and sock.send(line, opt) < 0:
            raise OSError(f"send failed: {_reason(sock.last_error)}")
        got = 0
        while got < len(line):
            want = min(len(line) - got, _BUFF_SIZE)
            n, data = sock.recv(buff, want, {"block": True, "waitall": True, "timeout": timeout})
            if n < 0 or data is None:
                raise OSError(f"no full echo: {_reason(sock.last_error)}")
            out.write(data.view())
            got += n
        if sender is not None and sender.get() < 0:
            raise OSError(f"send failed: {_reason(sock.last_error)}")
    except TimeoutError:
        raise OSError(f"no echo within {timeout} ms") from None
    finally:
        if sender is not None:
            sender.kill()


def _echo_client(prog: str, args: argparse.Namespace) -> int:
    ep: Endpoint = args.endpoint
    timeout: int = args.timeout
    out = sys.stdout.buffer
    buff = Bytes(_BUFF_SIZE)
    try:
        tls: dict[str, Any] | None = None
        if args.tls:
            tls = {"tls": _tls.client_context(args.cafile)}
            if args.server_hostname:
                tls["server_hostname"] = args.server_hostname
            elif ep.transport == "unix":
                tls["server_hostname"] = "localhost"
        sock = (
            socket.udp({"family": ep.family})
            if ep.transport == "udp"
            else _connect(ep, timeout, tls)
        )
    except OSError as exc:
        _say(prog, str(exc))
        return EXIT_FAIL
    if args.verbose:
        _say(prog, f"connected to {ep.transport} {ep.address()}")
    with sock:
        try:
            for line in _messages(args):
                if ep.transport == "udp":
                    out.write(_echo_datagram(sock, ep, line, buff, timeout))
                else:
                    _echo_line(sock, line, buff, timeout, out)
                out.flush()
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            _say(prog, str(exc))
            return EXIT_FAIL
    return EXIT_OK
