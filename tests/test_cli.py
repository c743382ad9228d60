"""The ``xsock`` command, run as a user runs it: in a subprocess, with time limits.

``Child`` (also used by test_examples.py and test_real_clients.py) starts a
subprocess and reads its stdout line by line against a deadline, so a test
can wait for ``listening on ...`` and learn the port the child bound on
port 0.  Every child is killed at the end of its ``with`` block.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket as std_socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from xsock_green import Bytes, socket
from xsock_green._cli import main

_ROOT = Path(__file__).resolve().parent.parent
XSOCK = [sys.executable, "-m", "xsock_green"]
PROG = "python -m xsock_green"
LISTENING = re.compile(r"listening on (?:(?:tcp|udp) )?(\S+):(\d+)$")


class Child:
    """A subprocess whose stdout lines are read with deadlines."""

    def __init__(
        self,
        args: Sequence[str],
        stdin: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.PIPE,
    ) -> None:
        self.args = list(args)
        self.proc = subprocess.Popen(
            self.args, stdin=stdin, stdout=subprocess.PIPE, stderr=stderr, cwd=_ROOT
        )
        self._pending = b""
        self.lines: list[str] = []

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.communicate(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr, self.proc.stdin):
            if stream is not None:
                stream.close()

    def write(self, data: bytes) -> None:
        """Write ``data`` to the child's stdin (started with ``stdin=subprocess.PIPE``)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def close_stdin(self) -> None:
        """Send end of input; ``communicate`` must then not touch stdin again."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
            self.proc.stdin = None

    def readline(self, timeout: float = 10.0) -> str:
        """The next stdout line (without its newline); fails after ``timeout`` s."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._pending:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, left))
            if not ready:
                pytest.fail(f"no line from {self.args} within {timeout} s: {self._pending!r}")
            chunk = os.read(fd, 65536)
            if not chunk:
                err = self.finish(5)[1]
                pytest.fail(f"{self.args} ended its output early: {self._pending!r} {err!r}")
            self._pending += chunk
        line, _, self._pending = self._pending.partition(b"\n")
        text = line.decode("utf-8", "replace")
        self.lines.append(text)
        return text

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        """Read lines until one matches ``pattern``; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.readline(max(0.0, deadline - time.monotonic()))
            match = re.search(pattern, line)
            if match:
                return match

    def port(self, timeout: float = 10.0) -> int:
        """The port of the child's ``listening on HOST:PORT`` line."""
        return int(self.wait_for(LISTENING, timeout).group(2))

    def finish(self, timeout: float = 10.0) -> tuple[int, str, str]:
        """Wait for the child to end by itself: (status, rest of stdout, stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"{self.args} did not end within {timeout} s")
        rest = self._pending + (out or b"")
        self._pending = b""
        return (
            self.proc.returncode,
            rest.decode("utf-8", "replace"),
            (err or b"").decode("utf-8", "replace"),
        )


def xsock(*args: str, input: bytes | None = None, timeout: float = 15) -> tuple[int, str, str]:
    """Run ``python -m xsock_green ARGS`` to the end: (status, stdout, stderr)."""
    done = subprocess.run(
        [*XSOCK, *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        cwd=_ROOT,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {text!r}"
    return lines[0]


def endpoint_args(transport: str, where: str) -> list[str]:
    return [f"--{transport}", where]


# -- the entry points --------------------------------------------------------------


def test_console_script_and_module_agree() -> None:
    script = shutil.which("xsock", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("the xsock console script is not installed next to this python")
    by_script = subprocess.run([script, "--version"], capture_output=True, timeout=15, cwd=_ROOT)
    by_module = subprocess.run([*XSOCK, "--version"], capture_output=True, timeout=15, cwd=_ROOT)
    assert by_script.returncode == by_module.returncode == 0
    assert by_script.stdout == by_module.stdout
    assert by_script.stdout.decode().startswith("xsock_green ")


# -- echo-server and echo-client --------------------------------------------------


@pytest.mark.parametrize(
    ("transport", "name"), [("tcp", "SIGINT"), ("udp", "SIGTERM"), ("unix", "SIGTERM")]
)
def test_echo_server_and_client(transport: str, name: str, short_tmp: str) -> None:
    where = os.path.join(short_tmp, "e.sock") if transport == "unix" else "127.0.0.1:0"
    with Child([*XSOCK, "echo-server", *endpoint_args(transport, where)]) as server:
        line = server.readline()
        if transport == "unix":
            assert line == f"listening on unix {where}"
            target = where
        else:
            match = LISTENING.search(line)
            assert match and line.startswith(f"listening on {transport} 127.0.0.1:"), line
            target = f"127.0.0.1:{match.group(2)}"
            assert int(match.group(2)) > 0
        target_args = endpoint_args(transport, target)

        status, out, err = xsock("echo-client", *target_args, "--message", "héllo", "--count", "3")
        assert (status, out, err) == (0, "héllo\n" * 3, "")

        lines = b"first line\nsecond\n\nlast, no newline"
        status, out, err = xsock("echo-client", *target_args, input=lines)
        assert (status, out.encode(), err) == (0, lines, "")

        # One line far larger than any socket buffer.
        big = os.urandom(1_500_000).hex().encode() + b"\n"
        status, out, err = xsock("echo-client", *target_args, input=big)
        if transport == "udp":
            assert (status, out) == (1, "")
            assert one_line(err) == (
                f"{PROG} echo-client: cannot send to {target}: message too long"
            )
        else:
            assert (status, out.encode(), err) == (0, big, "")

        server.proc.send_signal(signal.Signals[name])
        status, rest, err = server.finish()
    assert (status, rest) == (0, "")
    assert err == f"{PROG} echo-server: stopped by {name}\n"
    if transport == "unix":
        assert not os.path.exists(where), "the server leaves its socket file behind"


def test_echo_server_logs_connections_and_stops_with_a_client_connected() -> None:
    with Child([*XSOCK, "echo-server", "--tcp", "127.0.0.1:0", "-v"]) as server:
        port = server.port()
        client = socket.connect("127.0.0.1", port, {"timeout": 5000})
        assert client is not None
        with client:
            assert client.send("ping", {"block": True}) == 4
            buff = Bytes(16)
            n, data = client.recv(buff, 4, {"block": True, "waitall": True, "timeout": 5000})
            assert n == 4 and data == b"ping"
            local_port = client.sockname()[1]
            server.proc.send_signal(signal.SIGINT)
            status, _rest, err = server.finish()
            # The server closed the connection on its way out.
            n, _ = client.recv(buff, 4, {"block": True, "timeout": 5000})
            assert n == -1
    assert status == 0
    assert "Traceback" not in err
    assert f"connection 1 from 127.0.0.1:{local_port}\n" in err
    assert "connection 1 closed after 4 bytes\n" in err
    assert err.endswith("stopped by SIGINT\n")


@pytest.mark.parametrize("kind", [std_socket.SOCK_STREAM, std_socket.SOCK_DGRAM])
def test_echo_server_port_in_use(kind: int) -> None:
    with std_socket.socket(std_socket.AF_INET, kind) as taken:
        taken.bind(("127.0.0.1", 0))
        if kind == std_socket.SOCK_STREAM:
            taken.listen(1)
        port = taken.getsockname()[1]
        flag = "--tcp" if kind == std_socket.SOCK_STREAM else "--udp"
        status, out, err = xsock("echo-server", flag, f"127.0.0.1:{port}")
    assert (status, out) == (1, "")
    assert one_line(err) == (
        f"{PROG} echo-server: cannot bind 127.0.0.1:{port}: address already in use"
    )


def test_echo_server_never_replaces_an_existing_unix_file(short_tmp: str) -> None:
    path = os.path.join(short_tmp, "taken")
    Path(path).write_text("not a socket")
    status, out, err = xsock("echo-server", "--unix", path)
    assert (status, out) == (1, "")
    assert "address already in use" in one_line(err)
    assert Path(path).read_text() == "not a socket"


def test_echo_client_connection_refused() -> None:
    # A bound socket that does not listen: connecting to its port is refused.
    with std_socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        status, out, err = xsock("echo-client", "--tcp", f"127.0.0.1:{port}", "-m", "x")
    assert (status, out) == (1, "")
    assert one_line(err) == (
        f"{PROG} echo-client: cannot connect to 127.0.0.1:{port}: connection refused"
    )


def test_echo_client_udp_without_echo_times_out() -> None:
    with std_socket.socket(std_socket.AF_INET, std_socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        status, out, err = xsock(
            "echo-client", "--udp", f"127.0.0.1:{port}", "-m", "lost", "--timeout", "300"
        )
        elapsed = time.monotonic() - started
        assert silent.recv(100) == b"lost\n"
    assert (status, out) == (1, "")
    assert one_line(err) == f"{PROG} echo-client: no echo within 300 ms"
    assert elapsed >= 0.3


# -- bad arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["bogus"],
        ["--nope"],
        ["echo-server"],
        ["echo-server", "--tcp", "no-port-here"],
        ["echo-server", "--tcp", "127.0.0.1:70000"],
        ["echo-server", "--tcp", "127.0.0.1:0", "--udp", "127.0.0.1:0"],
        ["echo-server", "--unix", ""],
        ["echo-server", "--udp", "127.0.0.1:0", "--workers", "2"],
        ["echo-server", "--tcp", "127.0.0.1:0", "--workers", "0"],
        ["echo-server", "--tcp", "127.0.0.1:0", "--stop-timeout", "-1"],
        ["echo-client", "--tcp", "127.0.0.1:9", "--count", "2"],
        ["echo-client", "--tcp", "127.0.0.1:9", "--timeout", "-5"],
        ["bench", "--clients", "0"],
        ["bench", "--duration", "soon"],
        ["bench", "--duration", "nan"],
        ["bench", "--size", "-1"],
        ["bench", "--transport", "sctp"],
        ["bench", "--transport", "udp", "--size", "70000"],
    ],
)
def test_bad_arguments_give_one_line_and_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        status = main(argv, prog="xsock")
    except SystemExit as exc:
        status = exc.code  # type: ignore[assignment]
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    line = one_line(err)
    assert line.startswith("xsock") and "error: " in line


def test_bad_arguments_in_a_real_process() -> None:
    status, out, err = xsock("bench", "--clients", "many")
    assert (status, out) == (2, "")
    assert one_line(err) == (
        f"{PROG} bench: error: argument --clients: expected an integer, got 'many' "
        f"(see '{PROG} bench --help')"
    )


# -- bench ------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["tcp", "unix", "udp"])
def test_bench_json(transport: str) -> None:
    status, out, err = xsock(
        "bench",
        *("--clients", "4", "--size", "512", "--duration", "1"),
        *("--transport", transport, "--json"),
    )
    assert (status, err) == (0, ""), err
    report = json.loads(one_line(out))
    for key in ("requests", "requests_per_s", "mb_per_s", "p50_us", "p99_us", "p999_us"):
        assert isinstance(report[key], (int, float)), key
    assert report["errors"] == 0
    assert (report["transport"], report["clients"], report["size"]) == (transport, 4, 512)
    assert report["requests"] > 100
    assert 1.0 <= report["duration_s"] < 5.0
    rate = report["requests"] / report["duration_s"]
    assert report["requests_per_s"] == pytest.approx(rate, rel=0.01)
    assert report["mb_per_s"] == pytest.approx(rate * 512 / 1e6, rel=0.01)
    assert 0 < report["p50_us"] <= report["p99_us"] <= report["p999_us"] <= report["max_us"]


def test_bench_messages_larger_than_the_socket_buffers() -> None:
    # 4 MiB each way cannot sit in the buffers: the client must read while it sends.
    status, out, err = xsock(
        "bench", "--clients", "2", "--size", str(4 << 20), "--duration", "0.5", "--json"
    )
    assert (status, err) == (0, "")
    report = json.loads(out)
    assert report["errors"] == 0 and report["requests"] > 0


def parse_table(out: str) -> tuple[str, dict[str, str]]:
    lines = out.strip().splitlines()
    rows = {}
    for line in lines:
        if line.startswith("| ") and not line.startswith("| metric"):
            name, value = (cell.strip() for cell in line.strip("|").split("|"))
            rows[name] = value
    title = next(line for line in lines if line.startswith("xsock bench:"))
    return title, rows


def test_bench_table() -> None:
    status, out, err = xsock(
        "bench", "--clients", "3", "--size", "100", "--duration", "0.5", "--transport", "unix"
    )
    assert (status, err) == (0, "")  # no progress bar: stderr is not a terminal
    title, rows = parse_table(out)
    assert title.startswith("xsock bench: unix, 3 clients, 100-byte messages, ")
    assert list(rows) == [
        "requests",
        "requests/s",
        "MB/s (payload)",
        "latency p50",
        "latency p99",
        "latency p99.9",
        "errors",
    ]
    assert int(rows["requests"].replace(",", "")) > 0
    assert rows["errors"] == "0"
    assert rows["latency p50"].endswith(" us")


def test_bench_progress_bar_on_a_terminal_and_sigint_stops_early() -> None:
    master, slave = pty.openpty()
    try:
        with Child(
            [*XSOCK, "bench", "--clients", "2", "--duration", "30", "--json"], stderr=slave
        ) as bench:
            os.close(slave)
            slave = -1
            seen = b""
            deadline = time.monotonic() + 10
            while b"requests" not in seen:
                ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
                assert ready, f"no progress bar on the terminal: {seen!r}"
                seen += os.read(master, 4096)
            bench.proc.send_signal(signal.SIGINT)
            status, out, _ = bench.finish()
            with contextlib.suppress(OSError):  # EIO once the child closed the terminal
                while select.select([master], [], [], 1.0)[0]:
                    chunk = os.read(master, 4096)
                    if not chunk:
                        break
                    seen += chunk
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    assert status == 0
    report = json.loads(one_line(out))
    assert report["errors"] == 0 and report["requests"] > 0
    assert report["duration_s"] < 20
    text = seen.decode("utf-8", "replace")
    assert re.search(r"\r\[[#.]{30}\] +\d+\.\d/30\.0 s", text), text
    assert "interrupted by SIGINT" in text
    assert "Traceback" not in text


def test_no_arguments_runs_the_demonstration() -> None:
    started = time.monotonic()
    status, out, err = xsock(timeout=30)
    elapsed = time.monotonic() - started
    assert (status, err) == (0, "")
    first, _, rest = out.partition("\n")
    assert first.startswith(f"{PROG}: no command given, so here is a 5-second demonstration")
    title, rows = parse_table(rest)
    match = re.fullmatch(r"xsock bench: tcp, 10 clients, 1024-byte messages, (\d+\.\d\d) s", title)
    assert match and 5.0 <= float(match.group(1)) < 15, title
    assert rows["errors"] == "0"
    assert int(rows["requests"].replace(",", "")) > 1000
    assert 5.0 <= elapsed < 20
    # Two closing lines: what the numbers mean (with the figure from
    # docs/BENCHMARKS.md) and which example to run next.
    meaning, after = out.strip().splitlines()[-2:]
    assert meaning.startswith("What the numbers mean:") and "docs/BENCHMARKS.md" in meaning
    assert re.search(r"serves \d+\.\d+x the requests/s of gevent's StreamServer", meaning)
    assert after.startswith("Next: run 'python examples/chat_server.py'")


def test_demo_epilogue_without_the_benchmarks_document(tmp_path: Path) -> None:
    from xsock_green._cli import _stream_server_ratio

    assert _stream_server_ratio(tmp_path / "missing.md") is None
    (tmp_path / "changed.md").write_text("# Benchmarks\n\nnothing measured yet\n")
    assert _stream_server_ratio(tmp_path / "changed.md") is None
