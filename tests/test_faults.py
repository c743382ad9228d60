"""SPEC section 2, faulty peers and descriptors.

A reset peer, a half-closed peer, running out of descriptors in accept and
a descriptor number reused by a new socket: each gives xmake's failure
values (never an exception) and leaves everything else working.  Peers
that misbehave at the TCP level are standard-library sockets of this
(unpatched) process, used only where they cannot block.
"""

from __future__ import annotations

import errno
import os
import select
import socket as stdsocket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import gevent
import pytest
from conftest import Runner, pair

from xsock_green import Bytes, Socket, socket

SCRIPTS = os.path.join(os.path.dirname(__file__), "scripts")
LONG_MS = 5000


pytestmark = pytest.mark.usefixtures("no_hub_traceback")


def std_peer(listener: Socket) -> tuple[stdsocket.socket, Socket]:
    """A standard-library client and the xsock_green side that accepted it."""
    peer = stdsocket.create_connection(("127.0.0.1", listener.sockname()[1]), timeout=5)
    accepted = listener.accept(timeout=LONG_MS)
    assert accepted is not None, listener.last_error
    return peer, accepted


def reset(peer: stdsocket.socket) -> None:
    """Close with SO_LINGER 0: the kernel sends RST instead of FIN."""
    peer.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()


@pytest.fixture
def peers(listener: Socket) -> Iterator[Callable[[], tuple[stdsocket.socket, Socket]]]:
    made: list[tuple[stdsocket.socket, Socket]] = []

    def make() -> tuple[stdsocket.socket, Socket]:
        made.append(std_peer(listener))
        return made[-1]

    yield make
    for peer, ours in made:
        peer.close()
        ours.close()


# -- reset ------------------------------------------------------------------


def test_reset_while_receiving_gives_minus_one(
    run: Runner,
    peers: Callable[[], tuple[stdsocket.socket, Socket]],
    spawn: Callable[..., gevent.Greenlet],
) -> None:
    def body() -> None:
        peer, ours = peers()
        peer.sendall(b"first part")
        buff = Bytes(64)
        _, data = ours.recv(buff, None, {"block": True, "timeout": LONG_MS})
        assert data is not None and bytes(data) == b"first part"
        reset_at: list[float] = []

        def resetter() -> None:
            gevent.idle()  # ours is waiting for the rest
            reset_at.append(time.perf_counter())
            reset(peer)

        spawn(resetter)
        assert ours.recv(buff, None, {"block": True, "timeout": LONG_MS}) == (-1, None)
        assert time.perf_counter() - reset_at[0] < 0.1
        err = ours.last_error
        assert err is not None and err.errno == errno.ECONNRESET, err
        # Later calls keep failing quietly.
        assert ours.recv(buff, None, {"block": True}) == (-1, None)
        assert ours.send("x", block=True) == -1
        assert ours.close() is True

    run(body)


def test_reset_while_sending_gives_minus_one(
    run: Runner,
    peers: Callable[[], tuple[stdsocket.socket, Socket]],
    spawn: Callable[..., gevent.Greenlet],
) -> None:
    def body() -> None:
        peer, ours = peers()
        assert ours.ctrl(socket.CTRL_SET_SENDBUFF, 65536)
        peer.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 65536)
        got: list[int] = []

        def reader_then_reset() -> None:
            gevent.idle()  # ours has filled the buffers and waits
            got.append(len(peer.recv(65536)))  # data is queued: does not block
            reset(peer)

        spawn(reader_then_reset)
        payload = bytes(16 << 20)
        assert ours.send(payload, block=True, timeout=LONG_MS) == -1
        assert got and got[0] > 0, "the peer read nothing: not mid-transfer"
        err = ours.last_error
        assert err is not None and err.errno in (errno.ECONNRESET, errno.EPIPE), err

    run(body)


def test_reset_before_the_call_gives_minus_one(
    run: Runner, peers: Callable[[], tuple[stdsocket.socket, Socket]]
) -> None:
    def body() -> None:
        peer, ours = peers()
        reset(peer)
        assert ours.wait(socket.EV_RECV, LONG_MS) == socket.EV_RECV
        assert ours.recv(Bytes(8)) == (-1, None)
        assert ours.last_error is not None and ours.last_error.errno == errno.ECONNRESET
        assert ours.send("x") == -1
        assert ours.last_error is not None

    run(body)


# -- half close -----------------------------------------------------------


def test_half_closed_peer(
    run: Runner, peers: Callable[[], tuple[stdsocket.socket, Socket]]
) -> None:
    def body() -> None:
        peer, ours = peers()
        peer.sendall(b"last words")
        peer.shutdown(stdsocket.SHUT_WR)
        buff = Bytes(64)
        n, data = ours.recv(buff, 10, {"block": True, "waitall": True, "timeout": LONG_MS})
        assert data is not None and (n, bytes(data)) == (10, b"last words")
        # End of stream, reported as such, as many times as asked.
        for _ in range(2):
            assert ours.recv(buff, None, {"block": True, "timeout": LONG_MS}) == (-1, None)
            assert "end of stream" in str(ours.last_error)
        assert ours.recv(buff) == (-1, None)
        # Readable (at end) and writable: the mask is right after the end.
        assert ours.wait(socket.EV_RECV | socket.EV_SEND, LONG_MS) == 3
        # The other direction still works.
        assert ours.send("reply", block=True, timeout=LONG_MS) == 5
        ready, _, _ = select.select([peer], [], [], 5)
        assert ready and peer.recv(64) == b"reply"
        peer.close()

    run(body)


# -- EMFILE in accept -----------------------------------------------------------


def test_emfile_in_accept_returns_none_and_server_recovers(run: Runner) -> None:
    clients = 4
    proc = subprocess.Popen(
        [sys.executable, os.path.join(SCRIPTS, "emfile_server.py"), str(clients)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "the server printed nothing"
        line = proc.stdout.readline()
        assert line.startswith("PORT "), (line, proc.stderr.read() if proc.stderr else "")
        port = int(line.split()[1])

        def body() -> None:
            # All clients connect and speak at once; the kernel queues them.
            socks = [socket.connect("127.0.0.1", port, timeout=LONG_MS) for _ in range(clients)]
            try:
                for i, sock in enumerate(socks):
                    assert sock is not None
                    assert sock.send(f"ping {i}", block=True) == 6
                # Served one at a time, as descriptors come back.
                for i, sock in enumerate(socks):
                    assert sock is not None
                    _, data = sock.recv(Bytes(16), None, {"block": True, "timeout": LONG_MS})
                    assert data is not None and bytes(data) == f"ping {i}".encode()
                    sock.close()
            finally:
                for sock in socks:
                    if sock is not None:
                        sock.close()

        run(body)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    fields = dict(item.split("=") for item in out.split()[1:])
    assert out.startswith("OK ") and fields["served"] == str(clients), out
    # The first accept always meets a full table; later ones do when a
    # client is queued before the previous connection has ended.
    assert int(fields["emfile"]) >= 1, out
    assert fields["immediate"] == "True", out


# -- a reused descriptor number -----------------------------------------------


def test_new_socket_reusing_a_closed_sockets_fd_works(
    run: Runner, listener: Socket, spawn: Callable[..., gevent.Greenlet]
) -> None:
    def body() -> None:
        old_client, old = pair(listener)
        # The old socket has live watchers and a waiter when it is closed.
        waiter = spawn(old.recv, Bytes(8), {"block": True})
        gevent.idle()
        fd = old.rawfd()
        assert old.close() is True
        assert waiter.get(timeout=1) == (-1, None)
        old_client.close()
        spare: list[Socket] = []
        try:
            new = socket.tcp()
            for _ in range(64):
                if new.rawfd() == fd:
                    break
                spare.append(new)
                new = socket.tcp()
            assert new.rawfd() == fd, "the descriptor number was not reused"
            with new:
                assert new.connect("127.0.0.1", listener.sockname()[1], timeout=LONG_MS) == 1
                peer = listener.accept(timeout=LONG_MS)
                assert peer is not None
                with peer:
                    # Waits on the reused number are woken by its own events.
                    late = spawn(lambda: (gevent.idle(), peer.send("to new", block=True)))
                    n, data = new.recv(Bytes(16), None, {"block": True, "timeout": LONG_MS})
                    assert data is not None and bytes(data) == b"to new"
                    assert late.get(timeout=1)[1] == 6
                    # The closed object never touches the number it used to own.
                    assert old.send("stale") == -1
                    assert "closed" in str(old.last_error)
                    assert old.close() is False
                    assert peer.recv(Bytes(16)) == (0, None)
                    big = bytes(4 << 20)
                    sender = spawn(new.send, big, {"block": True, "timeout": LONG_MS})
                    buff = Bytes(len(big))
                    n, _ = peer.recv(
                        buff, None, {"block": True, "waitall": True, "timeout": LONG_MS}
                    )
                    assert n == len(big) and sender.get(timeout=5) == len(big)
        finally:
            for sock in spare:
                sock.close()

    run(body)
