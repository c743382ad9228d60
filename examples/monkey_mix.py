"""Standard ``socket`` code and xsock_green together under ``gevent.monkey.patch_all()``.

Try it::

    python examples/monkey_mix.py --clients 5 --count 20

A program that already uses the standard library on gevent (after
``patch_all()``) can add xsock_green without changes: both wait on the same
hub.  This script runs, in one process and at the same time:

* a server written with the standard ``socket`` module (patched, so each
  ``recv`` yields), echoing with one greenlet per client, talked to by
  xsock_green client greenlets;
* an xsock_green server (``server.start``), talked to by standard
  ``socket`` client greenlets.

It prints ``std server listening on HOST:PORT`` (``--port``, 0 picks a free
one), ``xsock server listening on HOST:PORT`` (always a free port), one
summary line per direction such as ``xsock -> std: 100 echoes correct`` and
ends with ``all echoes correct``.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import socket as std_socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
import gevent.socket  # noqa: E402

from xsock_green import Bytes, Socket, server, socket  # noqa: E402


def std_echo(conn: std_socket.socket) -> None:
    with conn:
        while data := conn.recv(8192):
            conn.sendall(data)


def std_server(listener: std_socket.socket) -> None:
    """A plain standard-library echo server; patch_all() makes it cooperative."""
    handlers = []
    try:
        while True:
            try:
                conn, _addr = listener.accept()
            except OSError:  # the listener was closed
                break
            handlers.append(gevent.spawn(std_echo, conn))
    finally:
        gevent.joinall(handlers, timeout=5)
        gevent.killall(handlers)


def xsock_echo(conn: Socket) -> None:
    """The xsock_green server's handler: one greenlet per connection."""
    buff = Bytes(8192)
    while True:
        recv, data = conn.recv(buff, 8192, {"block": True})
        if recv <= 0 or data is None or conn.send(data, {"block": True}) < 0:
            break


def xsock_client(host: str, port: int, number: int, count: int) -> int:
    """xsock_green talking to the standard-library server."""
    sock = socket.connect(host, port, {"timeout": 5000})
    if sock is None:
        return 0
    buff = Bytes(256)
    correct = 0
    with sock:
        for i in range(count):
            message = f"xsock client {number} says {i}"
            sock.send(message, {"block": True})
            recv, data = sock.recv(buff, len(message), {"block": True, "waitall": True})
            if recv == len(message) and data is not None and data.str() == message:
                correct += 1
    return correct


def std_client(host: str, port: int, number: int, count: int) -> int:
    """The standard library talking to the xsock_green server."""
    correct = 0
    with std_socket.create_connection((host, port), timeout=5) as sock:
        for i in range(count):
            message = f"std client {number} says {i}".encode()
            sock.sendall(message)
            got = b""
            while len(got) < len(message):
                chunk = sock.recv(len(message) - len(got))
                if not chunk:
                    break
                got += chunk
            if got == message:
                correct += 1
    return correct


def main(host: str, port: int, clients: int, count: int) -> int:
    patched = std_socket.socket is gevent.socket.socket
    print(f"standard socket patched by gevent: {patched}", flush=True)
    listener = std_socket.create_server((host, port))
    std_port = listener.getsockname()[1]
    print(f"std server listening on {host}:{std_port}", flush=True)
    xsock_server = server.start(xsock_echo, host, 0, {"backlog": 64})
    xsock_port = xsock_server.sockname()[1]
    print(f"xsock server listening on {host}:{xsock_port}", flush=True)
    std = gevent.spawn(std_server, listener)
    to_std = [gevent.spawn(xsock_client, host, std_port, n, count) for n in range(clients)]
    to_xsock = [gevent.spawn(std_client, host, xsock_port, n, count) for n in range(clients)]
    gevent.joinall(to_std + to_xsock, timeout=60)
    ok_std = sum(g.value or 0 for g in to_std)
    ok_xsock = sum(g.value or 0 for g in to_xsock)
    gevent.killall(to_std + to_xsock)
    listener.close()
    xsock_server.stop(5000)
    std.join(timeout=10)
    std.kill()
    want = clients * count
    print(f"xsock -> std: {ok_std} echoes correct", flush=True)
    print(f"std -> xsock: {ok_xsock} echoes correct", flush=True)
    if patched and ok_std == want and ok_xsock == want:
        print("all echoes correct", flush=True)
        return 0
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="the std server's port; 0 = free")
    parser.add_argument("--clients", type=int, default=5, help="clients in each direction")
    parser.add_argument("--count", type=int, default=20, help="messages per client")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.clients, args.count))
