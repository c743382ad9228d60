"""A peer that moves bytes as fast as it can, for the fairness tests.

    python blast.py read FD NBYTES    read NBYTES from socket FD, print the count
    python blast.py write FD NBYTES   write NBYTES of zeros to socket FD (zero-copy)

FD is a stream socket inherited from the parent (``pass_fds``).  The peer
prints ``ready`` just before it starts, so the parent can time the transfer
alone (not the interpreter's start).  The peer
uses the plain blocking standard library socket: it never waits on purpose,
so the socket on the parent's side stays ready for the whole transfer.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile


def main() -> int:
    mode, fd, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    moved = 0
    print("ready", flush=True)
    if mode == "read":
        buf = bytearray(1 << 20)
        while moved < total:
            n = sock.recv_into(buf)
            if n == 0:
                break
            moved += n
    elif mode == "write":
        # sendfile from a sparse file: the kernel fills the socket faster
        # than any Python reader empties it.
        with tempfile.TemporaryFile() as f:
            f.truncate(total)
            while moved < total:
                moved += os.sendfile(fd, f.fileno(), moved, total - moved)
    else:
        print(f"unknown mode {mode!r}", file=sys.stderr)
        return 2
    sock.close()
    print(moved, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
