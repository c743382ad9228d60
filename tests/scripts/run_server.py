"""A program built on ``server.run``, for test_server_processes.py.

    python run_server.py WORKERS STOP_TIMEOUT_MS

Each connection is greeted with the serving process's pid (``<pid>\\n``) and
then echoed until end of stream.  ``ready`` prints ``READY <port>`` (port 0
is asked for); when ``run`` returns the script prints ``STOPPED <signal>``.
Warnings (a worker restarted) go to stderr.  An alarm ends a forgotten run.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from xsock_green import Bytes, Socket, server


def greet_and_echo(sock: Socket) -> None:
    sock.send(f"{os.getpid()}\n", {"block": True})
    buff = Bytes(65536)
    while True:
        n, data = sock.recv(buff, None, {"block": True})
        if n <= 0 or data is None or sock.send(data, {"block": True}) < 0:
            return


def ready(address: Any) -> None:
    print("READY", address[1], flush=True)


def main() -> int:
    workers, stop_timeout = int(sys.argv[1]), int(sys.argv[2])
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    signal.alarm(120)
    name = server.run(
        greet_and_echo,
        "127.0.0.1",
        0,
        {"workers": workers, "stop_timeout": stop_timeout, "ready": ready},
    )
    print("STOPPED", name, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
