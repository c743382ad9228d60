"""``Reader``: buffered reading of lines and frames over a stream socket.

Protocol code (Redis, SMTP, HTTP/1) reads "up to the next ``\\r\\n``" or
"exactly 42 bytes", while ``recv`` returns whatever one system call brought,
in a view that the next ``recv`` overwrites.  ``Reader`` sits between the two
so each server does not grow its own 35-line line reader.  It is built only
on the public socket API: block ``recv`` into its own ``Bytes`` buffer, with
the time left of the caller's deadline.

One ``bytearray`` holds what arrived and was not yet returned, from a read
offset on; the consumed front is cut off once per receive, not once per line,
and a separator is searched for only in the newly arrived bytes (plus
``len(sep) - 1`` bytes before them), so long lines cost linear time.  Results
are ``bytes`` copies that stay valid.  A timeout or an end of stream consumes
nothing: the bytes stay buffered for the next call.
"""

from __future__ import annotations

import errno as _errno
import time
from collections.abc import Mapping
from typing import Any

from ._bytes import Bytes
from ._constants import TCP
from ._errors import SocketError, TimeoutError
from ._options import Options, check_int, options
from ._socket import Socket

__all__ = ["Reader"]

_K_READ = frozenset({"timeout"})
_BLOCK: Options = {"block": True}
_DEFAULT_LIMIT = 65536


class Reader:
    """Buffered reading over a stream socket (plain or TLS), for framed protocols.

    ``Reader(sock, size=65536)``: ``size`` is how much one receive asks for,
    not a cap on frames.  Every method takes an option table (or keywords)
    with ``timeout`` in milliseconds, a deadline for the whole call (``-1``,
    the default, waits without limit; ``0`` does not wait), and returns
    xmake-style values where ``data`` is a ``bytes`` copy:

    * ``(n, data)`` on success;
    * ``(0, None)`` on timeout: nothing is consumed, what arrived stays
      buffered for the next call;
    * ``(-1, None)`` on end of stream, failure, or a line over ``limit``;
      bytes that arrived stay in ``buffered()``, and ``last_error`` says why
      (for a line over ``limit`` its ``errno`` is ``errno.EMSGSIZE``, for a
      timeout ``errno.ETIMEDOUT``).

    Calls wait the way the socket's block calls do: inside a greenlet they
    yield, from the main greenlet they block.  Do not mix ``sock.recv`` with
    a ``Reader`` on the same socket: the reader may already hold the bytes.
    """

    __slots__ = ("_buf", "_pos", "_rbuf", "_rview", "_size", "_sock", "_view", "last_error")

    def __init__(self, sock: Socket, size: int = 65536) -> None:
        if not isinstance(sock, Socket):
            raise TypeError(f"Reader needs an xsock_green socket, not {type(sock).__name__}")
        if sock.type() != TCP:
            raise TypeError(f"Reader is for stream sockets (tcp, unix); {sock} is not one")
        check_int("size", size, 1)
        self._sock = sock
        self._size = size
        self._rbuf = Bytes(size)
        self._rview = self._rbuf.view()
        self._buf = bytearray()
        # A cached view of _buf makes each returned slice one copy; it is
        # released around every resize (_fill), where nothing else holds it.
        self._view = memoryview(self._buf)
        self._pos = 0
        #: Why the last call returned ``0`` or ``-1`` (a ``SocketError``), or
        #: ``None`` after a success, as ``sock.last_error`` is.
        self.last_error: OSError | None = None

    @property
    def sock(self) -> Socket:
        """The socket this reader reads from."""
        return self._sock

    def __repr__(self) -> str:
        return f"<Reader {self._sock} buffered={len(self._buf) - self._pos}>"

    def buffered(self) -> bytes:
        """The bytes read from the socket and not yet returned (a copy)."""
        return self._view[self._pos :].tobytes()

    # -- reading ----------------------------------------------------------

    def readline(
        self, limit: int | Options = _DEFAULT_LIMIT, opt: Options | None = None, /, **kw: Any
    ) -> tuple[int, bytes | None]:
        """The next line with its ``\\n``: ``(n, data)``, ``(0, None)``, ``(-1, None)``.

        ``limit`` counts the ``\\n``: once ``limit`` bytes are buffered
        without one, the call returns ``(-1, None)`` and consumes nothing.
        Key ``timeout`` (ms).  ``readline({"timeout": 100})`` is accepted.
        """
        if opt is None and not kw and type(limit) is int:
            # The common case, inline: the line is already buffered.
            pos = self._pos
            end = self._buf.find(b"\n", pos, pos + limit)
            if end >= 0:
                end += 1
                self._pos = end
                self.last_error = None
                return end - pos, self._view[pos:end].tobytes()
        return self._until(b"\n", limit, opt, kw, "readline")

    def readuntil(
        self,
        sep: bytes | bytearray | str,
        limit: int | Options = _DEFAULT_LIMIT,
        opt: Options | None = None,
        /,
        **kw: Any,
    ) -> tuple[int, bytes | None]:
        """The bytes up to and including ``sep``: ``(n, data)``, ``(0, None)``, ``(-1, None)``.

        ``sep`` is non-empty ``bytes`` (a ``str`` is encoded as UTF-8);
        ``limit`` counts ``sep`` as ``readline``'s does.  Key ``timeout`` (ms).
        """
        if isinstance(sep, str):
            sep = sep.encode("utf-8", "surrogateescape")
        elif isinstance(sep, bytearray):
            sep = bytes(sep)
        elif not isinstance(sep, bytes):
            raise TypeError(f"sep must be bytes or str, not {type(sep).__name__}")
        if not sep:
            raise ValueError("sep must not be empty")
        return self._until(sep, limit, opt, kw, "readuntil")

    def readexactly(
        self, n: int, opt: Options | None = None, /, **kw: Any
    ) -> tuple[int, bytes | None]:
        """Exactly ``n`` bytes: ``(n, data)``, ``(0, None)``, ``(-1, None)``.

        On end of stream before ``n`` bytes the ones that came stay in
        ``buffered()``.  ``readexactly(0)`` is ``(0, b"")``.  Key ``timeout`` (ms).
        """
        check_int("n", n, 0)
        o = options("readexactly", _K_READ, opt, kw)
        deadline = _deadline(o)
        while len(self._buf) - self._pos < n:
            got = self._fill(deadline, "readexactly")
            if got <= 0:
                return got, None
        pos = self._pos
        self._pos = pos + n
        self.last_error = None
        return n, self._view[pos : pos + n].tobytes()

    def read(self, size: int, opt: Options | None = None, /, **kw: Any) -> tuple[int, bytes | None]:
        """At most ``size`` bytes: ``(n, data)``, ``(0, None)``, ``(-1, None)``.

        What is buffered, at once, if anything is; else what one receive
        brings.  After an end of stream it still returns what is buffered,
        then ``(-1, None)``.  ``read(0)`` is ``(0, b"")``.  Key ``timeout`` (ms).
        """
        check_int("size", size, 0)
        o = options("read", _K_READ, opt, kw)
        if size and len(self._buf) == self._pos:
            got = self._fill(_deadline(o), "read")
            if got <= 0:
                return got, None
        pos = self._pos
        end = min(len(self._buf), pos + size)
        self._pos = end
        self.last_error = None
        return end - pos, self._view[pos:end].tobytes()

    # -- the machinery ----------------------------------------------------

    def _until(
        self, sep: bytes, limit: int | Options, opt: Options | None, kw: Options, what: str
    ) -> tuple[int, bytes | None]:
        if isinstance(limit, Mapping):  # readline({"timeout": ...})
            if opt is not None:
                raise TypeError(f"{what}: options given twice")
            opt = limit
            limit = _DEFAULT_LIMIT
        most = check_int("limit", limit, 1)
        seplen = len(sep)
        if most < seplen:
            raise ValueError(f"limit ({most}) is shorter than the separator ({seplen} bytes)")
        o = options(what, _K_READ, opt, kw)
        deadline = _deadline(o)
        start = 0  # where, from the read offset, the separator may still begin
        while True:
            buf = self._buf
            pos = self._pos
            end = buf.find(sep, pos + start, pos + most)
            if end >= 0:
                end += seplen
                self._pos = end
                self.last_error = None
                return end - pos, self._view[pos:end].tobytes()
            have = len(buf) - pos
            if have >= most:
                self.last_error = SocketError(
                    _errno.EMSGSIZE,
                    f"{self._sock}: {what}: no {sep!r} within the limit of {most} bytes",
                )
                return -1, None
            start = max(0, have - seplen + 1)
            got = self._fill(deadline, what)
            if got <= 0:
                return got, None

    def _fill(self, deadline: float | None, what: str) -> int:
        """One receive appended to the buffer: its size, ``0`` on timeout, ``-1``.

        Cuts the consumed front off first, so offsets relative to the read
        offset stay valid across the call.
        """
        sock = self._sock
        if deadline is None:
            opt = _BLOCK
        else:
            opt = {"block": True, "timeout": max(0.0, (deadline - time.monotonic()) * 1000.0)}
        try:
            n, _data = sock.recv(self._rbuf, self._size, opt)
        except TimeoutError as exc:
            # A plain block recv times out only before its first byte, but
            # keep anything it reports as moved: it is in our buffer.
            if exc.moved > 0:
                self._append(exc.moved)
            self.last_error = SocketError(_errno.ETIMEDOUT, f"{sock}: {what} timeout")
            return 0
        if n <= 0:
            err = sock.last_error
            if n == 0 or err is None:  # not expected of a stream socket in block mode
                err = SocketError(None, f"{sock}: {what}: end of stream")
            self.last_error = err
            return -1
        self._append(n)
        return n

    def _append(self, n: int) -> None:
        self._view.release()
        buf = self._buf
        if self._pos:
            del buf[: self._pos]
            self._pos = 0
        buf += self._rview[:n]
        self._view = memoryview(buf)


def _deadline(o: Options) -> float | None:
    timeout: float = o.get("timeout", -1)
    return None if timeout == -1 else time.monotonic() + timeout / 1000.0
