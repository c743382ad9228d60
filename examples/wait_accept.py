"""Event-driven echo server: the seed document's ``wait(EV_ACPT, 5000)`` pattern.

Try it (two terminals)::

    python examples/wait_accept.py --port 9091
    python examples/tcp_echo_client.py --port 9091 --count 10

Nothing here blocks inside a socket call: the server waits for an event with
``sock:wait`` and then makes a non-blocking call, as xmake's documentation
shows for ``socket:accept`` and ``socket:wait``.  It prints
``Server listening on 127.0.0.1:PORT``, then ``no client within 5000 ms``
each time a wait times out.  ``--count N`` ends it after N clients;
``--timeout`` changes the 5000 ms.

The Lua originals, from xmake's documentation of ``socket:accept`` and
``socket:wait``::

    -- Wait for client connection
    local events = server:wait(socket.EV_ACPT, 5000)
    if events == socket.EV_ACPT then
        local client = server:accept()
    end

    -- Wait for socket to be readable
    local events = sock:wait(socket.EV_RECV, 1000)
    if events == socket.EV_RECV then
        local recv, data = sock:recv(buff, 1024)
    end
    -- Wait for socket to be writable
    local events = sock:wait(socket.EV_SEND, 1000)
    if events == socket.EV_SEND then
        sock:send("data")
    end
"""

from __future__ import annotations

import argparse

from xsock_green import Bytes, Socket, bytes, socket


def send_all(sock: Socket, data: Bytes) -> bool:
    """Non-blocking sends, waiting for EV_SEND whenever the buffer is full."""
    start = 1
    while start <= data.size():
        # Wait for socket to be writable
        events = sock.wait(socket.EV_SEND, 1000)
        if events == socket.EV_SEND:
            sent = sock.send(data, {"start": start})
            if sent < 0:
                return False
            start += sent
        elif events < 0:
            return False
    return True


def echo(client: Socket, timeout: int) -> int:
    """Echo until the client closes; returns the bytes echoed."""
    buff = bytes(8192)
    total = 0
    while True:
        # Wait for socket to be readable
        events = client.wait(socket.EV_RECV, timeout)
        if events == socket.EV_RECV:
            recv, data = client.recv(buff, 1024)
            if recv > 0 and data is not None:
                if not send_all(client, data):
                    break
                total += recv
            elif recv < 0:  # end of stream
                break
        elif events < 0:
            break
        else:
            print(f"client silent for {timeout} ms", flush=True)
    return total


def main(host: str, port: int, count: int, timeout: int) -> None:
    server = socket.bind(host, port)
    server.listen(10)
    print(f"Server listening on {host}:{server.sockname()[1]}", flush=True)
    served = 0
    while count == 0 or served < count:
        # Wait for client connection
        events = server.wait(socket.EV_ACPT, timeout)
        if events == socket.EV_ACPT:
            client = server.accept()
            if client:
                print("Client connected", flush=True)
                total = echo(client, timeout)
                client.close()
                served += 1
                print(f"Client done: {total} bytes echoed", flush=True)
        else:
            print(f"no client within {timeout} ms", flush=True)
    server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--count", type=int, default=0, help="clients to serve; 0 = forever")
    parser.add_argument("--timeout", type=int, default=5000, help="ms for each wait")
    args = parser.parse_args()
    main(args.host, args.port, args.count, args.timeout)
