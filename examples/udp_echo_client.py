"""UDP echo client: the seed document's ``socket:sendto`` example, grown into a client.

Try it (two terminals)::

    python examples/udp_echo_server.py --port 9091
    python examples/udp_echo_client.py --port 9091 --count 3

It sends ``--count`` datagrams (default 3) and prints each echo as
``Echo N: hello udp N from ADDR:PORT``.  UDP may lose datagrams, so each
wait for an echo is bounded by ``--timeout`` milliseconds; the client exits
with status 1 when an echo does not come back.

The Lua original it starts from, from xmake's documentation of
``socket:sendto``; the receiving half follows ``socket:recvfrom``::

    import("core.base.socket")
    local sock = socket.udp()
    sock:sendto("hello", "127.0.0.1", 9091)
    sock:close()
"""

from __future__ import annotations

import argparse
import sys

from xsock_green import bytes, socket


def main(host: str, port: int, count: int, timeout: int) -> int:
    sock = socket.udp({"family": socket.IPV6 if ":" in host else socket.IPV4})
    buff = bytes(8192)
    for i in range(1, count + 1):
        sock.sendto(f"hello udp {i}", host, port)
        recv, data, peer_addr, peer_port = sock.recvfrom(
            buff, 8192, {"block": True, "timeout": timeout}
        )
        if recv <= 0 or data is None:
            print(f"no echo for datagram {i} within {timeout} ms", file=sys.stderr)
            sock.close()
            return 1
        print(f"Echo {i}: {data.str()} from {peer_addr}:{peer_port}", flush=True)
    sock.close()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the server's port")
    parser.add_argument("--count", type=int, default=3, help="datagrams to send")
    parser.add_argument("--timeout", type=int, default=5000, help="ms to wait for each echo")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.count, args.timeout))
