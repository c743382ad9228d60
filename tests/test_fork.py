"""SPEC section 2, processes: a listener bound before fork() serves in both.

The server runs in its own process (``scripts/fork_server.py``); this test
is the client.  It opens two connections: each is accepted by a different
process (each accepts one and stops), and each echoes with its pid while
the other connection is open too, so both hubs wait at the same time.
The child must exit with status 0 and print nothing on stderr.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time

import pytest
from conftest import Runner

from xsock_green import Bytes, socket

SCRIPT = os.path.join(os.path.dirname(__file__), "scripts", "fork_server.py")
ROUNDS = 20


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """One line of the child's stdout, waiting at most ``timeout`` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the server printed nothing"
    return proc.stdout.readline()


def ask(sock: socket.Socket, message: str) -> str:
    assert sock.send(message, block=True) == len(message)
    n, data = sock.recv(Bytes(256), None, {"block": True, "timeout": 5000})
    assert n > 0 and data is not None, sock.last_error
    return data.str()


def converse(port: int, rounds: int) -> list[list[str]]:
    """Two connections held open at once, talked to in turns; the replies of each."""
    socks = [socket.connect("127.0.0.1", port, timeout=5000) for _ in range(2)]
    try:
        assert all(s is not None for s in socks)
        replies: list[list[str]] = [[], []]
        for r in range(rounds):
            for i, sock in enumerate(socks):
                assert sock is not None
                replies[i].append(ask(sock, f"hello {i}.{r}"))
        return replies
    finally:
        for sock in socks:
            if sock is not None:
                sock.close()


@pytest.mark.parametrize("how", ["os", "gevent"], ids=["os.fork", "gevent.fork"])
def test_listener_bound_before_fork_is_served_by_parent_and_child(run: Runner, how: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, SCRIPT, how],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = read_line(proc, 30)
        assert line.startswith("PORT "), line
        port = int(line.split()[1])

        def body() -> list[list[str]]:
            started = time.perf_counter()
            replies = converse(port, ROUNDS)
            assert time.perf_counter() - started < 5
            return replies

        replies = run(body)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    pids: list[int] = []
    for i, conversation in enumerate(replies):
        # One process answers each connection, every time.
        assert len({r.split()[0] for r in conversation}) == 1, conversation
        assert [r.split(" ", 1)[1] for r in conversation] == [
            f"hello {i}.{r}" for r in range(ROUNDS)
        ]
        pids.append(int(conversation[0].split()[0]))
    assert proc.returncode == 0, err
    assert "CHILD 0" in out, (out, err)
    assert err == "", err
    assert len(set(pids)) == 2 and proc.pid in pids, pids
