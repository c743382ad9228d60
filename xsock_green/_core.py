"""The transfer core: every system call that may wait is made in one routine.

``move(core, kind, view, block, o)`` is "try the system call, then wait" for
every direction of a socket: stream ``recv``/``send``/``sendfile``, datagram
``recvfrom``/``sendto``, ``accept`` and ``connect``.  It owns, for the whole
call:

* the waiter slot of its direction: any call in a direction that another
  greenlet holds raises ``BusyError`` before touching the socket, and a
  call holds its direction from its first switch to the hub until it
  returns (before that switch no other greenlet runs), so two greenlets
  never interleave bytes on one stream nor split one's bytes;
* the deadline (``timeout`` bounds the whole call);
* cooperation: after each piece, a greenlet that has run for a while gives
  the loop a turn when the loop has not polled for a time slice;
* close and kill wake-ups: a wait ended by ``close`` raises ``_Closed``; a
  receive that would block after ``kill`` is an end of stream;
* end of stream and datagram truncation.

The methods (``_transfer``, ``_setup``, ``_files``, ``_tls``) only turn
arguments into a view and the core's count into xmake's return values.
The core raises ``OSError`` for failures; ``Core._failed`` is the one
translation into ``last_error``.

``move`` is a function, not a method: ``Socket`` is a Python subclass of
the compiled ``Core``, and compiled code calls a method of such an instance
through Python's attribute lookup, but calls a function directly.
"""

from __future__ import annotations

import _socket
import errno as _errno
import os
from io import FileIO
from typing import Any, Final, TypeVar

from greenlet import getcurrent

from . import _hub
from ._compile import mypyc_attr
from ._constants import TCP
from ._errors import SocketError, TimeoutError
from ._options import BLOCK, EMPTY, Options

__all__ = [
    "ACCEPT",
    "CHUNK",
    "CONNECT",
    "ENDED",
    "RECV",
    "RECVFROM",
    "SEND",
    "SENDFILE",
    "SENDTO",
    "TLS_HANDSHAKE",
    "TLS_RECV",
    "TLS_SEND",
    "Core",
    "move",
]

# What a call moves.  Odd kinds receive (slot and watcher 1), even ones send (2).
RECV: Final = 1
RECVFROM: Final = 3
ACCEPT: Final = 5
SEND: Final = 2
SENDTO: Final = 4
SENDFILE: Final = 6
CONNECT: Final = 8
#: TLS streams: the "system call" is the socket's TLS layer (``_tls``),
#: which moves plaintext and says which readiness it needs when it cannot.
TLS_RECV: Final = 7
TLS_SEND: Final = 10
#: The TLS handshake (send slot): its step returns ``1`` once it is done.
TLS_HANDSHAKE: Final = 12

#: ``move``'s answer when a stream receive finds the end of the stream (``_last`` says
#: so): not an exception, which out of compiled code adds traceback entries.
ENDED: Final = -2

_NAMES: Final = {
    RECV: "recv",
    SEND: "send",
    SENDFILE: "sendfile",
    TLS_RECV: "recv",
    TLS_SEND: "send",
}

_SEND_FLAGS: Final = getattr(_socket, "MSG_NOSIGNAL", 0)
_TRUNC: Final = getattr(_socket, "MSG_TRUNC", 0)

#: The most one system call of a block-mode transfer moves, so that other
#: greenlets get their turn between pieces (SPEC: every 50 ms at least).
CHUNK: Final = 1 << 20
_IN_PROGRESS: Final = frozenset({_errno.EINPROGRESS, _errno.EALREADY})
#: How long a connect to a unix listener with a full backlog waits before
#: trying again: there is nothing to watch.
_BACKLOG_RETRY: Final = 0.001

# How a block stream recv starts (``Core._rtry``): after a full read it
# reads; after a short read it guesses; after a short read and a send it
# waits, unless the loop has other work (then it guesses: queued data never
# waits behind it).  A guess after one that found nothing asks the kernel
# first (``Core._probe``, ``_hub.queued``); ``accept`` guesses the same way
# with ``poll``.  A failed try raises inside the standard library, so a stream
# reads through an ``io.FileIO`` (``None``: nothing there).  ARCHITECTURE, step 3.
_TRY: Final = 1
_SHORT: Final = 0
_WAIT: Final = -1

_F = TypeVar("_F")
_ident: Final = _hub.get_thread_ident
_monotonic: Final = _hub.monotonic
_CLOSED: Final = _hub.CLOSED
_queued: Final = _hub.queued
_getcurrent: Final = getcurrent  # a constant, not a dict lookup per use (compiled)


# mypyc cannot compile subclasses of OSError: these stay Python classes.
@mypyc_attr(native_class=False)
class _Closed(OSError):
    """Raised inside a call when the socket is (or became) closed."""


@mypyc_attr(native_class=False)
class _EndOfStream(OSError):
    """Raised inside a call when the peer ended the stream."""


#: What ``last_error`` reports after ``ENDED`` (never raised, so no traceback).
_END: Final = _EndOfStream(None, "end of stream")


# Compiled by mypyc (setup.py) unless XSOCK_PURE_PYTHON; Socket subclasses it in Python.
@mypyc_attr(allow_interpreted_subclasses=True)
class Core:
    """The state every socket call needs, and the routine that moves data."""

    __slots__ = (
        "_block",
        "_dest",
        "_family",
        "_from",
        "_io",
        "_last",
        "_peer",
        "_polled",
        "_probe",
        "_readinto",
        "_rtry",
        "_shut",
        "_sock",
        "_stream",
        "_tls",
        "_tlsctx",
        "_to",
        "_type",
    )

    _sock: Any
    _io: _hub.IOWait
    _block: bool
    _rtry: int
    _shut: bool
    _stream: bool
    _polled: bool
    #: The last guessed read (or accept) found nothing: the next guess asks
    #: the kernel first.
    _probe: bool
    _family: int
    _type: int
    #: The receive side's other output (the peer of ``RECVFROM``/``ACCEPT``)
    #: and the send side's other input (``SENDTO``'s destination,
    #: ``SENDFILE``'s file and offset, ``CONNECT``'s address): one each, as
    #: the two directions may be in use by two greenlets at once.
    _from: Any
    _to: Any
    #: A stream's non-raising read (see ``_TRY``): its ``io.FileIO``'s bound
    #: ``readinto`` (no method lookup per call), made on the first receive.
    _readinto: Any
    #: The TLS layer (``None`` for a plain socket): ``recv_into(view)`` and
    #: ``send(view)`` return the plaintext bytes moved, ``0`` at the end of
    #: the stream, or ``-1`` when they need ``wants`` (1 readable, 2
    #: writable, 0 a short pause) before trying again.
    _tls: Any
    _last: OSError | tuple[OSError, object] | None
    #: ``sendto``'s last destination: ``(addr, port, OS address)``.
    _dest: tuple[object, object, Any] | None
    #: A listener's TLS context (``bind`` with ``tls``): accepted sockets get it.
    _tlsctx: Any
    #: The client's address from a PROXY protocol header (``peername``).
    _peer: Any

    def __init__(self, type_: int, family: int, sock: Any) -> None:
        self._sock = None
        self._type = type_
        self._family = family
        self._block = False
        self._stream = type_ == TCP
        self._rtry = _TRY
        self._probe = True
        self._shut = False
        self._polled = False
        self._from = None
        self._readinto = None
        self._to = None
        self._tls = None
        self._tlsctx = None
        self._dest = None
        self._peer = None
        self._last = None
        self._io = _hub.IOWait(sock.fileno())
        sock.setblocking(False)
        self._sock = sock

    def _name(self, fd: object) -> str:
        raise NotImplementedError

    # -- the one translation into xmake's values ---------------------------

    def _failed(self, exc: OSError, failure: _F) -> _F:
        """Record ``exc`` for ``last_error`` and return ``failure``.

        The traceback is dropped: it would pin the failing frames (and the
        caller's buffers) and make a cycle through this socket.  The text is
        made when ``last_error`` is read: an end of stream ends every
        connection, and most programs never ask why.
        """
        exc.__traceback__ = None
        exc.__context__ = None
        self._last = (exc, "closed" if self._sock is None else self._io.fd)
        return failure

    @property
    def last_error(self) -> OSError | None:
        """Why the last call failed, in xmake's words; ``None`` after a success."""
        last = self._last
        if isinstance(last, tuple):
            err = self._last = self._error(*last)
            return err
        return last

    def _error(self, exc: OSError, label: object) -> SocketError:
        if isinstance(exc, SocketError):
            return exc
        if isinstance(exc, _Closed):
            return SocketError(None, f"{self._name(exc.args[0])}: has been closed")
        if isinstance(exc, _EndOfStream):
            return SocketError(exc.errno, f"{self._name(label)}: {exc.strerror}")
        reason = exc.strerror or str(exc)
        reason = reason[:1].lower() + reason[1:]
        return SocketError(exc.errno, f"{self._name(label)}: {reason}")

    def _live(self) -> Any:
        """The OS socket, after checking that it is open and in its thread."""
        sock = self._sock
        if sock is None:
            raise _Closed("closed")
        if _ident() != self._io.thread:
            self._io.check_thread()
        return sock

    @staticmethod
    def _closed() -> _Closed:
        return _Closed("closed")

    def close(self) -> bool:
        """Close the socket and wake its waiters; ``False`` when already closed.

        Never raises, except ``WrongThreadError`` from another thread.
        """
        sock = self._sock
        if sock is None:
            return False
        io = self._io
        if _ident() != io.thread:
            io.check_thread()
        if self._tls is not None:
            self._tls.close_notify()
        self._sock = None
        self._readinto = None  # its descriptor number is about to be free for reuse
        if self._polled:
            from ._multiwait import forget

            forget(self, io.fd)
        io.close(sock.close)
        return True

    def _timed_out(self, kind: int, done: int) -> int:
        if kind in _NAMES:
            raise TimeoutError(f"{self}: {_NAMES[kind]} timeout", done)
        self._last = None
        return -1

    def _truncated(self, size: int, room: int) -> SocketError:
        return SocketError(
            _errno.EMSGSIZE,
            f"{self._name(self._io.fd)}: datagram truncated: {size} bytes, {room} fit",
        )


# -- the transfer core -------------------------------------------------


def move(s: Core, kind: int, view: Any, block: bool, o: Options) -> int:
    """Make ``kind``'s system call over ``view``, waiting as ``block`` says.

    Returns the bytes moved (stream kinds; a block send or sendfile
    moves the whole view, a ``waitall`` recv fills it), the datagram's
    size (``RECVFROM``, ``SENDTO``, datagram ``RECV``), the descriptor
    (``ACCEPT``; the address is left in ``_from``) or ``1`` (``CONNECT``).
    ``-1`` means nothing happened: would block, or a deadline passed in
    a kind that does not raise for it; ``ENDED``, a stream receive found
    the end of the stream (``_last`` records it).  A stream kind in block mode
    raises ``TimeoutError`` with the bytes moved.  ``_to`` carries the
    send side's other input: the destination, the file, the address.
    """
    io = s._io
    sock = s._sock
    if sock is None or _ident() != io.thread:
        sock = s._live()
    slot = 2 - (kind & 1)  # the direction: waiter slot and watcher
    if slot == 1:
        if io.rowner is not None:
            raise io.busy(1)
    elif io.wowner is not None:
        raise io.busy(2)
    # The slot is taken at the first switch to the hub: until then no
    # other greenlet can run, so the call owns its direction throughout.
    cur = None
    try:
        if o is BLOCK or o is EMPTY:
            timeout: float = -1.0
            deadline = None
            waitall = False
        else:
            timeout = o.get("timeout", -1)
            deadline = None if timeout == -1 else _monotonic() + timeout / 1000.0
            waitall = o.get("waitall", False)
        total = len(view)
        done: int = 0
        # A stream kind moves bytes: in block mode, until the view is
        # done (send, sendfile, a waitall recv) or something arrived.
        stream = s._stream if kind <= SEND else kind >= SENDFILE and kind != CONNECT
        if total == 0 and (stream or kind == SEND):
            return 0  # an empty range moves nothing
        attempt = True
        guess = 0  # the first read is a guess: 1 blind, 2 asking first (see _TRY)
        if kind == RECV and block and stream and s._rtry != _TRY and timeout != 0:
            if s._rtry == _WAIT and not io.others_ready():
                attempt = False
            else:
                guess = 2 if s._probe else 1
        elif kind == ACCEPT and timeout != 0:
            guess = 2 if s._probe else 1  # is a connection there? (see _TRY)
        events = slot
        pause = False
        n: int  # what one system call moved (-1: it would block)
        while True:
            if attempt:
                if done != 0 or total > CHUNK:
                    piece = total - done if total - done < CHUNK else CHUNK
                    v = view if kind == SENDFILE else memoryview(view)[done : done + piece]
                else:
                    piece = total
                    v = view
                try:
                    if kind == RECV:
                        if not stream:
                            n = sock.recv_into(v, 0, _TRUNC)  # a datagram's size
                        elif guess == 2 and _queued(io.fd) == 0:
                            n = -1
                        else:  # None is "nothing there", not an exception
                            got = (s._readinto or _reader(s, io.fd))(v)
                            n = -1 if got is None else got
                    elif kind == SEND:
                        n = sock.send(v, _SEND_FLAGS)
                    elif kind == RECVFROM:
                        n, s._from = sock.recvfrom_into(v, 0, _TRUNC)
                    elif kind == SENDTO:
                        n = sock.sendto(v, _SEND_FLAGS, s._to)
                    elif kind == SENDFILE:
                        n = os.sendfile(io.fd, s._to[0], s._to[1] + done, piece)
                        if n == 0:
                            raise _EndOfStream(None, f"file ended after {done} of {total} bytes")
                    elif kind == ACCEPT:
                        if guess == 2 and not _hub.poll_now(io.fd, 1):
                            n = -1
                        else:
                            n, s._from = sock._accept()
                    elif kind == TLS_RECV:
                        n = s._tls.recv_into(v)
                        if n < 0:
                            events = s._tls.wants
                    elif kind == TLS_SEND:
                        n = s._tls.send(v)
                        if n < 0:
                            events = s._tls.wants
                    elif kind == TLS_HANDSHAKE:
                        n = s._tls.handshake()
                        if n < 0:
                            events = s._tls.wants
                    else:
                        n = sock.connect_ex(s._to)
                        if n == 0 or n == _errno.EISCONN:
                            s._last = None
                            return 1
                        if n == _errno.EAGAIN and s._family == 3:
                            # A unix listener's backlog is full: nothing
                            # to watch, so try again shortly.
                            events = 0
                        elif n not in _IN_PROGRESS:
                            raise OSError(n, os.strerror(n))
                        n = -1
                except BlockingIOError:
                    n = -1
                if guess:  # the next guess asks first if this one found nothing
                    s._probe = n < 0
                    guess = 0
                if n >= 0:
                    if not stream:
                        if n > total and kind <= RECVFROM and kind & 1:
                            s._last = s._truncated(n, total)
                            return total
                        done = n
                    elif n > 0:
                        done += n
                        if kind == RECV:
                            s._rtry = _TRY if n == piece else _SHORT
                        elif s._rtry == _SHORT:
                            s._rtry = _WAIT  # a reply after a short read
                    else:  # a stream recv: the peer is done
                        s._rtry = _TRY
                        if done or slot != 1:  # a waitall recv cut short, a handshake
                            suffix = f" after {done} of {total} bytes" if done else ""
                            raise _EndOfStream(None, "end of stream" + suffix)
                        s._last = (_END, io.fd)
                        return ENDED
                    # Done, unless a block stream call has more to move.
                    if done == total or not stream or not block or (slot == 1 and not waitall):
                        finished = True
                    else:
                        finished = False
                    if block and io.overdue(n):
                        pause = True
                    elif finished:
                        s._last = None
                        return done
                    elif n == piece:
                        continue
                    # else a short piece: the buffer is full (or drained)
                elif s._shut and slot == 1:
                    raise _EndOfStream(None, "end of stream (shut down)")
                elif not block:
                    s._last = None
                    return -1
                elif timeout == 0:
                    return s._timed_out(kind, done)
            # Switch to the hub: a turn for the others, or a wait.
            if cur is None:
                cur = _getcurrent()
                if slot == 1:
                    io.rowner = cur
                else:
                    io.wowner = cur
            attempt = True
            if pause:
                pause = False
                io.pause(cur, slot)
                if finished:
                    s._last = None
                    return done
                if s._sock is not sock:
                    raise s._closed()
                continue
            if events:
                result = io.wait(events, deadline, cur, slot)
            else:
                soon = _monotonic() + _BACKLOG_RETRY
                until = soon if deadline is None else min(soon, deadline)
                result = io.wait(0, until, cur, slot)
                events = slot
                if result == 0 and (deadline is None or _monotonic() < deadline):
                    result = 1
            if result <= 0:
                if result == _CLOSED or s._sock is not sock:
                    raise s._closed()
                return s._timed_out(kind, done)
    finally:
        if cur is not None:
            if slot == 1:
                io.rowner = None
            else:
                io.wowner = None


def _reader(s: Core, fd: int) -> Any:
    s._readinto = readinto = FileIO(fd, "rb", closefd=False).readinto
    return readinto
