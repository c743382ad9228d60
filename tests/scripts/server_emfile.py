"""``server.start`` running out of file descriptors, twice, for test_server_processes.py.

    python server_emfile.py

It starts an echo server, prints ``PORT <n>``, lowers its own
``RLIMIT_NOFILE`` and fills every free descriptor, so the accept loop's
``accept()`` fails with ``EMFILE`` as soon as the test's client is queued.
Once the server has logged the failure, the script measures its own CPU time
over ``WINDOW`` seconds of failing accepts, prints ``BURST <n> cpu=<s>``,
then frees descriptors: the server must accept and echo by itself.  After
the first echo it fills the table again and prints ``AGAIN``, so the test's
second client makes a second burst.  It ends with
``OK warnings=<n> window=<s>`` and status 0.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import sys
import time

import gevent
import gevent.event

from xsock_green import Bytes, Socket, server

WINDOW = 1.0
TIMEOUT = 20.0


class Watch(logging.Handler):
    """Counts the server's log records; wakes the script at each."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.event = gevent.event.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.event.set()


def fill_descriptors() -> list[int]:
    """Lower the soft limit a little above what is open, then use up the rest."""
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 8, hard))
    fillers: list[int] = []
    while True:
        try:
            fillers.append(os.open(os.devnull, os.O_RDONLY))
        except OSError as exc:
            assert exc.errno == errno.EMFILE, exc
            return fillers


def main() -> int:
    signal.alarm(60)
    watch = Watch()
    log = logging.getLogger("xsock_green.server")
    log.addHandler(watch)
    log.propagate = False
    served = gevent.event.Event()

    def echo_once(sock: Socket) -> None:
        buff = Bytes(256)
        n, data = sock.recv(buff, None, {"block": True, "timeout": TIMEOUT * 1000})
        assert n > 0 and data is not None, sock.last_error
        sock.send(data, {"block": True})
        served.set()

    srv = server.start(echo_once, "127.0.0.1", 0)
    print("PORT", srv.sockname()[1], flush=True)
    fillers = fill_descriptors()
    for burst in (1, 2):
        if burst == 2:
            fillers += fill_descriptors()
            print("AGAIN", flush=True)
        assert watch.event.wait(TIMEOUT), "the accept loop never reported a failure"
        watch.event.clear()
        record = watch.records[-1]
        assert "too many open files" in record.getMessage(), record.getMessage()
        started = time.process_time()
        gevent.sleep(WINDOW)  # the measured window: accepts keep failing meanwhile
        cpu = time.process_time() - started
        print(f"BURST {burst} cpu={cpu:.4f}", flush=True)
        assert srv.connections() == 0 and not served.is_set()
        for _ in range(4):
            os.close(fillers.pop())
        assert served.wait(TIMEOUT), "no accept after descriptors were freed"
        served.clear()
        deadline = time.monotonic() + TIMEOUT
        while srv.connections():  # its descriptor is free again before the refill
            assert time.monotonic() < deadline
            gevent.sleep(0.001)
    srv.stop(int(TIMEOUT * 1000))
    for fd in fillers:
        os.close(fd)
    print(f"OK warnings={len(watch.records)} window={WINDOW}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
