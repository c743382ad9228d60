"""A tiny HTTP/1.1 server on xsock_green that ``curl`` or a browser can fetch from.

Try it::

    python examples/http_server.py --port 8080
    curl -v http://127.0.0.1:8080/ http://127.0.0.1:8080/hello

``--port 0`` (the default) picks a free port, printed as
``Server listening on 127.0.0.1:PORT``; ``--count N`` ends the server after N
requests.  ``server.start`` runs one greenlet per connection, which reads
requests with block-mode ``recv`` into one ``Bytes`` buffer; connections are persistent as HTTP/1.1
wants (``Connection: close`` and HTTP/1.0 end them), pipelined requests are
answered in order, and an idle connection is closed after ``--idle`` ms.
Pages: ``/`` (HTML), ``/hello`` (text) and ``/bytes/N`` (``N`` bytes, up to
64 MiB, of the repeated pattern 0..255); ``GET`` and ``HEAD`` only.  Each
request is logged as ``PEER "GET / HTTP/1.1" 200 LENGTH``.

HTTPS: give a certificate and its key (``server.start`` option ``tls``)::

    python examples/http_server.py --port 8443 --tls-cert cert.pem --tls-key key.pem
    curl --cacert ca.pem https://localhost:8443/hello

This is a demonstration, not a web server: no request bodies beyond
``--max-body`` bytes, no chunked uploads.
"""

from __future__ import annotations

import argparse
import html
import ssl
from typing import Any

import gevent

from xsock_green import Bytes, Socket, __version__, server

MAX_HEAD = 16384
MAX_BYTES = 64 << 20
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    501: "Not Implemented",
}


class Site:
    """The pages, and a request count so that ``--count`` can end the server."""

    def __init__(self, count: int, idle: int, max_body: int) -> None:
        self.server: server.Server | None = None  # set once started
        self.limit = count  # 0 = forever
        self.left = count
        self.idle = idle
        self.max_body = max_body

    def page(self, path: str) -> tuple[int, str, bytes]:
        if path == "/":
            body = (
                "<!doctype html>\n<html><head><title>xsock_green</title></head>\n"
                f"<body><h1>Hello from xsock_green {html.escape(__version__)}</h1>\n"
                "<p>This page was served by one greenlet per connection, "
                "with xmake's socket API on gevent's hub.</p></body></html>\n"
            )
            return 200, "text/html; charset=utf-8", body.encode()
        if path == "/hello":
            return 200, "text/plain; charset=utf-8", b"hello from xsock_green\n"
        size = path.removeprefix("/bytes/")
        if size.isdigit() and int(size) <= MAX_BYTES:
            n = int(size)
            return 200, "application/octet-stream", (bytes(range(256)) * (n // 256 + 1))[:n]
        return 404, "text/plain; charset=utf-8", f"no page at {path}\n".encode()

    def respond(
        self,
        client: Socket,
        status: int,
        ctype: str,
        body: bytes,
        keep: bool,
        head_only: bool = False,
        extra: str = "",
    ) -> bool:
        head = (
            f"HTTP/1.1 {status} {REASONS[status]}\r\n"
            f"Server: xsock_green/{__version__}\r\n"
            f"Content-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"Connection: {'keep-alive' if keep else 'close'}\r\n{extra}\r\n"
        )
        data = head.encode("latin-1") + (b"" if head_only else body)
        return client.send(data, {"block": True, "timeout": 10000}) == len(data)

    def handle(self, client: Socket) -> None:
        """One greenlet per connection: answer requests until either side closes."""
        peer = client.peeraddr()
        buff = Bytes(8192)
        pending = bytearray()
        while True:  # returning ends the connection: the server closes it
            end = pending.find(b"\r\n\r\n")
            while end < 0:
                if len(pending) > MAX_HEAD:
                    self.respond(client, 431, "text/plain", b"header too large\n", False)
                    return
                try:
                    recv, data = client.recv(buff, 8192, {"block": True, "timeout": self.idle})
                except TimeoutError:
                    return  # idle keep-alive connection
                if recv <= 0 or data is None:
                    return
                pending += data.view()
                end = pending.find(b"\r\n\r\n")
            head = bytes(pending[:end]).decode("latin-1")
            del pending[: end + 4]
            if not self.request(client, peer, head, pending):
                return

    def request(self, client: Socket, peer: str | None, head: str, pending: bytearray) -> bool:
        """Answer one request; ``False`` when the connection must close."""
        lines = head.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.respond(client, 400, "text/plain", b"bad request line\n", False)
            return False
        method, target, version = parts
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                self.respond(client, 400, "text/plain", b"bad header line\n", False)
                return False
            headers[name.strip().lower()] = value.strip()
        connection = headers.get("connection", "").lower()
        keep = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
        if "transfer-encoding" in headers:
            self.respond(client, 501, "text/plain", b"chunked bodies are not supported\n", False)
            return False
        length = headers.get("content-length", "0")
        if not length.isdigit() or int(length) > self.max_body:
            self.respond(client, 413, "text/plain", b"body too large\n", False)
            return False
        if not self.skip_body(client, int(length), pending):
            return False
        last = False
        if self.limit:
            self.left -= 1
            last = self.left == 0
        # After the last counted request, every connection ends.
        keep = keep and not last and not (self.server and self.server.closed())
        if method in ("GET", "HEAD"):
            status, ctype, body = self.page(target.split("?", 1)[0])
            ok = self.respond(client, status, ctype, body, keep, head_only=method == "HEAD")
        else:
            status, body = 405, b"only GET and HEAD\n"
            ok = self.respond(
                client, status, "text/plain", body, keep, extra="Allow: GET, HEAD\r\n"
            )
        print(f'{peer} "{lines[0]}" {status} {len(body)}', flush=True)
        if last and self.server is not None:
            # Stop accepting now; the other connections get 5 s to finish.
            gevent.spawn(self.server.stop, 5000)
        return ok and keep

    def skip_body(self, client: Socket, length: int, pending: bytearray) -> bool:
        """Read and drop a request body of ``length`` bytes."""
        buff = Bytes(8192)
        while len(pending) < length:
            recv, data = client.recv(buff, 8192, {"block": True, "timeout": self.idle})
            if recv <= 0 or data is None:
                return False
            pending += data.view()
        del pending[:length]
        return True


def main(
    host: str, port: int, count: int, idle: int, max_body: int, tls: ssl.SSLContext | None = None
) -> None:
    site = Site(count, idle, max_body)
    opt: dict[str, Any] = {"backlog": 128}
    if tls is not None:
        opt["tls"] = tls  # the handshake runs before site.handle is called
    srv = site.server = server.start(site.handle, host, port, opt)
    print(f"Server listening on {host}:{srv.sockname()[1]}", flush=True)
    try:
        srv.serve_forever()  # until the last counted request stops it
    except KeyboardInterrupt:
        srv.stop(5000)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--count", type=int, default=0, help="requests to answer; 0 = forever")
    parser.add_argument("--idle", type=int, default=10000, help="ms before an idle close")
    parser.add_argument("--max-body", type=int, default=1 << 20, help="largest request body")
    parser.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    parser.add_argument("--tls-key", metavar="FILE", help="its PEM key (default: in --tls-cert)")
    args = parser.parse_args()
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    main(args.host, args.port, args.count, args.idle, args.max_body, context)
