"""TLS benchmark: xsock_green's TLS sockets against gevent's ssl sockets and uvloop's SSL streams.

    python -m bench.tls                    # both workloads, every server, 3 s each
    python -m bench.tls --duration 5 --repeat 3 --json

Each server runs in its own process (this file with ``--serve NAME``), pinned
to one core when there are two; one load generator, the same for every
server, runs in another process pinned to the other core: asyncio
protocols on uvloop (its SSL is C code), so that the client costs as little
as Python allows.  A certificate is made for the run (trustme, else the
openssl command; see ``xsock_green._cli._tls``).

Two workloads:

* ``echo-1k``: 10 connections, each sends 1 KiB and waits for its echo;
  requests/s;
* ``bulk``: one connection sends 1 MiB messages and reads them back, with
  the next message written as soon as the last byte came back; MB/s of
  payload one way.

Besides throughput, which a Python client may cap, each row gives the
server process's own CPU time per request (per MB for bulk), read from
``/proc``: it does not depend on how fast the client is.  Ratios are
xsock_green's throughput over each other server's, and that server's CPU
per unit over xsock_green's (both: > 1 means xsock_green is better).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOST = "127.0.0.1"
READ = 65536
SERVERS = ("xsock_green", "gevent_ssl", "uvloop_streams")
WORKLOADS = {"echo-1k": (1024, 10), "bulk": (1 << 20, 1)}


# -- the servers (run with --serve NAME CERT KEY) -------------------------------


def _server_context(cert: str, key: str, ssl: Any = None) -> Any:
    if ssl is None:
        import ssl

    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


def _ready(port: int) -> None:
    sys.stdout.write(json.dumps({"pid": os.getpid(), "port": port}) + "\n")
    sys.stdout.flush()


def serve_xsock_green(cert: str, key: str) -> None:
    import gevent

    from xsock_green import Bytes, Socket, socket

    lst = socket.bind(HOST, 0, tls=_server_context(cert, key))
    lst.listen(1024)
    block = {"block": True}

    def echo(c: Socket) -> None:
        buff = Bytes(READ)
        try:
            while True:
                n, data = c.recv(buff, READ, block)
                if n <= 0 or c.send(data, block) < 0:
                    break
        finally:
            c.close()

    _ready(lst.sockname()[1])
    while True:
        conn = lst.accept()
        if conn is None:
            continue
        conn.ctrl(socket.CTRL_SET_TCP_NODELAY, True)
        gevent.spawn(echo, conn)


def serve_gevent_ssl(cert: str, key: str) -> None:
    from gevent import monkey

    monkey.patch_all()  # as gevent's users run it: ssl's classes become gevent's
    import ssl

    from gevent import socket as gsocket
    from gevent.server import StreamServer

    def echo(sock: Any, _addr: Any) -> None:
        sock.setsockopt(gsocket.IPPROTO_TCP, gsocket.TCP_NODELAY, 1)
        try:
            while True:
                data = sock.recv(READ)
                if not data:
                    break
                sock.sendall(data)
        except OSError:
            pass
        finally:
            sock.close()

    ctx = _server_context(cert, key, ssl)
    server = StreamServer((HOST, 0), echo, ssl_context=ctx, backlog=1024)
    server.start()
    _ready(server.server_port)
    server.serve_forever()


def serve_uvloop_streams(cert: str, key: str) -> None:
    import asyncio

    import uvloop

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(READ)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(
            echo, HOST, 0, ssl=_server_context(cert, key), backlog=1024
        )
        _ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    uvloop.run(main())


# -- the load generator (run with --client PORT SIZE CONNS SECONDS CAFILE) ----------


def client(port: int, size: int, conns: int, seconds: float, cafile: str) -> None:
    import asyncio
    import ssl

    import uvloop

    payload = b"x" * size
    counts = [0]
    stop = [False]

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t: Any = transport
            self.got = 0
            self.t.write(payload)

        def data_received(self, data: bytes) -> None:
            self.got += len(data)
            if self.got >= size:
                counts[0] += 1
                self.got -= size
                if not stop[0]:
                    self.t.write(payload)

    async def main() -> dict[str, Any]:
        ctx = ssl.create_default_context(cafile=cafile)
        loop = asyncio.get_running_loop()
        transports = []
        for _ in range(conns):
            t, _p = await loop.create_connection(
                Echo, HOST, port, ssl=ctx, server_hostname="localhost"
            )
            transports.append(t)
        await asyncio.sleep(0.3)  # warm-up
        first, started = counts[0], time.perf_counter()
        cpu0 = time.process_time()
        sys.stdout.write("go\n")
        sys.stdout.flush()
        await asyncio.sleep(seconds)
        done, took = counts[0] - first, time.perf_counter() - started
        cpu = time.process_time() - cpu0
        stop[0] = True
        sys.stdout.write("end\n")
        sys.stdout.flush()
        for t in transports:
            t.close()
        return {"requests": done, "seconds": took, "client_cpu": cpu}

    print(json.dumps(uvloop.run(main())), flush=True)


# -- the harness -------------------------------------------------------------------


def _cpu(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (and its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if (os.cpu_count() or 1) >= 2 and _has_taskset() else []


def _has_taskset() -> bool:
    from shutil import which

    return which("taskset") is not None


def measure(
    name: str, workload: str, seconds: float, files: tuple[str, str, str]
) -> dict[str, Any]:
    ca, cert, key = files
    size, conns = WORKLOADS[workload]
    me = [sys.executable, str(Path(__file__).resolve())]
    server = subprocess.Popen(
        [*_pin(0), *me, "--serve", name, cert, key], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            raise RuntimeError(f"{name} did not start")
        info = json.loads(line)
        cli = subprocess.Popen(
            [*_pin(1), *me, "--client", str(info["port"]), str(size), str(conns), str(seconds), ca],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert cli.stdout is not None
            assert cli.stdout.readline().strip() == "go"
            before = _cpu(info["pid"])
            assert cli.stdout.readline().strip() == "end"
            cpu = _cpu(info["pid"]) - before
            result: dict[str, Any] = json.loads(cli.stdout.readline())
            cli.wait(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    finally:
        server.kill()
        server.wait()
    rate = result["requests"] / result["seconds"]
    unit = size / 1e6 if workload == "bulk" else 1.0
    return {
        "server": name,
        "workload": workload,
        "per_s": rate * unit,  # requests/s, or MB/s for bulk
        "cpu_us": cpu / max(result["requests"] * unit, 1e-9) * 1e6,  # per request, or per MB
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--serve", nargs=3, metavar=("NAME", "CERT", "KEY"))
    p.add_argument("--client", nargs=5, metavar=("PORT", "SIZE", "CONNS", "SECONDS", "CAFILE"))
    p.add_argument("--duration", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--only", default=",".join(SERVERS))
    p.add_argument("--json", action="store_true")
    ns = p.parse_args(argv)
    if ns.serve:
        name, cert, key = ns.serve
        globals()[f"serve_{name}"](cert, key)
        return
    if ns.client:
        port, size, conns, seconds, cafile = ns.client
        client(int(port), int(size), int(conns), float(seconds), cafile)
        return
    import tempfile

    from xsock_green._cli._tls import _make_files

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="xsock-tls-bench-") as folder:
        cert, key = _make_files(folder)
        files = (os.path.join(folder, "ca.pem"), cert, key)
        for workload in WORKLOADS:
            for name in ns.only.split(","):
                runs = [measure(name, workload, ns.duration, files) for _ in range(ns.repeat)]
                row = {
                    "server": name,
                    "workload": workload,
                    "per_s": statistics.median(r["per_s"] for r in runs),
                    "cpu_us": statistics.median(r["cpu_us"] for r in runs),
                }
                rows.append(row)
                print(
                    f"{workload:8} {name:15} {row['per_s']:12,.1f} {row['cpu_us']:10,.1f}",
                    file=sys.stderr,
                )
    if ns.json:
        print(json.dumps(rows, indent=1))
        return
    print(table(rows))


def table(rows: list[dict[str, Any]]) -> str:
    out = []
    for workload in WORKLOADS:
        mine = next(
            (r for r in rows if r["workload"] == workload and r["server"] == "xsock_green"), None
        )
        unit = "MB/s" if workload == "bulk" else "req/s"
        cpu = "server CPU µs/MB" if workload == "bulk" else "server CPU µs/req"
        out.append(f"\n{workload}\n")
        out.append(f"| server | {unit} | {cpu} | xsock_green throughput ratio | CPU ratio |")
        out.append("|---|---:|---:|---:|---:|")
        for r in rows:
            if r["workload"] != workload:
                continue
            tp = cpu_ratio = "-"
            if mine is not None:
                tp = f"{mine['per_s'] / r['per_s']:.2f}x"
                cpu_ratio = f"{r['cpu_us'] / mine['cpu_us']:.2f}x"
            out.append(
                f"| {r['server']} | {r['per_s']:,.1f} | {r['cpu_us']:,.1f} | {tp} | {cpu_ratio} |"
            )
    return "\n".join(out)


if __name__ == "__main__":
    main()
