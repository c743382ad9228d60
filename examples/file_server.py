"""A file server that sends with ``sendfile`` (zero-copy where the OS allows).

Try it (two terminals)::

    python examples/file_server.py --port 9092 --file /etc/services
    python examples/file_client.py --port 9092 --output /tmp/services.copy

Each client that connects gets one file: an 8-byte header (the size as two
big-endian 32-bit halves, written with ``Bytes.u32be_set``) followed by the
file's bytes, sent by ``sock:sendfile(file, {block = true})``.  The server
prints ``Server listening on 127.0.0.1:PORT`` (``--port 0``, the default,
picks a free port), ``Serving FILE: N bytes, sha256 HEX`` and one
``Sent N bytes to PEER`` line per client; ``--count N`` ends it after N
clients.  ``server.start`` runs one greenlet per client, so a slow reader
does not hold up others.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os

import gevent

from xsock_green import Bytes, Socket, server


def send_file(client: Socket, path: str, size: int) -> None:
    with open(path, "rb") as f:
        header = Bytes(8).u32be_set(1, size >> 32).u32be_set(5, size & 0xFFFFFFFF)
        if client.send(header, {"block": True}) != 8:
            print(f"header failed: {client.last_error}", flush=True)
            return
        sent = client.sendfile(f, {"block": True, "timeout": 30000})
        if sent < 0:
            print(f"sendfile failed: {client.last_error}", flush=True)
            return
        print(f"Sent {sent} bytes to {client.peeraddr()}", flush=True)


def main(host: str, port: int, path: str, count: int) -> None:
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    numbers = itertools.count(1)

    def handle(client: Socket) -> None:
        number = next(numbers)
        if count and number > count:
            return  # accepted while the server was stopping: closed unanswered
        if number == count:
            # Accept no one else; the transfers under way get 60 s to finish.
            gevent.spawn(srv.stop, 60000)
        send_file(client, path, size)

    srv = server.start(handle, host, port, {"backlog": 20})
    print(f"Server listening on {host}:{srv.sockname()[1]}", flush=True)
    print(f"Serving {path}: {size} bytes, sha256 {digest}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        srv.stop(5000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--file", default=__file__, help="the file to serve (default: this one)")
    parser.add_argument("--count", type=int, default=0, help="clients to serve; 0 = forever")
    args = parser.parse_args()
    main(args.host, args.port, args.file, args.count)
