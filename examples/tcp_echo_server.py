"""TCP echo server: the seed document's ``socket.bind`` example, line by line.

Try it (two terminals)::

    python examples/tcp_echo_server.py --port 9091
    python examples/tcp_echo_client.py --port 9091

``--port 0`` (the default) lets the OS pick a free port; the server prints it
as ``Server listening on 127.0.0.1:PORT``.  ``--count N`` ends the server
after N clients (the Lua original serves forever; so does ``--count 0``).

The Lua original, from xmake's documentation of ``socket.bind``::

    import("core.base.socket")
    import("core.base.bytes")
    function main()
        -- Bind address and listen
        local server = socket.bind("127.0.0.1", 9091)
        server:listen(20)
        print("Server listening on 127.0.0.1:9091")
        while true do
            -- Accept client connection
            local client = server:accept()
            if client then
                print("Client connected")
                local buff = bytes(8192)
                -- Continuously receive and echo data
                while true do
                    local recv, data = client:recv(buff, 8192, {block = true})
                    if recv > 0 then
                        print("Received:", data:str())
                        -- Echo data back
                        client:send(data, {block = true})
                    else
                        break
                    end
                end
                client:close()
            end
        end
        server:close()
    end
"""

from __future__ import annotations

import argparse

from xsock_green import bytes, socket


def main(host: str, port: int, count: int) -> None:
    # Bind address and listen
    server = socket.bind(host, port)
    server.listen(20)
    port = server.sockname()[1]  # the port the OS chose when asked for 0
    print(f"Server listening on {host}:{port}", flush=True)
    served = 0
    while count == 0 or served < count:  # while true do
        # Accept client connection
        client = server.accept()
        if client:
            print("Client connected", flush=True)
            buff = bytes(8192)
            # Continuously receive and echo data
            while True:
                recv, data = client.recv(buff, 8192, {"block": True})
                if recv > 0 and data is not None:
                    print("Received:", data.str(), flush=True)
                    # Echo data back
                    client.send(data, {"block": True})
                else:
                    break
            client.close()
            served += 1
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--count", type=int, default=0, help="clients to serve; 0 = forever")
    args = parser.parse_args()
    main(args.host, args.port, args.count)
