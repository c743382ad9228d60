"""An echo server that runs out of file descriptors, then recovers.

    python emfile_server.py CLIENTS

It listens, prints ``PORT <n>``, lowers its own ``RLIMIT_NOFILE`` and fills
every free descriptor, so the next ``accept()`` fails with ``EMFILE``.  The
server loop then does what a careful server does: on ``None`` with
``last_error.errno == EMFILE`` it waits until a descriptor is freed (first
by dropping one of its fillers, then each time a connection ends) and
accepts again.  It serves CLIENTS connections, one echo each, and prints
``OK served=<n> emfile=<n> immediate=<bool>``.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import sys
import time

import gevent
import gevent.event

from xsock_green import Bytes, Socket, socket

TIMEOUT_MS = 10_000


def fill_descriptors() -> list[int]:
    """Lower the soft limit a little above what is open, then use up the rest."""
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = highest + 8
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    fillers: list[int] = []
    for _ in range(limit):
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE, exc
            return fillers
    raise AssertionError("the descriptor table never filled")


def handle(conn: Socket, freed: gevent.event.Event) -> None:
    try:
        with conn:
            buff = Bytes(256)
            n, data = conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
            assert n > 0 and data is not None, conn.last_error
            assert conn.send(data, block=True, timeout=TIMEOUT_MS) == n
            # Wait for the client to hang up before giving the descriptor back.
            conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
    finally:
        freed.set()


def main() -> int:
    clients = int(sys.argv[1])
    signal.alarm(60)
    listener = socket.bind("127.0.0.1", 0)
    assert listener.listen(64)
    fillers = fill_descriptors()
    print("PORT", listener.sockname()[1], flush=True)
    freed = gevent.event.Event()
    handlers = []
    served = emfile = 0
    immediate = True
    for _ in range(100 * clients):
        if served == clients:
            break
        # A client is queued before the clock starts: accept must not wait.
        assert listener.wait(socket.EV_ACPT, TIMEOUT_MS) == socket.EV_ACPT
        started = time.monotonic()
        conn = listener.accept(timeout=TIMEOUT_MS)
        if conn is None:
            err = listener.last_error
            assert err is not None and err.errno == errno.EMFILE, err
            assert "too many open files" in str(err).lower(), err
            immediate = immediate and time.monotonic() - started < 0.1
            emfile += 1
            if fillers:
                os.close(fillers.pop())  # descriptors free up elsewhere
            else:
                assert freed.wait(TIMEOUT_MS / 1000), "no connection ever ended"
                freed.clear()
            continue
        served += 1
        handlers.append(gevent.spawn(handle, conn, freed))
    gevent.joinall(handlers, timeout=TIMEOUT_MS / 1000, raise_error=True)
    listener.close()
    for fd in fillers:
        os.close(fd)
    print(f"OK served={served} emfile={emfile} immediate={immediate}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
