"""The argument checks of ``Bytes``' methods: positions, ranges, values, sources.

Each raises the error a ``Bytes`` method documents (``IndexError`` for a
position, ``ValueError`` for a value or a range that does not fit,
``TypeError`` for a type), naming the method, the argument and what was
valid, before anything is written.  Interpreted, like ``Bytes`` itself.
"""

from __future__ import annotations

from typing import NoReturn

from ._storage import Storage

__all__ = [
    "ENCODING",
    "ERRORS",
    "bad_pos",
    "byte_view",
    "check_int",
    "check_pos",
    "check_range",
    "check_value",
    "type_name",
]

ENCODING = "utf-8"
ERRORS = "surrogateescape"  # any byte survives a str round trip


def type_name(value: object) -> str:
    return type(value).__name__


def bad_pos(method: str, pos: object, width: int, size: int) -> NoReturn:
    """Raise the error for a getter/setter position that failed the fast check."""
    if not isinstance(pos, int):
        raise TypeError(f"Bytes.{method}: pos must be an int, not {type_name(pos)}")
    what = "a byte" if width == 1 else f"a {width}-byte value"
    if size < width:
        raise IndexError(
            f"Bytes.{method}: pos={pos} out of range: {what} does not fit in size {size}"
        )
    raise IndexError(
        f"Bytes.{method}: pos={pos} out of range: {what} needs 1 <= pos <= {size - width + 1}"
    )


def check_value(method: str, value: object, bits: int) -> int:
    """Return ``value`` reduced to ``bits`` unsigned bits; signed values are accepted too."""
    if not isinstance(value, int):
        raise TypeError(f"Bytes.{method}: value must be an int, not {type_name(value)}")
    low, high = -(1 << (bits - 1)), (1 << bits) - 1
    if not low <= value <= high:
        raise ValueError(f"Bytes.{method}: value={value} out of range {low}..{high}")
    return value & high


def check_int(where: str, name: str, value: object) -> int:
    if not isinstance(value, int):
        raise TypeError(f"{where}: {name} must be an int, not {type_name(value)}")
    return value


def check_range(
    where: str, start: object, last: object, size: int, names: tuple[str, str]
) -> tuple[int, int]:
    """Validate a 1-based inclusive range ``start..last`` over ``size`` bytes.

    ``last`` of None means ``size``. The range may be empty (``last == start - 1``), which
    is how ``start == size + 1`` is allowed. Returns the 0-based half-open bounds.
    """
    s = check_int(where, names[0], start)
    e = size if last is None else check_int(where, names[1], last)
    if not 1 <= s <= size + 1:
        raise IndexError(f"{where}: {names[0]}={s} out of range 1..{size + 1} (size {size})")
    if not s - 1 <= e <= size:
        raise IndexError(
            f"{where}: {names[1]}={e} out of range {s - 1}..{size} ({names[0]}={s}, size {size})"
        )
    return s - 1, e


def check_pos(where: str, pos: object, count: int, size: int) -> int:
    """Validate a 1-based destination ``pos`` receiving ``count`` bytes; return it 0-based."""
    p = check_int(where, "pos", pos)
    if not 1 <= p <= size + 1:
        raise IndexError(f"{where}: pos={p} out of range 1..{size + 1} (size {size})")
    room = size - p + 1
    if count > room:
        raise ValueError(f"{where}: {count} bytes do not fit at pos={p}: only {room} left")
    return p - 1


def byte_view(obj: object, where: str, share: bool) -> memoryview:
    """Return a 1-D unsigned-byte memoryview of a source (Bytes, str or bytes-like).

    With ``share`` the result aliases the object's memory, so it must be contiguous;
    without it a non-contiguous buffer is copied instead.
    """
    if isinstance(obj, Storage):  # a Bytes
        return obj._mv
    if isinstance(obj, str):
        return memoryview(obj.encode(ENCODING, ERRORS))
    try:
        mv = memoryview(obj)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{where} must be Bytes, str or a bytes-like object, not {type_name(obj)}"
        ) from None
    if mv.format == "B" and mv.ndim == 1 and mv.c_contiguous:
        return mv
    if mv.c_contiguous:
        return mv.cast("B")
    if share:
        raise TypeError(f"{where}: cannot share a non-contiguous buffer")
    return memoryview(mv.tobytes())
