"""N concurrent TCP connections to one process, each echoing.

    python scale.py N            the server: prints one JSON object
    python scale.py clients PORT N   (started by the server)

The server raises its soft ``RLIMIT_NOFILE`` to the hard limit, listens,
and starts a second process that opens N connections to it (with
xsock_green too), sends a message on every one while all N are open and
checks every echo.  The server serves each connection from its own
greenlet.  Once all N have echoed, the server measures itself, tells the
client process to hang up, waits until every handler has seen the end of
the stream, and closes everything.  The JSON object holds the count, the
seconds taken, the server's resident memory per connection (the growth of
VmRSS from before the first connection to when all N were open and had
echoed, divided by N: a socket, a greenlet and its 64-byte buffer), and the
descriptor and watcher counts before and after.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import signal
import subprocess
import sys
import time

import gevent
import gevent.event

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


def raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def clients(port: int, count: int) -> int:
    """The peer process: N connections, one message each, hang up on request."""
    raise_fd_limit()
    conns: list[Socket] = []
    for _ in range(count):
        client = socket.tcp()
        assert client.connect("127.0.0.1", port, timeout=TIMEOUT_MS) == 1, client.last_error
        conns.append(client)
    for i, client in enumerate(conns):
        assert client.send(f"message {i:05d}", block=True) == 13
    buff = Bytes(64)
    for i, client in enumerate(conns):
        got, data = client.recv(buff, 13, {"block": True, "waitall": True, "timeout": TIMEOUT_MS})
        assert data is not None and data.str() == f"message {i:05d}", (got, client.last_error)
    print("echoed", flush=True)
    sys.stdin.readline()  # the server has measured: hang up
    for client in conns:
        assert client.close()
    return 0


def serve(count: int) -> int:
    raise_fd_limit()
    loop = gevent.get_hub().loop
    listener = socket.bind("127.0.0.1", 0)
    assert listener.listen(4096)
    port = listener.sockname()[1]
    echoed = gevent.event.Event()
    served = [0]

    def handle(conn: Socket) -> None:
        with conn:
            buff = Bytes(64)
            n, data = conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
            assert n > 0 and data is not None, conn.last_error
            assert conn.send(data, block=True, timeout=TIMEOUT_MS) == n
            served[0] += 1
            if served[0] == count:
                echoed.set()
            # Hold the connection until the client hangs up.
            assert conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS}) == (-1, None)

    gc.collect()
    fds, watchers = fd_count(), loop.activecnt
    before = rss()
    started = time.perf_counter()
    peer = subprocess.Popen(
        [sys.executable, __file__, "clients", str(port), str(count)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    handlers: list[gevent.Greenlet] = []
    try:
        for _ in range(count):
            conn = listener.accept(timeout=TIMEOUT_MS)
            assert conn is not None, listener.last_error
            handlers.append(gevent.spawn(handle, conn))
        assert echoed.wait(TIMEOUT_MS / 1000), f"{served[0]} of {count} echoed"
        gc.collect()
        peak = rss()
        assert fd_count() >= fds + count
        assert peer.stdin is not None
        peer.stdin.write("hang up\n")
        peer.stdin.flush()
        gevent.joinall(handlers, timeout=TIMEOUT_MS / 1000, raise_error=True)
        assert all(h.successful() for h in handlers)
        seconds = time.perf_counter() - started
    finally:
        listener.close()
        status = peer.wait(timeout=TIMEOUT_MS / 1000)
        if peer.stdin is not None:
            peer.stdin.close()
    assert status == 0, f"client process exited with {status}"
    handlers.clear()
    gc.collect()
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


def main() -> int:
    signal.alarm(120)
    if sys.argv[1] == "clients":
        return clients(int(sys.argv[2]), int(sys.argv[3]))
    return serve(int(sys.argv[1]))


if __name__ == "__main__":
    sys.exit(main())
