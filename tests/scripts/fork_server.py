"""A listener bound before fork() and served by both processes.

    python fork_server.py os|gevent

The hub exists and has run (and the listener has a watcher) before the
fork, as in a real server that forks workers late.  ``os`` forks with the
plain ``os.fork()`` a user would call; ``gevent`` with ``gevent.fork()``,
which reinitialises the hub in the child.  Each process accepts exactly one
connection, closes its copy of the listener, and echoes ``<pid> <message>``
until end of stream, so two clients are served by two different processes.
The parent then reaps the child and prints ``CHILD <exit code>``.
"""

from __future__ import annotations

import os
import signal
import sys

import gevent

from xsock_green import Bytes, socket

TIMEOUT_MS = 10_000


def serve_one(listener: socket.Socket) -> None:
    conn = listener.accept(timeout=TIMEOUT_MS)
    assert conn is not None, listener.last_error
    assert listener.close()
    with conn:
        buff = Bytes(256)
        while True:
            n, data = conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
            if n < 0:
                return
            assert data is not None
            reply = f"{os.getpid()} {data.str()}"
            assert conn.send(reply, block=True, timeout=TIMEOUT_MS) == len(reply)


def main() -> int:
    how = sys.argv[1]
    signal.alarm(60)
    listener = socket.bind("127.0.0.1", 0)
    assert listener.listen(16)
    # The hub runs and a watcher on the listener is made before forking.
    gevent.sleep(0.001)
    assert listener.accept(timeout=1) is None
    print("PORT", listener.sockname()[1], flush=True)
    pid = os.fork() if how == "os" else gevent.fork()
    serve_one(listener)
    if pid == 0:
        return 0
    _, status = os.waitpid(pid, 0)
    print("CHILD", os.waitstatus_to_exitcode(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
