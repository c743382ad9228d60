"""Arguments into views: what the socket methods give the transfer core.

Each helper validates one kind of argument (misuse raises ``TypeError`` or
``ValueError`` at once) and returns what the core works on without a copy:
the caller's bytes, a writable view of the caller's ``Bytes``, a range.
"""

from __future__ import annotations

import os
from typing import Any, Final, cast

from ._bytes import Bytes
from ._constants import UNIX_PATH_MAX
from ._options import BLOCK, EMPTY, Options, check_int
from ._storage import Storage, blank

__all__ = ["data_view", "format_addr", "received", "span", "target", "unix_path"]

#: ``Bytes`` as a constant: compiled, a module global is a dict lookup per use.
_BYTES: Final = Bytes


def data_view(data: object) -> Any:
    """``bytes`` as they are, or a flat unsigned-byte view of anything else ``send`` takes."""
    cls = type(data)
    if cls is bytes:
        return data
    if cls is _BYTES:
        return cast(Storage, data)._mv  # compiled, a field of the C struct
    if isinstance(data, str):
        return data.encode("utf-8", "surrogateescape")
    if isinstance(data, (bytes, bytearray, memoryview)):
        mv = memoryview(data)
        if mv.format != "B" or mv.ndim != 1:
            mv = mv.cast("B")
        return mv
    if isinstance(data, Bytes):
        return data._mv
    raise TypeError(
        f"data must be str, bytes, bytearray, memoryview or Bytes, not {type(data).__name__}"
    )


def span(o: Options, size: int) -> tuple[int, int]:
    """0-based ``[begin, end)`` of the 1-based inclusive ``start``/``last``."""
    start = o.get("start", 1)
    last = o.get("last", size)
    if last > size:
        raise ValueError(f"last ({last}) is beyond the data size ({size})")
    if start > last + 1:
        raise ValueError(f"start ({start}) is past last ({last}) + 1")
    return start - 1, last


def target(buff: object, size: object, o: Options) -> memoryview:
    """The writable view of ``buff`` that a receive fills (``start``, ``size``)."""
    if type(buff) is _BYTES:
        mv = cast(Storage, buff)._mv
        # The whole buffer: compiled, an int size compares unboxed, and the
        # shared tables need no lookup.
        if (
            type(size) is int
            and size == len(mv)
            and (o is BLOCK or o is EMPTY or "start" not in o)
            and not mv.readonly
        ):
            return mv
    elif not isinstance(buff, Bytes):
        raise TypeError(f"buff must be a Bytes buffer, not {type(buff).__name__}")
    mv = buff._mv
    if mv.readonly:
        raise TypeError("buff is read-only; receive into a writable Bytes(size)")
    begin = o.get("start", 1) - 1
    room = len(mv) - begin
    if room < 0:
        raise ValueError(f"start ({begin + 1}) is beyond the buffer size ({len(mv)})")
    if size is None:
        size = room
    else:
        check_int("size", size, 0)
        if cast(int, size) > room:
            raise ValueError(
                f"size ({size}) is larger than the buffer's room from start ({room} bytes)"
            )
    return mv[begin : begin + cast(int, size)] if begin or size != len(mv) else mv


def received(buff: object, target: memoryview, n: int) -> Bytes:
    """The ``Bytes`` view of the first ``n`` bytes of ``target``, a view of ``buff``.

    A receive into the whole of ``buff`` gives the view it gave last time
    when that has as many bytes: the same range of the same memory, so
    nothing tells the two apart but ``is``, and a server that receives
    same-sized messages makes no view (no memoryview, no ``Bytes``) per call.
    """
    b = cast(Storage, buff)  # a Bytes, checked by target(); compiled: fields
    whole = target is b._mv
    if whole:
        last = b._last
        if last is not None and len(last._mv) == n:
            return cast(Bytes, last)
    data: Storage = blank(_BYTES)
    data._mv = target if n == len(target) else target[:n]
    data._last = None
    if whole:
        b._last = data
    return cast(Bytes, data)


def format_addr(addr: Any) -> str | None:
    if isinstance(addr, tuple):
        if len(addr) == 4:
            return f"[{addr[0]}]:{addr[1]}"
        return f"{addr[0]}:{addr[1]}"
    if isinstance(addr, bytes):
        if not addr:
            return None
        if addr[:1] == b"\0":
            return "@" + addr[1:].decode("utf-8", "surrogateescape")
        return addr.decode("utf-8", "surrogateescape")
    return str(addr) if addr else None


def unix_path(path: object, abstract: bool) -> bytes:
    """The OS address of a unix socket at ``path`` (abstract: no file, Linux)."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, (str, bytes)):
        raise TypeError(f"path must be a str or bytes, not {type(path).__name__}")
    raw = os.fsencode(path)
    if not raw:
        raise ValueError("path must not be empty")
    if abstract:
        raw = b"\0" + raw
    if len(raw) > UNIX_PATH_MAX:
        raise ValueError(
            f"unix socket path is {len(raw)} bytes; the limit is {UNIX_PATH_MAX}: {path!r}"
        )
    return raw
