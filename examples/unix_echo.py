"""Unix-socket echo: the seed document's ``socket.bind_unix`` example, with a client.

Try it::

    python examples/unix_echo.py --count 5
    python examples/unix_echo.py --path /tmp/echo.sock --count 5

A server greenlet listens on a unix path (a fresh one in a temporary folder
unless ``--path`` is given) and echoes one client; the main greenlet connects
with ``socket.connect_unix``, sends ``--count`` messages and checks each echo.
The server prints ``Server listening on PATH``; the client ends with
``unix echo: N messages echoed``.  Unix paths have no host or port, so this
example takes ``--path`` instead of ``--host``/``--port``.

The Lua original, from xmake's documentation of ``socket.bind_unix``; the
echo loop follows the ``socket.bind`` example::

    import("core.base.socket")
    -- Bind to file path
    local server = socket.bind_unix("/tmp/my.sock")
    server:listen(10)
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

import gevent

from xsock_green import Socket, bytes, socket


def serve_one(server: Socket) -> None:
    """Accept one client and echo it until it closes (the seed's echo loop)."""
    client = server.accept()
    if client:
        buff = bytes(8192)
        while True:
            recv, data = client.recv(buff, 8192, {"block": True})
            if recv > 0 and data is not None:
                client.send(data, {"block": True})
            else:
                break
        client.close()


def main(path: str, count: int) -> int:
    # Bind to file path
    server = socket.bind_unix(path)
    server.listen(10)
    print(f"Server listening on {path}", flush=True)
    glet = gevent.spawn(serve_one, server)
    try:
        sock = socket.connect_unix(path, {"timeout": 5000})
        if sock is None:
            print(f"cannot connect to {path}", file=sys.stderr)
            return 1
        buff = bytes(8192)
        with sock:
            for i in range(1, count + 1):
                message = f"hello unix {i}"
                sock.send(message, {"block": True})
                recv, data = sock.recv(buff, len(message), {"block": True, "waitall": True})
                if recv != len(message) or data is None or data.str() != message:
                    print(f"bad echo for message {i}: {recv}", file=sys.stderr)
                    return 1
                print("Received:", data.str(), flush=True)
        glet.join(timeout=5)
        print(f"unix echo: {count} messages echoed", flush=True)
        return 0
    finally:
        glet.kill()
        server.close()
        os.unlink(path)  # bind_unix never removes a file; the server's owner does


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", help="socket path (default: a new temporary one)")
    parser.add_argument("--count", type=int, default=5, help="messages to send")
    args = parser.parse_args()
    tmpdir = None
    if args.path is None:
        tmpdir = tempfile.mkdtemp(prefix="xsock-")
        args.path = os.path.join(tmpdir, "echo.sock")
    try:
        status = main(args.path, args.count)
    finally:
        if tmpdir is not None:
            shutil.rmtree(tmpdir, ignore_errors=True)
    sys.exit(status)
