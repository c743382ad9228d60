"""TCP echo client: the seed document's ``socket.connect`` example, line by line.

Try it (two terminals)::

    python examples/tcp_echo_server.py --port 9091
    python examples/tcp_echo_client.py --port 9091 --count 1000

It sends ``hello world..`` ``--count`` times (default 1000, as in Lua), waits
for each echo, and prints ``Sent successfully, count: N``.  It exits with
status 1 when it cannot connect.

One deliberate difference: xmake's block-mode ``recv`` waits for exactly
``size`` bytes; xsock_green's returns what arrived, and ``waitall = true``
keeps xmake's rule, so the port asks for it.

The Lua original, from xmake's documentation of ``socket.connect``::

    import("core.base.socket")
    import("core.base.bytes")
    function main()
        -- Connect to server
        local sock = socket.connect("127.0.0.1", 9091)
        if sock then
            print("Connected to server")
            local buff = bytes(8192)
            -- Send multiple messages
            local count = 0
            while count < 1000 do
                local send = sock:send("hello world..", {block = true})
                if send > 0 then
                    -- Receive echo
                    sock:recv(buff, 13, {block = true})
                    count = count + 1
                else
                    break
                end
            end
            print("Sent successfully, count:", count)
            sock:close()
        end
    end
"""

from __future__ import annotations

import argparse
import sys

from xsock_green import bytes, socket


def main(host: str, port: int, total: int) -> int:
    # Connect to server
    sock = socket.connect(host, port, {"timeout": 5000})
    if sock:
        print("Connected to server", flush=True)
        buff = bytes(8192)
        # Send multiple messages
        count = 0
        while count < total:
            send = sock.send("hello world..", {"block": True})
            if send > 0:
                # Receive echo (waitall: xmake's "exactly 13 bytes" rule)
                sock.recv(buff, 13, {"block": True, "waitall": True})
                count = count + 1
            else:
                break
        print("Sent successfully, count:", count, flush=True)
        sock.close()
        return 0
    print(f"cannot connect to {host}:{port}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="the server's port")
    parser.add_argument("--count", type=int, default=1000, help="messages to send")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.count))
