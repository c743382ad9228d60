"""TLS with real, independent peers: ``openssl s_server``/``s_client``, ``curl``,
the standard library's ``http.client`` under monkey-patching, and ``xsock``.

Certificates are made for the run with ``trustme`` and written to a
temporary folder; every peer runs in a subprocess on loopback and is killed
at the end of its ``with`` block.  A test whose tool is missing is skipped
with the reason.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_cli import XSOCK, Child

from xsock_green import Bytes, socket

trustme = pytest.importorskip("trustme", reason="trustme is not installed (pip install trustme)")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
LONG_MS = 10000

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="openssl is not installed (apt-get install openssl)"
)
needs_curl = pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)


@dataclass
class Files:
    ca: str  # the CA certificate (PEM)
    cert: str  # the server's certificate chain (PEM)
    key: str  # the server's key (PEM)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = Files(str(folder / "ca.pem"), str(folder / "cert.pem"), str(folder / "key.pem"))
    ca.cert_pem.write_to_path(paths.ca)
    leaf.cert_chain_pems[0].write_to_path(paths.cert)
    leaf.private_key_pem.write_to_path(paths.key)
    yield paths


def recv_line(sock: socket.Socket) -> bytes:
    buff = Bytes(4096)
    got = b""
    while not got.endswith(b"\n"):
        n, data = sock.recv(buff, 4096, {"block": True, "timeout": LONG_MS})
        assert n > 0 and data is not None, sock.last_error
        got += bytes(data)
    return got


@needs_openssl
def test_xsock_client_talks_to_openssl_s_server(files: Files) -> None:
    import ssl

    args = ["openssl", "s_server", "-accept", "127.0.0.1:0", "-naccept", "1"]
    args += ["-cert", files.cert, "-key", files.key]
    with Child(args, stdin=subprocess.PIPE) as server:
        port = int(server.wait_for(r"^ACCEPT 127\.0\.0\.1:(\d+)$").group(1))
        ctx = ssl.create_default_context(cafile=files.ca)
        sock = socket.connect("127.0.0.1", port, tls=ctx, timeout=LONG_MS)
        assert sock is not None, socket.last_error()
        with sock:
            assert sock.send(b"hello from xsock\n", {"block": True}) > 0
            server.wait_for(r"^hello from xsock$")
            server.write(b"hello from openssl\n")
            assert recv_line(sock) == b"hello from openssl\n"
            info = sock.tls_info()
            assert info is not None and info["version"] == "TLSv1.3"
        # Our close sent close_notify: s_server sees a clean end and exits.
        server.finish(10)


@needs_openssl
def test_openssl_s_client_talks_to_xsock_echo_server(files: Files) -> None:
    args = [*XSOCK, "echo-server", "--tcp", "127.0.0.1:0", "-v"]
    with Child([*args, "--tls-cert", files.cert, "--tls-key", files.key]) as server:
        port = server.port()
        client_args = [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-quiet",
            "-no_ign_eof",
        ]
        client_args += ["-CAfile", files.ca, "-verify_return_error", "-verify_ip", "127.0.0.1"]
        with Child(client_args, stdin=subprocess.PIPE) as client:
            for text in ("hello from s_client", "second line"):
                client.write(text.encode() + b"\n")
                assert client.wait_for(r"\S").group(0) and client.lines[-1] == text
            client.close_stdin()
            status, _rest, err = client.finish()
            assert status == 0, err
        server.proc.terminate()
        status, _rest, err = server.finish()
    assert status == 0
    assert "Traceback" not in err
    assert "connection 1 closed after 32 bytes" in err


@needs_curl
def test_curl_fetches_over_https_from_the_http_example(files: Files) -> None:
    script = [sys.executable, str(EXAMPLES / "http_server.py"), "--count", "3"]
    with Child([*script, "--tls-cert", files.cert, "--tls-key", files.key]) as server:
        port = server.port()
        base = f"https://localhost:{port}"
        resolve = f"localhost:{port}:127.0.0.1"
        done = subprocess.run(
            [
                *("curl", "--silent", "--show-error", "--max-time", "20"),
                *("--cacert", files.ca, "--resolve", resolve),
                *("--write-out", r"\n[%{http_code} %{num_connects}]\n"),
                f"{base}/",
                f"{base}/hello",
            ],
            capture_output=True,
            timeout=30,
        )
        assert (done.returncode, done.stderr) == (0, b""), done
        page, hello = done.stdout.decode().split("[200 1]\n")
        assert "<h1>Hello from xsock_green" in page
        assert hello == "hello from xsock_green\n\n[200 0]\n"
        size = 8 << 20
        big = subprocess.run(
            [
                *("curl", "--silent", "--show-error", "--max-time", "30", "--cacert", files.ca),
                *("--resolve", resolve, f"{base}/bytes/{size}"),
            ],
            capture_output=True,
            timeout=40,
        )
        assert (big.returncode, big.stderr) == (0, b"")
        expected = (bytes(range(256)) * (size // 256 + 1))[:size]
        assert hashlib.sha256(big.stdout).hexdigest() == hashlib.sha256(expected).hexdigest()
        status, _rest, err = server.finish()
    assert (status, err) == (0, "")


MONKEY_SCRIPT = textwrap.dedent(
    """
    import sys
    order = sys.argv[1]
    ca, cert, key = sys.argv[2:5]
    if order == "before":
        from gevent import monkey
        monkey.patch_all()
    from xsock_green import Bytes, server
    if order == "after":
        from gevent import monkey
        monkey.patch_all()
    import http.client
    import ssl

    def handle(sock):
        buff = Bytes(8192)
        head = b""
        while b"\\r\\n\\r\\n" not in head:
            n, data = sock.recv(buff, 8192, {"block": True, "timeout": 10000})
            if n <= 0:
                return
            head += bytes(data)
        body = b"hello over TLS " * 1000
        reply = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
        sock.send(reply + body, {"block": True, "timeout": 10000})

    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(cert, key)
    srv = server.start(handle, "127.0.0.1", 0, {"tls": sctx})
    port = srv.sockname()[1]
    cctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=cctx, timeout=10)
    conn.request("GET", "/")
    resp = conn.getresponse()
    data = resp.read()
    kind = type(conn.sock).__module__
    conn.close()
    srv.stop(1000)
    print(resp.status, len(data), data[:15].decode(), kind)
    """
)


@pytest.mark.parametrize("order", ["before", "after"])
def test_monkey_patched_https_client_against_xsock_tls_server(files: Files, order: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MONKEY_SCRIPT, order, files.ca, files.cert, files.key],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    out = done.stdout.decode()
    assert out.startswith("200 15000 hello over TLS "), out
    assert out.split()[-1].startswith("gevent"), out  # the client's socket was gevent's


def test_xsock_echo_client_with_tls_against_xsock_echo_server(files: Files) -> None:
    args = [*XSOCK, "echo-server", "--tcp", "127.0.0.1:0"]
    with Child([*args, "--tls-cert", files.cert, "--tls-key", files.key]) as server:
        port = server.port()
        done = subprocess.run(
            [
                *(*XSOCK, "echo-client", "--tcp", f"127.0.0.1:{port}", "--tls"),
                *("--cafile", files.ca, "--message", "over tls", "--count", "2"),
            ],
            capture_output=True,
            timeout=30,
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, b"over tls\nover tls\n", b"")
        # Without --cafile the system's CAs do not know the test CA.
        refused = subprocess.run(
            [*XSOCK, "echo-client", "--tcp", f"127.0.0.1:{port}", "--tls", "--message", "x"],
            capture_output=True,
            timeout=30,
        )
        assert refused.returncode == 1
        assert b"certificate verify failed" in refused.stderr
        server.proc.terminate()
        status, _rest, err = server.finish()
    assert status == 0 and "Traceback" not in err


def test_xsock_bench_with_tls() -> None:
    done = subprocess.run(
        [*XSOCK, "bench", "--tls", "--duration", "1", "--clients", "4", "--json"],
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["tls"] is True
    assert report["errors"] == 0
    assert report["requests"] > 100


def test_cli_tls_usage_errors() -> None:
    for args in (
        ["echo-server", "--udp", "127.0.0.1:0", "--tls-cert", "x.pem"],
        ["echo-client", "--tcp", "127.0.0.1:1", "--cafile", "x.pem"],
        ["bench", "--tls", "--transport", "udp"],
    ):
        done = subprocess.run([*XSOCK, *args], capture_output=True, timeout=30)
        assert done.returncode == 2, (args, done.stderr)
        assert len(done.stderr.decode().splitlines()) == 1
