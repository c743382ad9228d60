"""Legacy programs under ``gevent.monkey.patch_all()``, one per process.

    python legacy.py SCENARIO WHEN

SCENARIO is ``echo`` (xsock_green server and clients), ``threads`` (an
xsock_green server serving clients written with the standard ``socket``
module and ``threading``) or ``socketserver`` (xsock_green clients of a
``socketserver.ThreadingTCPServer``).  WHEN is ``before`` (patch_all() is the
first thing the program does, before importing xsock_green) or ``after``
(xsock_green is imported and a socket made before patching).  The script
prints one line starting with ``OK`` when every check passed; a failed
check is an uncaught exception and a non-zero exit status.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

TIMEOUT_MS = 10_000
CLIENTS = 20
ROUNDS = 3


def main() -> int:
    scenario, when = sys.argv[1], sys.argv[2]
    signal.alarm(60)  # a last resort: never outlive the test that started us
    if when == "before":
        from gevent import monkey

        monkey.patch_all()

    import gevent.monkey

    from xsock_green import socket as xsocket

    early: Any = None
    if when == "after":
        assert not gevent.monkey.is_anything_patched(), "importing xsock_green patched something"
        early = xsocket.bind("127.0.0.1", 0) if scenario != "socketserver" else xsocket.tcp()
        gevent.monkey.patch_all()
    assert gevent.monkey.is_module_patched("socket")
    assert gevent.monkey.is_module_patched("threading")
    run = {"echo": echo, "threads": threads, "socketserver": socketserver_clients}[scenario]
    print("OK", run(early), flush=True)
    return 0


def handle(conn: Any) -> int:
    """Echo until end of stream; returns the bytes echoed."""
    from xsock_green import Bytes

    total = 0
    with conn:
        buff = Bytes(4096)
        while True:
            n, data = conn.recv(buff, None, {"block": True, "timeout": TIMEOUT_MS})
            if n < 0:
                return total
            assert conn.send(data, block=True, timeout=TIMEOUT_MS) == n
            total += n


def serve(listener: Any, count: int) -> Any:
    """Accept ``count`` clients, a greenlet each; returns the server greenlet."""
    import gevent

    def loop() -> int:
        handlers = []
        for _ in range(count):
            conn = listener.accept(timeout=TIMEOUT_MS)
            assert conn is not None, listener.last_error
            handlers.append(gevent.spawn(handle, conn))
        done = gevent.joinall(handlers, timeout=TIMEOUT_MS / 1000, raise_error=True)
        assert len(done) == count
        return sum(h.value for h in handlers)

    return gevent.spawn(loop)


def listening(early: Any) -> Any:
    from xsock_green import socket as xsocket

    lst = early if early is not None else xsocket.bind("127.0.0.1", 0)
    assert lst.listen(64)
    return lst


def xsock_client(port: int, tag: str) -> int:
    """An xsock_green client: a few echo round trips; returns the bytes echoed."""
    from xsock_green import Bytes
    from xsock_green import socket as xsocket

    sock = xsocket.connect("127.0.0.1", port, timeout=TIMEOUT_MS)
    assert sock is not None
    total = 0
    with sock:
        for r in range(ROUNDS):
            msg = f"{tag} round {r}\n".encode()
            assert sock.send(msg, block=True) == len(msg)
            buff = Bytes(len(msg))
            n, data = sock.recv(buff, None, {"block": True, "waitall": True, "timeout": TIMEOUT_MS})
            assert data is not None and bytes(data) == msg, (n, data)
            total += n
    return total


def echo(early: Any) -> str:
    """xsock_green on both sides, clients from the main greenlet and from greenlets."""
    import gevent

    lst = listening(early)
    with lst:
        port = lst.sockname()[1]
        server = serve(lst, CLIENTS + 1)
        clients = [gevent.spawn(xsock_client, port, f"greenlet {i}") for i in range(CLIENTS)]
        main_total = xsock_client(port, "main")
        gevent.joinall(clients, timeout=TIMEOUT_MS / 1000, raise_error=True)
        echoed = server.get(timeout=TIMEOUT_MS / 1000)
    assert echoed == main_total + sum(c.value for c in clients)
    return f"echo {echoed} bytes"


def threads(early: Any) -> str:
    """Standard-library clients in (patched) threads against an xsock_green server."""
    import socket
    import threading

    lst = listening(early)
    done: list[int] = []

    def client(i: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_MS / 1000) as s:
            for r in range(ROUNDS):
                msg = f"thread {i} round {r}\n".encode()
                s.sendall(msg)
                got = b""
                for _ in range(len(msg)):
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                    if len(got) >= len(msg):
                        break
                assert got == msg, (got, msg)
        done.append(i)

    with lst:
        port = lst.sockname()[1]
        server = serve(lst, CLIENTS)
        pool = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(TIMEOUT_MS / 1000)
        assert sorted(done) == list(range(CLIENTS)), done
        echoed = server.get(timeout=TIMEOUT_MS / 1000)
    return f"threads {len(done)} clients, {echoed} bytes"


def socketserver_clients(early: Any) -> str:
    """xsock_green clients (greenlets and main) of a ThreadingTCPServer."""
    import socketserver
    import threading

    import gevent

    class Echo(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while True:
                data = self.request.recv(4096)
                if not data:
                    return
                self.request.sendall(data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    port = server.server_address[1]
    runner = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    runner.start()
    try:
        if early is not None:
            # A socket made before patch_all() connects after it.
            assert early.connect("127.0.0.1", port, timeout=TIMEOUT_MS) == 1
            early.close()
        clients = [gevent.spawn(xsock_client, port, f"greenlet {i}") for i in range(CLIENTS)]
        total = xsock_client(port, "main")
        gevent.joinall(clients, timeout=TIMEOUT_MS / 1000, raise_error=True)
        total += sum(c.value for c in clients)
    finally:
        server.shutdown()
        server.server_close()
        runner.join(TIMEOUT_MS / 1000)
    assert not runner.is_alive()
    return f"socketserver {CLIENTS + 1} clients, {total} bytes"


if __name__ == "__main__":
    sys.exit(main())
