"""``sendfile``: a file's bytes through the transfer core.

A file object is sent from its current position, and its position ends
after what was sent, as the standard library's ``socket.sendfile`` does; the
``start``/``last`` range counts from there.  A regular file goes zero-copy
(``os.sendfile``, kind ``SENDFILE``); a file in memory (``io.BytesIO``) is
sent as ``send`` sends bytes; a file of unknown size (a pipe) is read and
sent piece by piece until its end, in block mode only, since a non-block
call could not give back what it had read.  Over TLS the bytes must be
encrypted, so a regular file is read piece by piece (``os.pread``) and each
piece sent as ``send`` sends it (kind ``TLS_SEND``).
"""

from __future__ import annotations

import io
import os
import stat
from typing import IO, Any

from ._args import span
from ._core import CHUNK, SEND, SENDFILE, TLS_SEND, Core, move
from ._errors import TimeoutError
from ._hub import monotonic as _monotonic
from ._options import EMPTY, Options

__all__ = ["send_file"]


def send_file(sock: Core, file: Any, o: Options, block: bool) -> int:
    """Send ``file`` (an object with ``read``, or a path) over ``sock``."""
    if isinstance(file, (str, bytes, os.PathLike)):
        with open(file, "rb") as f:
            return _from_file(sock, f, o, block)
    if not hasattr(file, "read"):
        raise TypeError(f"file must be a binary file object or a path, not {type(file).__name__}")
    return _from_file(sock, file, o, block)


def _from_file(sock: Core, f: IO[bytes], o: Options, block: bool) -> int:
    try:
        fd = f.fileno()
    except (OSError, AttributeError, ValueError, io.UnsupportedOperation):
        fd = -1
    kind = SEND if sock._tls is None else TLS_SEND
    if fd >= 0 and not stat.S_ISREG(os.fstat(fd).st_mode):
        return _send_stream(sock, f, o, block, kind)
    if fd < 0:
        data = f.read()  # in memory already (io.BytesIO)
        if isinstance(data, str):
            raise TypeError("file must be opened in binary mode")
        return _send_all(sock, data, o, block, f, kind)
    pos = f.tell()
    begin, end = span(o, os.fstat(fd).st_size - pos)
    if kind == TLS_SEND:
        return _send_read(sock, f, fd, pos + begin, end - begin, o, block)
    sock._live()
    sock._to = (fd, pos + begin)
    try:
        n = move(sock, SENDFILE, range(end - begin), block, o)
    except TimeoutError as exc:
        f.seek(pos + begin + exc.moved)
        raise
    finally:
        sock._to = None
    sent = max(n, 0)
    f.seek(pos + begin + sent)
    return sent


def _send_all(sock: Core, data: bytes, o: Options, block: bool, f: IO[bytes], kind: int) -> int:
    """A file already in memory: its range, sent as ``send`` would."""
    begin, end = span(o, len(data))
    start = f.tell() - len(data) + begin
    try:
        n = max(move(sock, kind, memoryview(data)[begin:end], block, o), 0)
    except TimeoutError as exc:
        f.seek(start + exc.moved)
        raise
    f.seek(start + n)  # what was not sent stays unread
    return n


def _send_read(
    sock: Core, f: IO[bytes], fd: int, offset: int, size: int, o: Options, block: bool
) -> int:
    """A regular file over TLS: read pieces and send each as ``send`` would.

    Non-block, one piece at most (the TLS layer keeps what it took; the
    same call again reports it, see ``_tls``).  The file's position ends
    after what was sent.
    """
    sock._live()
    timeout = o.get("timeout", -1)
    deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
    sent = 0
    try:
        while sent < size:
            piece = os.pread(fd, min(CHUNK, size - sent), offset + sent)
            if not piece:
                break  # the file shrank
            left = None if deadline is None else max(0.0, deadline - _monotonic()) * 1000.0
            try:
                n = move(sock, TLS_SEND, piece, block, EMPTY if left is None else {"timeout": left})
            except TimeoutError as exc:
                sent += exc.moved
                raise TimeoutError(f"{sock}: sendfile timeout", sent) from None
            if n <= 0:
                break
            sent += n
            if not block:
                break
    finally:
        f.seek(offset + sent)
    return sent


def _send_stream(sock: Core, f: IO[bytes], o: Options, block: bool, kind: int) -> int:
    """A file of unknown size (a pipe): read pieces and send each whole."""
    if not block:
        raise ValueError(
            "sendfile of a file of unknown size (a pipe) needs block mode: "
            "a non-block call could not give back what it read"
        )
    if "start" in o or "last" in o:
        raise ValueError("start/last need a file of known size (a regular file or BytesIO)")
    timeout = o.get("timeout", -1)
    deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
    sent = 0
    while True:
        piece = f.read(CHUNK)
        if not piece:
            return sent
        left = None if deadline is None else max(0.0, deadline - _monotonic()) * 1000.0
        try:
            sent += move(sock, kind, piece, True, EMPTY if left is None else {"timeout": left})
        except TimeoutError as exc:
            raise TimeoutError(f"{sock}: sendfile timeout", sent + exc.moved) from None
