"""UDP echo server: the seed document's ``socket:recvfrom`` example, line by line.

Try it (two terminals)::

    python examples/udp_echo_server.py --port 9091
    python examples/udp_echo_client.py --port 9091

``--port 0`` (the default) lets the OS pick a free port; the server prints it
as ``UDP server listening on 127.0.0.1:PORT``.  ``--count N`` ends the server
after N datagrams (the Lua original serves forever; so does ``--count 0``).

The Lua original, from xmake's documentation of ``socket:recvfrom``::

    import("core.base.socket")
    import("core.base.bytes")
    function main()
        local sock = socket.udp()
        sock:bind("127.0.0.1", 9091)
        print("UDP server listening on 127.0.0.1:9091")
        local buff = bytes(8192)
        while true do
            print("Waiting to receive data...")
            local recv, data, peer_addr, peer_port = sock:recvfrom(buff, 8192, {block = true})
            if recv > 0 then
                print("Received", recv, "bytes from",
                      peer_addr .. ":" .. peer_port .. ":", data:str())
                -- Echo data back
                sock:sendto(data, peer_addr, peer_port)
            end
        end
        sock:close()
    end
"""

from __future__ import annotations

import argparse

from xsock_green import bytes, socket


def main(host: str, port: int, count: int) -> None:
    sock = socket.udp({"family": socket.IPV6 if ":" in host else socket.IPV4})
    sock.bind(host, port)
    port = sock.sockname()[1]  # the port the OS chose when asked for 0
    print(f"UDP server listening on {host}:{port}", flush=True)
    buff = bytes(8192)
    received = 0
    while count == 0 or received < count:  # while true do
        print("Waiting to receive data...", flush=True)
        recv, data, peer_addr, peer_port = sock.recvfrom(buff, 8192, {"block": True})
        if recv > 0 and data is not None and peer_addr is not None and peer_port is not None:
            print(
                "Received", recv, "bytes from", f"{peer_addr}:{peer_port}:", data.str(), flush=True
            )
            # Echo data back
            sock.sendto(data, peer_addr, peer_port)
            received += 1
    sock.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--count", type=int, default=0, help="datagrams to echo; 0 = forever")
    args = parser.parse_args()
    main(args.host, args.port, args.count)
