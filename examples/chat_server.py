"""A line-based chat server: what each client sends goes to every other client.

Try it::

    python examples/chat_server.py --port 9000
    socat - TCP:127.0.0.1:9000        # in two or more terminals, then type lines

Broadcast done right.  The tempting version sends each line from the reading
greenlet straight to every other client's socket; then two greenlets send on
one socket at once (the second gets ``BusyError``), and a client that stops
reading stalls everyone.  Here each client has a *writer greenlet* that owns
its socket's sending side and a *bounded queue* in front of it: a broadcast
only puts the line on the queues, and a client whose queue stays full for
0.1 s, because it stopped reading, is dropped instead of stalling the others.  Each client's
lines are read with ``Reader.readline``, whose ``bytes`` stay valid on a
queue (a ``recv`` view would be overwritten by the next ``recv``).

Ctrl-C or SIGTERM stops the server cleanly: the listener closes, every client
gets ``* server shutting down``, and the process exits with status 0.  It
prints ``Server listening on HOST:PORT`` first (``--port 0``, the default,
picks a free port) and one line per event; ``--count N`` ends it after N
clients have come and gone.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gevent
from gevent.event import Event
from gevent.queue import Full, Queue

from xsock_green import Reader, Socket, socket

LINE_LIMIT = 4096  # longer lines end the session
GRACE = 0.1  # seconds a full queue may take to make room before its client is dropped
SEND_BUFFER = 65536  # a small kernel buffer: a client that stops reading is noticed soon


class Client:
    """One connection: its socket, its bounded outgoing queue, its writer greenlet."""

    def __init__(self, number: int, sock: Socket, queue_size: int) -> None:
        self.number = number
        self.sock = sock
        self.queue: Queue[bytes | None] = Queue(maxsize=queue_size)
        self.writer = gevent.spawn(self.write_loop)

    def write_loop(self) -> None:
        """The only greenlet that sends on this socket."""
        while True:
            message = self.queue.get()
            if message is None or self.sock.send(message, {"block": True}) < 0:
                return


class Chat:
    def __init__(self, queue_size: int, count: int | None) -> None:
        self.clients: dict[int, Client] = {}
        self.queue_size = queue_size
        self.joined = 0
        self.gone = 0
        self.count = count
        self.done = Event()

    def broadcast(self, message: bytes, sender: Client | None = None) -> None:
        for client in list(self.clients.values()):
            if client is sender:
                continue
            try:
                client.queue.put_nowait(message)
            except Full:
                # A burst (many lines in one receive) can fill a healthy queue
                # before its writer runs: give the writer a moment to drain.
                try:
                    client.queue.put(message, timeout=GRACE)
                except Full:
                    self.drop(client)

    def drop(self, client: Client) -> None:
        """A client that does not read is disconnected rather than waited for."""
        if self.clients.pop(client.number, None) is None:
            return
        print(f"client {client.number} dropped: {self.queue_size} messages waiting", flush=True)
        client.sock.close()  # wakes its reader and its writer
        self.broadcast(b"* client %d dropped (too slow)\n" % client.number)

    def handle(self, sock: Socket) -> None:
        self.joined += 1
        client = Client(self.joined, sock, self.queue_size)
        print(f"client {client.number} joined from {sock.peeraddr()}", flush=True)
        others = len(self.clients)
        client.queue.put_nowait(
            b"* welcome, client %d; %d other(s) here\n" % (client.number, others)
        )
        self.broadcast(b"* client %d joined\n" % client.number)
        self.clients[client.number] = client
        reader = Reader(sock)
        try:
            while True:
                n, line = reader.readline(LINE_LIMIT)
                if n < 0 or line is None:
                    break
                self.broadcast(b"client %d: %s" % (client.number, line), client)
        finally:
            if self.clients.pop(client.number, None) is not None:
                print(f"client {client.number} left", flush=True)
                self.broadcast(b"* client %d left\n" % client.number)
            try:  # a client that only stopped sending may still read what is queued
                client.queue.put_nowait(None)
                client.writer.join(timeout=1)
            except Full:
                pass
            client.writer.kill()
            sock.close()
            self.gone += 1
            if self.count is not None and self.gone >= self.count:
                self.done.set()

    def serve(self, server: Socket) -> None:
        handlers: list[gevent.Greenlet] = []
        while True:
            sock = server.accept()
            if sock is None:  # the listener was closed: shutting down
                break
            sock.ctrl(socket.CTRL_SET_SENDBUFF, SEND_BUFFER)
            handlers = [h for h in handlers if not h.dead]
            handlers.append(gevent.spawn(self.handle, sock))

    def shutdown(self) -> None:
        """Say goodbye to every client, give the writers a moment, then close."""
        clients = list(self.clients.values())
        self.clients.clear()
        for client in clients:
            try:
                client.queue.put_nowait(b"* server shutting down\n")
                client.queue.put_nowait(None)
            except Full:
                pass
        gevent.joinall([c.writer for c in clients], timeout=2)
        for client in clients:
            client.sock.close()


def main(host: str, port: int, queue_size: int, count: int | None) -> int:
    server = socket.bind(host, port)
    server.listen(128)
    print(f"Server listening on {host}:{server.sockname()[1]}", flush=True)
    chat = Chat(queue_size, count)
    got: list[str] = []

    def on_signal(signum: int) -> None:
        got.append(signal.Signals(signum).name)
        chat.done.set()

    handlers = [
        gevent.signal_handler(signum, on_signal, signum)
        for signum in (signal.SIGINT, signal.SIGTERM)
    ]
    acceptor = gevent.spawn(chat.serve, server)
    try:
        chat.done.wait()
    finally:
        for handler in handlers:
            handler.cancel()
        server.close()  # accept returns None: no new clients
        acceptor.join(timeout=2)
        chat.shutdown()
    if got:
        print(f"stopped by {got[0]}", flush=True)
    print(f"chat server stopped after {chat.joined} client(s)", flush=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--queue", type=int, default=100, help="messages queued per client")
    parser.add_argument("--count", type=int, help="stop after this many clients have left")
    args = parser.parse_args()
    sys.exit(main(args.host, args.port, args.queue, args.count))
