"""The client of ``file_server.py``: receive one file and check its sha256.

Try it (two terminals)::

    python examples/file_server.py --port 9092 --file /etc/services
    python examples/file_client.py --port 9092 --output /tmp/services.copy

It reads the 8-byte size header with ``waitall``, then receives the file in
64 KiB pieces into one reused ``Bytes`` buffer, writing each piece to
``--output`` (if given) and into a sha256.  It prints
``Received N bytes, sha256 HEX`` and exits with status 1 on a short file.
``--count N`` fetches the file N times over N connections.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import BinaryIO

from xsock_green import Bytes, socket


def fetch(host: str, port: int, out: BinaryIO | None) -> int:
    sock = socket.connect(host, port, {"timeout": 5000})
    if sock is None:
        print(f"cannot connect to {host}:{port}", file=sys.stderr)
        return 1
    with sock:
        header = Bytes(8)
        recv, _ = sock.recv(header, 8, {"block": True, "waitall": True, "timeout": 5000})
        if recv != 8:
            print("no header", file=sys.stderr)
            return 1
        size = header.u32be(1) << 32 | header.u32be(5)
        buff = Bytes(65536)
        digest = hashlib.sha256()
        got = 0
        while got < size:
            want = min(size - got, buff.size())
            recv, data = sock.recv(buff, want, {"block": True, "timeout": 10000})
            if recv <= 0 or data is None:
                break
            digest.update(data.view())
            if out is not None:
                out.write(data.view())
            got += recv
    print(f"Received {got} bytes, sha256 {digest.hexdigest()}", flush=True)
    if got != size:
        print(f"short file: {got} of {size} bytes", file=sys.stderr)
        return 1
    return 0


def main(host: str, port: int, output: str | None, count: int) -> int:
    status = 0
    for _ in range(count):
        if output is None:
            status |= fetch(host, port, None)
        else:
            with open(output, "wb") as out:
                status |= fetch(host, port, out)
    return status


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the server's port")
    parser.add_argument("--output", help="where to save the file")
    parser.add_argument("--count", type=int, default=1, help="how many times to fetch it")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.output, args.count))
