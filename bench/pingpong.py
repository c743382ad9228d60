"""In-process 1 KiB ping-pong between two xsock_green sockets: the request path's cost.

    python -m bench.pingpong LABEL [ROUND_TRIPS]

Both ends run in this process (the server in a greenlet), so every
instruction of a round trip is xsock_green's, gevent's or the kernel's.
Prints CPU and wall microseconds per round trip.  For instruction counts,
run it under ``valgrind --tool=callgrind`` at two sizes and take the
difference (docs/BENCHMARKS.md, "mypyc experiment").
"""

from __future__ import annotations

import sys
import time

import gevent

from xsock_green import Bytes, socket


def main() -> None:
    label = sys.argv[1] if len(sys.argv) > 1 else "pingpong"
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 30000
    srv = socket.bind("127.0.0.1", 0)
    srv.listen(8)
    c = socket.connect("127.0.0.1", srv.sockname()[1])
    s = srv.accept()
    assert c is not None and s is not None
    c.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
    s.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
    msg = b"x" * 1024

    def server() -> None:
        buf = Bytes(65536)
        while True:
            n, data = s.recv(buf, 65536, {"block": True})
            if n <= 0:
                return
            s.send(data, {"block": True})

    g = gevent.spawn(server)
    buf = Bytes(65536)
    t0, w0 = time.process_time(), time.perf_counter()
    for _ in range(rounds):
        c.send(msg, {"block": True})
        got = 0
        while got < 1024:
            n, _data = c.recv(buf, 65536, {"block": True})
            got += n
    t1, w1 = time.process_time(), time.perf_counter()
    cpu, wall = (t1 - t0) / rounds * 1e6, (w1 - w0) / rounds * 1e6
    print(f"{label}: {cpu:.2f} us cpu/rt  {wall:.2f} us wall/rt")
    c.close()
    g.join()
    s.close()
    srv.close()


if __name__ == "__main__":
    main()
