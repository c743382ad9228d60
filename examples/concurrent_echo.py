"""A concurrent TCP echo server (one greenlet per client) and many client greenlets.

Try it::

    python examples/concurrent_echo.py --clients 50 --count 100

One process runs both sides on gevent's hub: ``server.start`` accepts in
its own greenlet and runs the handler in a new greenlet per connection, each
echoing with plain block-mode ``recv`` and ``send``; ``--clients`` client
greenlets each send ``--count`` distinct messages and check every echo.
While one greenlet waits, the others run, so the code reads as if it were
blocking.  It prints
``Server listening on 127.0.0.1:PORT`` first (``--port 0``, the default,
picks a free port) and ends with a summary such as
``50 clients x 100 messages: 5000 echoes correct in 0.41 s``.
"""

from __future__ import annotations

import argparse
import sys
import time

import gevent

from xsock_green import Bytes, Socket, server, socket


def handle(client: Socket) -> None:
    """One greenlet per connection: echo until the client closes (the server closes it)."""
    buff = Bytes(8192)
    while True:
        recv, data = client.recv(buff, 8192, {"block": True})
        if recv <= 0 or data is None or client.send(data, {"block": True}) < 0:
            break


def run_client(host: str, port: int, number: int, count: int) -> int:
    """Send ``count`` messages and check each echo; returns how many were right."""
    sock = socket.connect(host, port, {"timeout": 5000})
    if sock is None:
        return 0
    buff = Bytes(256)
    correct = 0
    with sock:
        for i in range(count):
            message = f"client {number} message {i}"
            sock.send(message, {"block": True})
            recv, data = sock.recv(
                buff, len(message), {"block": True, "waitall": True, "timeout": 5000}
            )
            if recv == len(message) and data is not None and data.str() == message:
                correct += 1
    return correct


def main(host: str, port: int, clients: int, count: int) -> int:
    srv = server.start(handle, host, port, {"backlog": 128})
    port = srv.sockname()[1]
    print(f"Server listening on {host}:{port}", flush=True)
    started = time.perf_counter()
    glets = [gevent.spawn(run_client, host, port, n, count) for n in range(clients)]
    gevent.joinall(glets, timeout=60)
    elapsed = time.perf_counter() - started
    correct = sum(g.value or 0 for g in glets)
    gevent.killall(glets)
    srv.stop(5000)  # the clients are gone: every handler has ended already
    print(f"{clients} clients x {count} messages: {correct} echoes correct in {elapsed:.2f} s")
    return 0 if correct == clients * count else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--clients", type=int, default=50, help="client greenlets")
    parser.add_argument("--count", type=int, default=100, help="messages per client")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.clients, args.count))
