"""``xsock echo-server``: echo every byte (tcp, unix) or datagram (udp) back."""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import Any

import gevent
from gevent.event import Event

from xsock_green import Bytes, Socket, socket

from ._common import (
    _BUFF_SIZE,
    _IO_TIMEOUT,
    EXIT_FAIL,
    EXIT_OK,
    Endpoint,
    Log,
    _bind_udp,
    _bound,
    _listen,
    _on_signals,
    _reason,
    _say,
    _stop_all,
)


def _echo_stream(conn: Socket, log: Log | None, name: str) -> None:
    """Echo one stream connection until end of stream (one greenlet per connection)."""
    buff = Bytes(_BUFF_SIZE)
    total = 0
    try:
        while True:
            n, data = conn.recv(buff, _BUFF_SIZE, {"block": True})
            if n <= 0 or data is None or conn.send(data, {"block": True}) < 0:
                break
            total += n
    finally:
        err = conn.last_error
        conn.close()
        if log is not None:
            why = f": {_reason(err)}" if err is not None and err.errno is not None else ""
            log(f"{name} closed after {total} bytes{why}")


def _accept_loop(server: Socket, tcp: bool, conns: set[Any], log: Log | None) -> None:
    """Accept clients and give each its own echo greenlet."""
    number = 0
    while True:
        conn = server.accept()
        if conn is None:
            if server.rawfd() == -1:
                return
            # EMFILE and friends: the listener stays readable, so back off.
            if log is not None:
                log(f"accept failed: {_reason(server.last_error)}")
            gevent.sleep(0.05)
            continue
        number += 1
        if tcp:
            conn.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
        name = f"connection {number}"
        if log is not None:
            log(f"{name} from {conn.peeraddr() or 'a unix client'}")
        glet = gevent.spawn(_echo_stream, conn, log, name)
        conns.add(glet)
        glet.link(conns.discard)


def _echo_datagrams(sock: Socket, log: Log | None, fatal: list[str]) -> None:
    buff = Bytes(_BUFF_SIZE)
    while True:
        n, data, addr, port = sock.recvfrom(buff, _BUFF_SIZE, {"block": True})
        if n < 0 or data is None or addr is None or port is None:
            if sock.rawfd() != -1:
                fatal.append(f"recvfrom failed: {_reason(sock.last_error)}")
            return
        if log is not None:
            peer = f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"
            log(f"datagram of {n} bytes from {peer}")
        sock.sendto(data, addr, port, {"block": True, "timeout": _IO_TIMEOUT})


# -- echo-server ---------------------------------------------------------------


def _echo_server(prog: str, args: argparse.Namespace) -> int:
    ep: Endpoint = args.endpoint
    log: Log | None = (lambda msg: _say(prog, msg)) if args.verbose else None
    try:
        sock = _bind_udp(ep) if ep.transport == "udp" else _listen(ep, 128)
    except OSError as exc:
        hint = ""
        if ep.transport == "unix" and os.path.exists(ep.path):
            hint = " (the file exists; remove it if no server uses it)"
        _say(prog, f"{exc}{hint}")
        return EXIT_FAIL
    stop = Event()
    fatal: list[str] = []
    conns: set[Any] = set()
    with _on_signals(stop) as got:
        print(f"listening on {_bound(ep, sock)}", flush=True)
        if ep.transport == "udp":
            serving = gevent.spawn(_echo_datagrams, sock, log, fatal)
        else:
            serving = gevent.spawn(_accept_loop, sock, ep.transport == "tcp", conns, log)
        serving.link(lambda _glet: stop.set())
        try:
            stop.wait()
        finally:
            sock.close()
            _stop_all([serving, *conns])
            if ep.transport == "unix":
                with contextlib.suppress(OSError):
                    os.unlink(ep.path)
    if serving.exception is not None:
        fatal.append(f"server failed: {serving.exception!r}")
    if fatal:
        _say(prog, fatal[0])
        return EXIT_FAIL
    _say(prog, f"stopped by {got[0]}" if got else "stopped")
    return EXIT_OK
