"""``proxy_protocol`` behind a real HAProxy: the deployment README describes.

HAProxy (TCP mode) runs in the foreground (``-db``) in front of two
xsock_green servers of this process, with ``send-proxy`` (version 1) or
``send-proxy-v2`` and health checks every 100 ms; the checks send their own
header (in version 1 one that names the check's own connection, in version
2 a ``LOCAL`` one), which the servers must read and accept.  Its
configuration is written into a temporary folder; it is always killed.

No port race: the frontend sockets are bound (port 0) and listening in this
process and handed to HAProxy as ``bind fd@N`` (HAProxy cannot bind port 0
itself and report the port), and the backends are our servers on port 0.
Nothing is ordered by sleeping: HAProxy's view of its servers comes from its
stats socket (``show stat``: ``status`` and ``check_status``), polled in
bounded loops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket as std_socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
import gevent.event
import pytest

from xsock_green import Reader, Socket, _proxy, server, socket

HAPROXY = shutil.which("haproxy") or next(
    (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)), None
)
pytestmark = [
    pytest.mark.skipif(
        HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy)"
    ),
    pytest.mark.usefixtures("no_hub_traceback"),
]

LONG_MS = 5000
#: A client may see its connection through HAProxy closed before the
#: server's greeting: the connection sat in the backlog of a server whose
#: listener ``stop`` closed.  Its request never reached a handler, so the
#: client tries again (HAProxy itself retries the refused connects).
ATTEMPTS = 5

CONFIG = """\
global
    stats socket {folder}/stats.sock mode 600 level admin
    stats timeout 10s

defaults
    mode tcp
    timeout connect 500ms
    timeout client 10s
    timeout server 10s
    # A refused connect is tried again, on another server each time.
    retries 3
    option redispatch 1

frontend clients
{binds}
    default_backend app

backend app
    balance roundrobin
    default-server {send} check inter 100ms fastinter 100ms downinter 100ms rise 1 fall 1
{servers}
"""


@dataclass
class HAProxy:
    """A running haproxy; ``port`` (and ``port6`` when IPv6 loopback works) is its frontend."""

    folder: Path
    proc: subprocess.Popen[bytes]
    port: int
    port6: int | None

    def log(self) -> str:
        return (self.folder / "haproxy.log").read_text(errors="replace")

    def stats(self) -> dict[str, dict[str, str]]:
        """``show stat`` of the backend, by server name."""
        sock = socket.connect_unix(str(self.folder / "stats.sock"), {"timeout": LONG_MS})
        if sock is None:
            return {}
        with sock:
            if sock.send("show stat\n", {"block": True, "timeout": LONG_MS}) < 0:
                return {}
            reader, text = Reader(sock), b""
            while True:
                n, data = reader.read(65536, {"timeout": LONG_MS})
                if n <= 0 or data is None:
                    break
                text += data
        lines = text.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        names = lines[0][2:].split(",")
        rows = [dict(zip(names, line.split(","), strict=False)) for line in lines[1:] if line]
        return {row["svname"]: row for row in rows if row.get("pxname") == "app"}

    def until(self, what: str, cond: Callable[[dict[str, dict[str, str]]], bool]) -> None:
        """Poll the stats until ``cond(stats)``; fail after 10 s or if haproxy died."""
        deadline = time.monotonic() + 10
        while True:
            assert self.proc.poll() is None, f"haproxy exited: {self.log()}"
            stats = self.stats()
            if stats and cond(stats):
                return
            assert time.monotonic() < deadline, f"haproxy never saw {what}: {stats}\n{self.log()}"
            gevent.sleep(0.02)

    def until_checked_up(self, *names: str) -> None:
        self.until(
            f"{names} up",
            lambda s: all(s[n]["status"] == "UP" and s[n]["check_status"] == "L4OK" for n in names),
        )


@pytest.fixture
def haproxy(short_tmp: str) -> Iterator[Callable[[str, list[str]], HAProxy]]:
    """``haproxy(send, servers)``: start one with ``servers`` lines (``NAME ADDRESS``)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(send: str, servers: list[str]) -> HAProxy:
        assert HAPROXY is not None
        folder = Path(short_tmp)
        fronts = [std_socket.create_server(("127.0.0.1", 0), backlog=128)]
        with contextlib.suppress(OSError):
            fronts.append(
                std_socket.create_server(("::1", 0), family=std_socket.AF_INET6, backlog=128)
            )
        try:
            binds = "\n".join(f"    bind fd@{s.fileno()}" for s in fronts)
            lines = "\n".join(f"    server {line}" for line in servers)
            config = folder / "haproxy.cfg"
            config.write_text(CONFIG.format(folder=folder, binds=binds, send=send, servers=lines))
            with open(folder / "haproxy.log", "wb") as out:
                proc = subprocess.Popen(
                    [HAPROXY, "-db", "-f", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=[s.fileno() for s in fronts],
                )
            started.append(proc)
            ports = [s.getsockname()[1] for s in fronts]
        finally:
            for sock in fronts:
                sock.close()  # haproxy has its own copies
        return HAProxy(folder, proc, ports[0], ports[1] if len(ports) > 1 else None)

    try:
        yield start
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@dataclass
class Headers:
    """The PROXY headers the servers read (``_proxy.read_header`` wrapped)."""

    seen: list[_proxy.Header] = field(default_factory=list)

    def to(self, *dests: Any) -> list[_proxy.Header]:
        """The headers of connections made to one of ``dests`` (their ``dest``)."""
        return [h for h in self.seen if h.dest in dests]


@pytest.fixture
def headers(monkeypatch: pytest.MonkeyPatch) -> Headers:
    record = Headers()
    read = _proxy.read_header

    def counting(sock: Socket, timeout: float) -> _proxy.Header:
        header = read(sock, timeout)
        record.seen.append(header)
        return header

    monkeypatch.setattr(_proxy, "read_header", counting)
    return record


def backend(name: str) -> Callable[[Socket], None]:
    """Greet with the server's name and ``peeraddr()``, then echo one line."""

    def handle(sock: Socket) -> None:
        if sock.send(f"{name} {sock.peeraddr()}\n", {"block": True, "timeout": LONG_MS}) < 0:
            return  # a health check, gone already
        n, line = Reader(sock).readline({"timeout": LONG_MS})
        if n > 0 and line is not None:
            sock.send(line, {"block": True, "timeout": LONG_MS})

    return handle


@dataclass
class Answer:
    server: str
    peer: str  # what the handler's peeraddr() said
    me: str  # the client's own address
    attempts: int


def request(host: str, port: int, text: str) -> Answer:
    """One request through HAProxy; tries again only if no handler ever saw it."""
    family = socket.IPV6 if ":" in host else socket.IPV4
    for attempt in range(1, ATTEMPTS + 1):
        sock = socket.connect(host, port, {"timeout": LONG_MS, "family": family})
        assert sock is not None, socket.last_error()
        with sock:
            me = sock.sockname()
            reader = Reader(sock)
            n, greeting = reader.readline({"timeout": LONG_MS})
            if n < 0:
                continue  # closed before any handler ran: the request was never sent
            assert n > 0 and greeting is not None, f"no greeting: {reader.last_error}"
            name, peer = greeting.decode().split()
            assert sock.send(text + "\n", {"block": True, "timeout": LONG_MS}) > 0
            n, echo = reader.readline({"timeout": LONG_MS})
            assert echo == (text + "\n").encode(), f"{name} lost {text!r}: {reader.last_error}"
            mine = f"[{me[0]}]:{me[1]}" if family == socket.IPV6 else f"{me[0]}:{me[1]}"
            return Answer(name, peer, mine, attempt)
    pytest.fail(f"{text!r}: closed before a greeting {ATTEMPTS} times")


@pytest.fixture
def backends() -> Iterator[Callable[..., server.Server]]:
    made: list[server.Server] = []

    def start(name: str, **opt: Any) -> server.Server:
        srv = server.start(backend(name), "127.0.0.1", 0, {"proxy_protocol": True, **opt})
        made.append(srv)
        return srv

    yield start
    for srv in made:
        srv.stop(0)


def assert_checks_read(send: str, headers: Headers, *backends: server.Server) -> None:
    """HAProxy's health checks came with their own headers, and were read.

    Version 1 checks name the check's own connection (to the server's
    address); version 2 checks are ``LOCAL``.
    """
    if send == "send-proxy":
        checks = headers.to(*(s.sockname() for s in backends))
        assert checks and all(h.family == "TCP4" for h in checks), headers.seen
    else:
        assert any(h.family == "LOCAL" for h in headers.seen), headers.seen


@pytest.mark.parametrize("send", ["send-proxy", "send-proxy-v2"])
def test_each_handler_sees_its_client_and_connections_spread_over_both(
    send: str,
    haproxy: Callable[[str, list[str]], HAProxy],
    backends: Callable[..., server.Server],
    headers: Headers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    s1, s2 = backends("s1"), backends("s2")
    hp = haproxy(send, [f"s{i} 127.0.0.1:{s.sockname()[1]}" for i, s in ((1, s1), (2, s2))])
    with caplog.at_level(logging.WARNING, logger="xsock_green.server"):
        hp.until_checked_up("s1", "s2")
        answers = [request("127.0.0.1", hp.port, f"hello {i}") for i in range(12)]
        if hp.port6 is not None:
            answers += [request("::1", hp.port6, f"hello six {i}") for i in range(4)]
    for answer in answers:
        assert answer.peer == answer.me, answer  # the client's own address and port
        assert answer.attempts == 1, answer
    served = Counter(a.server for a in answers)
    assert served["s1"] >= 4 and served["s2"] >= 4, served  # roundrobin: both take turns
    clients = headers.to(("127.0.0.1", hp.port), ("::1", hp.port6, 0, 0))
    assert Counter(h.family for h in clients) == Counter(
        {"TCP4": 12, "TCP6": 4 if hp.port6 is not None else 0}
    )
    assert all(h.version == (1 if send == "send-proxy" else 2) for h in headers.seen)
    assert_checks_read(send, headers, s1, s2)
    assert caplog.records == [], "a check or a client was refused"


@pytest.mark.parametrize("send", ["send-proxy", "send-proxy-v2"])
def test_a_stopped_server_leaves_the_rotation_and_no_request_is_lost(
    send: str,
    haproxy: Callable[[str, list[str]], HAProxy],
    backends: Callable[..., server.Server],
    spawn: Callable[..., gevent.Greenlet],
) -> None:
    s1, s2 = backends("s1"), backends("s2")
    hp = haproxy(send, [f"s{i} 127.0.0.1:{s.sockname()[1]}" for i, s in ((1, s1), (2, s2))])
    hp.until_checked_up("s1", "s2")
    done: list[tuple[str, Answer]] = []  # (phase when the request began, answer)
    phase = ["both"]
    halt = gevent.event.Event()

    def client(k: int) -> int:
        i = 0
        while not halt.is_set():
            began = phase[0]
            answer = request("127.0.0.1", hp.port, f"client {k} request {i}")
            assert answer.peer == answer.me, answer
            done.append((began, answer))
            i += 1
        return i

    clients = [spawn(client, k) for k in range(4)]

    def served(which: str) -> set[str]:
        return {a.server for p, a in done if p == which}

    deadline = time.monotonic() + 10
    while served("both") != {"s1", "s2"}:
        assert time.monotonic() < deadline, f"both servers never answered: {done}"
        assert not any(c.ready() for c in clients), [c.get() for c in clients if c.ready()]
        gevent.sleep(0.005)

    # Graceful: the listener closes at once, requests in s1's handlers finish.
    phase[0] = "stopping"
    assert s1.stop(LONG_MS) == 0
    phase[0] = "stopped"
    hp.until("s1 down", lambda s: s["s1"]["status"].startswith("DOWN"))
    phase[0] = "down"
    mark = len(done)
    deadline = time.monotonic() + 10
    while len(done) < mark + 40:
        assert time.monotonic() < deadline, f"too few requests after s1 went down: {done[mark:]}"
        assert not any(c.ready() for c in clients), [c.get() for c in clients if c.ready()]
        gevent.sleep(0.005)
    halt.set()
    sent = sum(c.get(timeout=LONG_MS) for c in clients)  # re-raises a client's failure

    assert sent == len(done)  # every request was answered, with its own echo
    assert served("stopped") <= {"s2"} and served("down") == {"s2"}
    # Out of the rotation: no request begun after HAProxy saw s1 down had to
    # be tried again (those begun around the stop may have been).
    assert [a for p, a in done if p == "down" and a.attempts > 1] == []
    assert hp.stats()["s2"]["status"] == "UP"


@pytest.mark.parametrize("send", ["send-proxy", "send-proxy-v2"])
def test_haproxy_in_front_of_a_unix_server(
    send: str,
    haproxy: Callable[[str, list[str]], HAProxy],
    short_tmp: str,
    headers: Headers,
) -> None:
    path = f"{short_tmp}/app.sock"
    with server.start_unix(backend("u1"), path, {"proxy_protocol": True}):
        hp = haproxy(send, [f"u1 unix@{path}"])
        hp.until_checked_up("u1")
        for i in range(3):
            answer = request("127.0.0.1", hp.port, f"over unix {i}")
            assert (answer.server, answer.peer, answer.attempts) == ("u1", answer.me, 1)
    assert len(headers.to(("127.0.0.1", hp.port))) == 3
    if send == "send-proxy-v2":
        assert_checks_read(send, headers)
