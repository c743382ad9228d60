"""The PROXY protocol (versions 1 and 2): the header a load balancer puts first.

HAProxy's ``send-proxy`` and ``send-proxy-v2`` (and most load balancers)
open each connection to a backend with one header that names the client's
address; the application's bytes follow it.  ``parse`` is a pure function
over the bytes received so far: it returns the ``Header`` once it is
complete, ``None`` while more bytes are needed, and raises ``ProxyError`` as
soon as the bytes cannot be the start of a valid header.  It returns
``None`` only when every byte it was given belongs to the header, so a reader
may consume them all; it never needs more than ``MAX_HEADER`` bytes.

``read_header`` reads a header from a connection, bounded by a deadline,
without consuming one byte of what follows it: it peeks at what arrived,
lets ``parse`` find where the header ends, and consumes exactly that much
(all of it while the header is incomplete, so the next wait blocks instead
of seeing the same bytes again).  ``accept_header`` is what the server
calls before the handler: it reads the header, gives the socket the
client's address, and logs and refuses a bad header.

The protocol: https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt
"""

from __future__ import annotations

import _socket
import errno
import logging
import os
import struct
from dataclasses import dataclass
from time import monotonic
from typing import Any

from . import socket
from ._socket import Socket

__all__ = [
    "MAX_HEADER",
    "V1_MAX",
    "V2_MAX_BODY",
    "Header",
    "HeaderFailed",
    "ProxyError",
    "accept_header",
    "parse",
    "read_header",
]

log = logging.getLogger("xsock_green.server")

V1_PREFIX = b"PROXY "
#: A version 1 header is at most 107 bytes, its CRLF included (the spec's limit).
V1_MAX = 107
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version and command, family and transport, length
#: The most a version 2 header may carry after its 16 fixed bytes: addresses
#: (216 bytes for unix) and TLVs.  The length field allows 65535; HAProxy's
#: own TLVs stay far below this, and a larger one is refused unread.
V2_MAX_BODY = 4096
#: The most bytes a header can take, of either version.
MAX_HEADER = V2_FIXED + V2_MAX_BODY

_V1_PORT_DIGITS = 5
_UNIX_ADDR = 108  # sun_path in a version 2 unix address block
# Version 2: the low nibble of byte 13 is the command, byte 14 family and transport.
_LOCAL, _PROXY = 0x0, 0x1
_AF_UNSPEC, _AF_INET, _AF_INET6, _AF_UNIX = 0x0, 0x1, 0x2, 0x3
_STREAM = 0x1
_ADDR_SIZE = {_AF_UNSPEC: 0, _AF_INET: 12, _AF_INET6: 36, _AF_UNIX: 2 * _UNIX_ADDR}
_FAMILY_NAMES = {_AF_INET: "TCP4", _AF_INET6: "TCP6", _AF_UNIX: "UNIX"}


class ProxyError(ValueError):
    """The bytes are not a valid PROXY protocol header (or not one we accept)."""


@dataclass(frozen=True, slots=True)
class Header:
    """A complete header.

    ``source`` and ``dest`` are addresses in the form ``Socket.peername()``
    gives them (``(ip, port)``, ``(ip6, port, 0, 0)``, a unix path), or
    ``None`` for a ``LOCAL`` header (version 2 health checks), a version 1
    ``UNKNOWN`` one, or an unspecified family: the connection's real
    endpoints stand.  ``size`` is how many bytes the header took.
    """

    version: int
    size: int
    family: str  # "TCP4", "TCP6", "UNIX", or "LOCAL"/"UNKNOWN"
    source: Any = None
    dest: Any = None

    @property
    def local(self) -> bool:
        """``True`` when the header names no client: the real peer stands."""
        return self.source is None


def parse(data: bytes | bytearray | memoryview) -> Header | None:
    """The header at the start of ``data``; ``None`` while it is incomplete.

    Raises ``ProxyError`` as soon as ``data`` cannot start a valid header.
    ``None`` means that all of ``data`` belongs to the header.
    """
    data = bytes(data)
    if not data:
        return None
    if data[0] == V2_SIGNATURE[0]:
        return _parse_v2(data)
    if data[0] == V1_PREFIX[0]:
        return _parse_v1(data)
    raise ProxyError(f"no PROXY protocol header: the connection starts with {data[:8]!r}")


# -- version 1: "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n" ---------------------


def _parse_v1(data: bytes) -> Header | None:
    if not data.startswith(V1_PREFIX[: len(data)]):
        raise ProxyError(f"not a PROXY protocol header: {_show(data)}")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyError(f"version 1 header longer than {V1_MAX} bytes: {_show(data)}")
        # A byte that is not printable ASCII (a line feed without its
        # carriage return among them) can never become part of a valid line.
        body_ok = all(0x20 <= b < 0x7F for b in data[:-1])
        if not body_ok or not (0x20 <= data[-1] < 0x7F or data[-1] == 0x0D):
            raise ProxyError(f"version 1 header with a control byte: {_show(data)}")
        return None
    size = end + 2
    line = data[len(V1_PREFIX) : end]
    if line == b"UNKNOWN" or line.startswith(b"UNKNOWN "):
        # "The receiver must ignore anything presented before the CRLF."
        return Header(1, size, "UNKNOWN")
    fields = line.split(b" ")
    if len(fields) != 5:
        raise ProxyError(f"version 1 header needs 5 fields after PROXY: {_show(data[:size])}")
    family, src, dst, sport, dport = (f.decode("ascii", "replace") for f in fields)
    if family == "TCP4":
        af = _socket.AF_INET
    elif family == "TCP6":
        af = _socket.AF_INET6
    else:
        raise ProxyError(f"version 1 protocol must be TCP4, TCP6 or UNKNOWN, not {family!r}")
    source = _v1_addr(af, src, _v1_port(sport))
    dest = _v1_addr(af, dst, _v1_port(dport))
    return Header(1, size, family, source, dest)


def _v1_port(text: str) -> int:
    """A port in decimal, 0 to 65535, without leading zeros (as the spec writes them)."""
    if not (0 < len(text) <= _V1_PORT_DIGITS and text.isascii() and text.isdigit()):
        raise ProxyError(f"version 1 header has a bad port: {text!r}")
    port = int(text)
    if port > 65535 or (len(text) > 1 and text[0] == "0"):
        raise ProxyError(f"version 1 header has a bad port: {text!r}")
    return port


def _v1_addr(af: int, text: str, port: int) -> Any:
    try:
        packed = _socket.inet_pton(af, text)
    except OSError:
        kind = "IPv4" if af == _socket.AF_INET else "IPv6"
        raise ProxyError(f"version 1 header has a bad {kind} address: {text!r}") from None
    return _inet(af, packed, port)


def _inet(af: int, packed: bytes, port: int) -> Any:
    """An address as ``getpeername()`` gives it (IPv6 in its compressed form)."""
    ip = _socket.inet_ntop(af, packed)
    return (ip, port) if af == _socket.AF_INET else (ip, port, 0, 0)


# -- version 2: 16 fixed bytes, then addresses and TLVs -------------------------------


def _parse_v2(data: bytes) -> Header | None:
    n = min(len(data), len(V2_SIGNATURE))
    if data[:n] != V2_SIGNATURE[:n]:
        raise ProxyError(f"not a PROXY protocol header: {_show(data)}")
    _check_v2_start(data)
    if len(data) < V2_FIXED:
        return None
    (length,) = struct.unpack_from("!H", data, 14)
    if length > V2_MAX_BODY:
        raise ProxyError(
            f"version 2 header of {V2_FIXED + length} bytes: the limit is {MAX_HEADER}"
        )
    size = V2_FIXED + length
    if len(data) < size:
        return None
    command, family = data[12] & 0x0F, data[13] >> 4
    if command == _LOCAL:
        # Health checks and the balancer's own connections: whatever the
        # block says is discarded and the real endpoints stand.
        return Header(2, size, "LOCAL")
    if family == _AF_UNSPEC:
        return Header(2, size, "UNKNOWN")
    if data[13] & 0x0F != _STREAM:
        raise ProxyError("version 2 header for a datagram transport on a stream connection")
    body = data[V2_FIXED:size]
    need = _ADDR_SIZE[family]
    if length < need:
        raise ProxyError(
            f"version 2 {_FAMILY_NAMES[family]} header carries {length} address bytes; "
            f"it needs {need}"
        )
    _check_tlvs(body, need)
    if family == _AF_INET:
        sport, dport = struct.unpack_from("!HH", body, 8)
        source = _inet(_socket.AF_INET, body[0:4], sport)
        dest = _inet(_socket.AF_INET, body[4:8], dport)
    elif family == _AF_INET6:
        sport, dport = struct.unpack_from("!HH", body, 32)
        source = _inet(_socket.AF_INET6, body[0:16], sport)
        dest = _inet(_socket.AF_INET6, body[16:32], dport)
    else:
        source = _unix(body[:_UNIX_ADDR])
        dest = _unix(body[_UNIX_ADDR : 2 * _UNIX_ADDR])
    return Header(2, size, _FAMILY_NAMES[family], source, dest)


def _check_v2_start(data: bytes) -> None:
    """Refuse a bad version, command, family or transport as soon as its byte arrives."""
    if len(data) > 12:
        version, command = data[12] >> 4, data[12] & 0x0F
        if version != 2:
            raise ProxyError(f"PROXY protocol version {version} is not supported (only 1 and 2)")
        if command not in (_LOCAL, _PROXY):
            raise ProxyError(f"version 2 header with an unknown command 0x{command:x}")
    if len(data) > 13:
        family, transport = data[13] >> 4, data[13] & 0x0F
        if family not in _ADDR_SIZE or transport > 2:
            raise ProxyError(f"version 2 header with an unknown family/transport 0x{data[13]:02x}")


def _check_tlvs(body: bytes, start: int) -> None:
    """TLVs (type, 16-bit length, value) must fill the rest of the header exactly.

    Their contents are not interpreted (``PP2_TYPE_CRC32C`` is not checked).
    """
    at = start
    while at < len(body):
        if at + 3 > len(body):
            raise ProxyError("version 2 header with a truncated TLV")
        (length,) = struct.unpack_from("!H", body, at + 1)
        at += 3 + length
    if at != len(body):
        raise ProxyError("version 2 header with a TLV longer than the header")


def _unix(raw: bytes) -> Any:
    """A unix address as ``getpeername()`` gives it: a path, bytes for an abstract name.

    An abstract name loses its trailing NUL bytes (the block pads to 108);
    an unnamed client gives ``""``.
    """
    if raw[:1] == b"\0":
        return raw.rstrip(b"\0") or ""
    return os.fsdecode(raw.split(b"\0", 1)[0])


def _show(data: bytes) -> str:
    return repr(data[:40]) + ("..." if len(data) > 40 else "")


# -- reading from a connection --------------------------------------------------------

_AF = {socket.IPV4: _socket.AF_INET, socket.IPV6: _socket.AF_INET6, socket.UNIX: _socket.AF_UNIX}


class HeaderFailed(Exception):
    """The header could not be read: the connection ended, failed or timed out first.

    ``quiet`` when nothing of a header had arrived (a port probe, a plain
    health check) or the server closed the connection itself.
    """

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.quiet = quiet


def read_header(sock: Socket, timeout: float) -> Header:
    """Read the PROXY header from ``sock`` within ``timeout`` ms (``-1``: no limit).

    Consumes exactly the header's bytes: what the client sent after it stays
    in the socket for the handler.  Raises ``ProxyError`` for a bad header
    and ``HeaderFailed`` when the connection ends, fails or times out first.
    """
    deadline = None if timeout == -1 else monotonic() + timeout / 1000.0
    fd = sock.fileno()
    if fd < 0:
        raise HeaderFailed("the connection was closed", quiet=True)
    # The xmake API has no peek, and the header must be read exactly: the OS
    # socket is reached through a second object on the same descriptor,
    # non-blocking, and detached (never closed) at the end.  ``wait``
    # returns -1 once the socket is closed, so the descriptor stays ours.
    raw = _socket.socket(_AF[sock.family()], _socket.SOCK_STREAM, 0, fd)
    got = bytearray()
    try:
        raw.setblocking(False)
        while True:
            try:
                peeked = raw.recv(MAX_HEADER - len(got), _socket.MSG_PEEK)
            except BlockingIOError:
                pass
            except OSError as exc:
                raise HeaderFailed(_why(exc), quiet=not got) from None
            else:
                if not peeked:
                    raise HeaderFailed("the connection ended", quiet=not got)
                known = len(got)
                got += peeked
                header = parse(got)
                # Incomplete: every byte seen is the header's, take them all
                # (so the next wait sleeps until more arrive).  Complete:
                # take the header's bytes and not one more.
                _consume(raw, len(peeked) if header is None else header.size - known)
                if header is not None:
                    return header
            left = -1.0 if deadline is None else (deadline - monotonic()) * 1000.0
            if deadline is not None and left <= 0:
                raise HeaderFailed(f"timed out after {timeout:g} ms")
            ready = sock.wait(socket.EV_RECV, left)
            if ready == 0:
                raise HeaderFailed(f"timed out after {timeout:g} ms")
            if ready < 0:
                raise HeaderFailed(_why(sock.last_error), quiet=sock.fileno() < 0)
    finally:
        raw.detach()


def _consume(raw: Any, n: int) -> None:
    """Take ``n`` bytes that a peek just saw: they are in the socket, nothing waits."""
    try:
        while n > 0:
            taken = len(raw.recv(n))
            if not taken:  # cannot happen while nobody else reads this socket
                raise HeaderFailed("the connection ended")
            n -= taken
    except OSError as exc:
        raise HeaderFailed(_why(exc)) from None


def _why(err: OSError | None) -> str:
    if err is None:
        return "unknown error"
    if err.errno in (errno.ECONNRESET, errno.EPIPE):
        return "the connection was reset"
    text = str(err)
    return text.split(">: ", 1)[1] if text.startswith("<socket") and ">: " in text else text


def accept_header(sock: Socket, timeout: float) -> bool:
    """The server's step before the handler: read the header, adopt the client's address.

    ``False`` (logged on ``xsock_green.server``) when the connection must be
    closed without calling the handler.  A bad, oversized, incomplete or
    late header is a warning; a connection that ends before its first byte
    (a port probe, a plain health check) or that ``stop`` closed is logged
    at ``INFO``.
    """
    peer = sock.peeraddr() or str(sock)
    try:
        header = read_header(sock, timeout)
    except ProxyError as exc:
        log.warning("connection from %s closed: bad PROXY protocol header: %s", peer, exc)
        return False
    except HeaderFailed as exc:
        level = logging.INFO if exc.quiet else logging.WARNING
        log.log(level, "connection from %s closed before its PROXY protocol header: %s", peer, exc)
        return False
    if header.source is not None:
        sock._peer = header.source
    return True
