"""TLS inside the socket: the standard library's ``ssl.SSLObject`` over two memory BIOs.

A TLS socket is a plain non-blocking socket plus a ``TLSLayer``.  The layer
never waits: its steps (``recv_into``, ``send``, ``handshake``) do only
non-blocking raw I/O on the OS socket, feed the ciphertext they read into
the incoming BIO and send what the outgoing BIO holds, and return the
plaintext bytes moved, ``0`` at the end of the stream, or ``-1`` after
setting ``wants`` to the readiness they need (1 readable, 2 writable, 0 a
short pause).  The transfer core (``_core.move``, kinds ``TLS_RECV``,
``TLS_SEND`` and ``TLS_HANDSHAKE``) makes every wait, so close wake-ups,
``BusyError``, whole-call deadlines and fairness hold for TLS as they do
for plain sockets, and so does monkey-patching: gevent's ``SSLSocket`` is
never used.

Three rules keep two greenlets (one receiving, one sending) from stepping on
each other's watchers:

* one greenlet drives the handshake at a time; another's step pauses
  (``wants`` 0) while the driver is still inside its call;
* after the handshake a receive step waits only for readability and a send
  step only for writability; a receive step that produced ciphertext (a
  TLS 1.3 key update answer) sends what it can and leaves the rest for the
  next step, which always flushes it first, so records keep their order;
* a send step reports its plaintext as moved only once its ciphertext is in
  the kernel.  Until then it keeps the count and reports it when called
  again with the same data, which is the retry rule of OpenSSL's
  ``SSL_write``: a block send loops that way by itself, and a non-block send
  that returned ``0`` must be repeated with the same bytes.

Renegotiation is refused (``OP_NO_RENEGOTIATION``): it would make a receive
step write and a send step read.  A peer that closes without
``close_notify`` is an end of stream, as the standard library's default
(``suppress_ragged_eofs``) has it.
"""

from __future__ import annotations

import _socket
import functools
import ssl
import time
from typing import Any

from greenlet import getcurrent

from ._core import TLS_HANDSHAKE, Core, move
from ._hub import poll_now
from ._options import EMPTY, Options, check_int, check_timeout
from ._transfer import Transfer

__all__ = ["TLSLayer", "client_context", "handshake", "server_context", "start", "wait"]

_SEND_FLAGS = getattr(_socket, "MSG_NOSIGNAL", 0)
#: How much ciphertext one raw receive asks for: several full records.
_RAW = 65536
#: ``X509_V_ERR_HOSTNAME_MISMATCH`` and friends: the name check failed.
_NAME_CODES = frozenset({62, 63, 64})
#: The view a handshake "moves": one unit, reported when the handshake is done.
HANDSHAKE_VIEW = memoryview(b"\0")
_monotonic = time.monotonic

_WantRead = ssl.SSLWantReadError
_Ended = (ssl.SSLZeroReturnError, ssl.SSLEOFError)


class TLSError(OSError):
    """A TLS failure, worded for ``last_error`` (``certificate verify failed: ...``)."""


def _failure(exc: ssl.SSLError, during: str) -> TLSError:
    """The reason of an ``ssl`` failure, without OpenSSL's ``[SSL: ...]`` and ``(_ssl.c)``."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = str(exc.verify_message or "").rstrip(".")
        if exc.verify_code in _NAME_CODES:
            return TLSError(None, f"certificate verify failed: hostname mismatch ({message})")
        return TLSError(None, f"certificate verify failed: {message}")
    if isinstance(exc, ssl.SSLEOFError):
        return TLSError(None, f"the peer closed the connection during the TLS {during}")
    text = str(exc.args[1] if len(exc.args) > 1 else exc)
    if text.startswith("[") and "] " in text:
        text = text.split("] ", 1)[1]
    text = text.split(" (_ssl.c:", 1)[0]
    return TLSError(None, f"TLS {during} failed: {text}")


class TLSLayer:
    """One socket's TLS state: the ``SSLObject``, its BIOs and unsent ciphertext."""

    __slots__ = (
        "_driver",
        "_eof",
        "_failed",
        "_in",
        "_io",
        "_obj",
        "_out",
        "_owed",
        "_pend",
        "_sock",
        "_stash",
        "done",
        "server_hostname",
        "wants",
    )

    def __init__(
        self, core: Core, context: ssl.SSLContext, server_side: bool, hostname: str | None
    ) -> None:
        context.options |= ssl.OP_NO_RENEGOTIATION
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(
            self._in, self._out, server_side=server_side, server_hostname=hostname
        )
        # The OS socket and the door to the hub, not the Socket: no cycle.
        self._sock: Any = core._sock
        self._io = core._io
        self.server_hostname = hostname
        self.wants = 1
        self.done = False
        self._driver: Any = None
        self._failed: str | None = None
        self._pend: Any = b""  # ciphertext taken from the BIO, not yet in the kernel
        self._owed = 0  # plaintext whose ciphertext is in _pend: reported once it left
        self._eof = False
        self._stash = b""  # plaintext decrypted by ``readable``, not yet received

    # -- raw I/O, never waiting ---------------------------------------------

    def _flush(self) -> bool:
        """Send pending ciphertext without waiting; ``True`` when none is left."""
        out = self._pend
        send = self._sock.send
        while True:
            if not out:
                if not self._out.pending:
                    self._pend = b""
                    return True
                out = self._out.read()
            try:
                n = send(out, _SEND_FLAGS)
            except BlockingIOError:
                self._pend = out
                return False
            out = memoryview(out)[n:] if n < len(out) else b""

    def _pull(self) -> bool:
        """Move the kernel's ciphertext into the incoming BIO; ``False`` when there is none."""
        try:
            data = self._sock.recv(_RAW)
        except BlockingIOError:
            return False
        if data:
            self._in.write(data)
        else:
            self._in.write_eof()
        return True

    # -- the handshake ----------------------------------------------------

    def _shake(self) -> int:
        """Drive the handshake a step: ``1`` done, ``-1`` with ``wants`` set."""
        cur = getcurrent()
        driver = self._driver
        if driver is not None and driver is not cur:
            io = self._io
            if io.rowner is driver or io.wowner is driver:
                self.wants = 0  # the driver is inside its call: wait for it
                return -1
        if self._failed is not None:
            raise TLSError(None, self._failed)
        self._driver = cur
        obj = self._obj
        while True:
            if self._pend and not self._flush():
                self.wants = 2
                return -1
            try:
                obj.do_handshake()
            except _WantRead:
                if not self._flush():
                    self.wants = 2
                    return -1
                if not self._pull():
                    self.wants = 1
                    return -1
                continue
            except ssl.SSLError as exc:
                err = _failure(exc, "handshake")
                self._failed = err.strerror
                self._driver = None
                try:
                    self._flush()  # the alert, so that the peer knows why
                except OSError:
                    pass
                raise err from None
            self.done = True
            self._driver = None
            self._flush()  # what is left goes with the next step
            return 1

    def handshake(self) -> int:
        """The ``TLS_HANDSHAKE`` step: ``1`` once the handshake is done."""
        if self.done:
            return 1
        return self._shake()

    # -- data -------------------------------------------------------------

    def recv_into(self, view: Any) -> int:
        """The ``TLS_RECV`` step: plaintext bytes received, ``0`` end of stream, ``-1``."""
        if not self.done and self._shake() < 0:
            return -1
        if self._pend:
            self._flush()
        size = len(view)
        got = 0
        if self._stash:
            got = min(size, len(self._stash))
            view[:got] = self._stash[:got]
            self._stash = self._stash[got:]
            if got == size:
                return got
        if self._eof:
            return got
        obj = self._obj
        incoming = self._in
        while True:
            if not incoming.pending and not obj.pending():
                if got:
                    return got
                if not self._pull():
                    self.wants = 1
                    return -1
            try:
                # given a buffer, read() returns a count
                n: int = obj.read(size - got, view[got:] if got else view)  # type: ignore[assignment]
            except _WantRead:
                if incoming.eof:  # never spin on a stream that has ended
                    self._eof = True
                    return got
                continue
            except _Ended:
                self._eof = True
                return got
            except ssl.SSLError as exc:
                raise _failure(exc, "receive") from None
            if not n:  # the peer's close_notify
                self._eof = True
                return got
            got += n
            if got == size:
                return got

    def send(self, view: Any) -> int:
        """The ``TLS_SEND`` step: plaintext bytes whose ciphertext reached the kernel, or ``-1``."""
        if not self.done and self._shake() < 0:
            return -1
        if self._pend or self._owed:
            if not self._flush():
                self.wants = 2
                return -1
            owed = self._owed
            if owed:
                self._owed = 0
                return owed if owed <= len(view) else len(view)
        try:
            n: int = self._obj.write(view)
        except _WantRead:
            self.wants = 0
            return -1
        except ssl.SSLError as exc:
            raise _failure(exc, "send") from None
        data = self._out.read()
        try:
            sent = self._sock.send(data, _SEND_FLAGS)
        except BlockingIOError:
            sent = 0
        if sent == len(data):
            return n
        self._pend = memoryview(data)[sent:]
        self._owed = n
        self.wants = 2
        return -1

    # -- wait, close, info ----------------------------------------------------

    def readable(self) -> bool:
        """True when a receive would return at once: plaintext is buffered, or the end.

        Pulls what the kernel holds first, without waiting, so that records
        that carry no data (TLS 1.3 session tickets) do not count.
        """
        if self._stash or self._eof or self._obj.pending():
            return True
        while True:
            try:
                self._stash = self._obj.read(_RAW)
                if not self._stash:
                    self._eof = True  # the peer's close_notify
            except _WantRead:
                if self._in.eof:
                    self._eof = True
                    return True
                if not self._pull():
                    return False
                continue
            except _Ended:
                self._eof = True
            except ssl.SSLError:
                return True  # the next receive reports it
            return True

    def close_notify(self) -> None:
        """Send ``close_notify`` (and what is pending) if the kernel takes it now; never raises."""
        try:
            if self.done and self._failed is None:
                try:
                    self._obj.unwrap()
                except (ssl.SSLError, ValueError):
                    pass
            self._flush()
        except Exception:
            pass

    def info(self) -> dict[str, Any]:
        """``tls_info()``: version, cipher, server name and peer certificate."""
        obj = self._obj
        return {
            "version": obj.version(),
            "cipher": obj.cipher(),
            "server_hostname": self.server_hostname,
            "peercert": obj.getpeercert() if self.done else None,
            "server_side": obj.server_side,
            "alpn_protocol": obj.selected_alpn_protocol(),
        }


# -- contexts ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _default_context() -> ssl.SSLContext:
    """``ssl.create_default_context()``, made once: loading the CA store takes milliseconds."""
    return ssl.create_default_context()


def client_context(tls: Any, hostname: str | None) -> ssl.SSLContext | None:
    """The context for option ``tls`` of a client (``True``: the default context).

    ``None`` for ``False``/``None``.  Raises ``ValueError`` when the context
    checks host names and there is no name to check.
    """
    if tls is None or tls is False:
        return None
    ctx = _default_context() if tls is True else tls
    if ctx.check_hostname and not hostname:
        raise ValueError(
            "option 'server_hostname' is needed: the TLS context checks host names "
            "and there is no host name to check"
        )
    return ctx


def server_context(tls: Any) -> ssl.SSLContext | None:
    """The context for option ``tls`` of a listener: an ``ssl.SSLContext``, or ``None``."""
    if tls is None or tls is False:
        return None
    if not isinstance(tls, ssl.SSLContext):
        raise TypeError(
            "option 'tls' of a server must be an ssl.SSLContext holding the server's "
            "certificate (ssl.create_default_context(ssl.Purpose.CLIENT_AUTH) and "
            "load_cert_chain), not True"
        )
    return tls


# -- what the Socket methods call ----------------------------------------------------


def _left(deadline: float | None) -> Options:
    if deadline is None:
        return EMPTY
    return {"timeout": max(0.0, deadline - _monotonic()) * 1000.0}


def handshake(core: Core, deadline: float | None) -> int:
    """Run the handshake through the core: ``1`` done, ``0`` the deadline passed."""
    if core._tls.done:
        core._live()
        return 1
    return 1 if move(core, TLS_HANDSHAKE, HANDSHAKE_VIEW, True, _left(deadline)) > 0 else 0


def start(
    core: Core,
    context: ssl.SSLContext,
    server_side: bool,
    hostname: str | None,
    deadline: float | None,
) -> int:
    """Put a TLS layer on a connected plain socket and run the handshake.

    Refused (``BusyError``) while another greenlet waits on the socket: its
    plain call would read ciphertext or interleave plaintext.
    """
    core._live()
    io = core._io
    if io.rowner is not None or io.wowner is not None:
        raise io.busy(1 if io.rowner is not None else 2)
    core._tls = TLSLayer(core, context, server_side, hostname)
    return handshake(core, deadline)


def wait(core: Transfer, events: int, timeout: float) -> int:
    """``Socket.wait`` on a TLS socket: the handshake first, then plaintext readiness."""
    check_int("events", events, 1, 3)
    check_timeout("timeout", timeout)
    io = core._io
    core._live()
    if events & 1 and io.rowner is not None:
        raise io.busy(1)
    deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
    layer: TLSLayer = core._tls
    if not layer.done and handshake(core, deadline) == 0:
        return 0
    while True:
        if events & 1 and layer.readable():
            return 1 | (poll_now(io.fd, 2) if events & 2 else 0)
        left = -1.0 if deadline is None else max(0.0, deadline - _monotonic()) * 1000.0
        got = core._wait(events, left)
        if got & 1 and not layer.readable():
            got &= 2  # only a record without data came
            if not got and left != 0:
                continue
        return got
