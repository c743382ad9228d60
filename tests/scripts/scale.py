"""N concurrent TCP connections on loopback in one process, each echoing.

    python scale.py N

Raises the soft ``RLIMIT_NOFILE`` to the hard limit, opens N client
connections to its own listener (a greenlet per accepted connection echoes),
has every client send a message while all N are open, checks every echo,
then closes everything.  Prints one JSON object: the count, the seconds
taken, the resident memory per connection (the growth of VmRSS from before
the first connection to when all N were open and had echoed, divided by N;
a "connection" is both its ends, as both live in this process), and the
descriptor and watcher counts before and after.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import signal
import sys
import time

import gevent

from xsock_green import Bytes, Socket, socket

TIMEOUT_MS = 20_000


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def handle(conn: Socket) -> None:
    with conn:
        buff = Bytes(64)
        n, data = conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
        assert n > 0 and data is not None, conn.last_error
        assert conn.send(data, block=True, timeout=TIMEOUT_MS) == n
        # Hold the connection until the client hangs up.
        assert conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS}) == (-1, None)


def main() -> int:
    count = int(sys.argv[1])
    signal.alarm(120)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = gevent.get_hub().loop
    listener = socket.bind("127.0.0.1", 0)
    assert listener.listen(4096)
    port = listener.sockname()[1]
    handlers: list[gevent.Greenlet] = []

    def acceptor(n: int) -> None:
        for _ in range(n):
            conn = listener.accept(timeout=TIMEOUT_MS)
            assert conn is not None, listener.last_error
            handlers.append(gevent.spawn(handle, conn))

    def round_trip(n: int) -> float:
        """Open n connections, echo on all of them while all are open, close them."""
        accepting = gevent.spawn(acceptor, n)
        clients: list[Socket] = []
        for _ in range(n):
            client = socket.tcp()
            assert client.connect("127.0.0.1", port, timeout=TIMEOUT_MS) == 1, client.last_error
            clients.append(client)
        accepting.get(timeout=TIMEOUT_MS / 1000)
        for i, client in enumerate(clients):
            assert client.send(f"message {i:05d}", block=True) == 13
        buff = Bytes(64)
        for i, client in enumerate(clients):
            got, data = client.recv(
                buff, 13, {"block": True, "waitall": True, "timeout": TIMEOUT_MS}
            )
            assert data is not None and data.str() == f"message {i:05d}", (got, client.last_error)
        gc.collect()
        peak = rss()
        assert fd_count() >= 2 * n
        for client in clients:
            assert client.close()
        gevent.joinall(handlers, timeout=TIMEOUT_MS / 1000, raise_error=True)
        assert all(h.successful() for h in handlers)
        handlers.clear()
        return peak

    round_trip(100)  # warm up every code path before measuring
    gc.collect()
    fds, watchers = fd_count(), loop.activecnt
    before = rss()
    started = time.perf_counter()
    peak = round_trip(count)
    seconds = time.perf_counter() - started
    listener.close()
    result = {
        "connections": count,
        "seconds": round(seconds, 2),
        "rss_per_connection": (peak - before) // count,
        "fds_before": fds,
        "fds_after": fd_count(),
        "watchers_before": watchers,
        "watchers_after": loop.activecnt,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
