"""Bytes: xmake's fixed-size, 1-based byte buffer (``core.base.bytes``) for Python.

Socket scripts ported from xmake allocate one buffer and let ``recv`` fill it, then look
at what arrived through cheap views (``slice``, ``Bytes(buff, start, last)``). Every
Bytes is therefore a thin wrapper around one 1-D unsigned-byte ``memoryview``: views
share memory, nothing is copied unless a method says so, and the socket code reads and
writes ``_mv`` directly. The xmake methods keep xmake's 1-based, inclusive positions;
the Python protocols (``len``, ``b[i]``, slices, iteration) keep Python's 0-based rules.
"""

from __future__ import annotations

import builtins
import mmap
import operator
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, Self, SupportsIndex, TypeAlias, overload

from ._bytechecks import (
    ENCODING,
    ERRORS,
    bad_pos,
    byte_view,
    check_pos,
    check_range,
    check_value,
    type_name,
)
from ._storage import Storage, blank

if TYPE_CHECKING:
    from typing_extensions import Buffer

    # What a source argument may be: another Bytes, a str (UTF-8 with surrogateescape)
    # or any bytes-like object.
    _Source: TypeAlias = "Bytes | str | Buffer"
    _Unpack: TypeAlias = Callable[[Buffer, int], tuple[int]]
    _Pack: TypeAlias = Callable[[Buffer, int, int], None]

__all__ = ["Bytes"]

_REPR_LIMIT = 32  # bytes shown by repr before it truncates
_DUMP_WIDTH = 16  # bytes per dump() line

#: From this size on, ``Bytes(size)`` is an anonymous private mapping: its pages become
#: resident only when written (a 64 KiB receive buffer that gets 100 bytes costs one
#: page), and all of it goes back to the OS when the buffer is freed. Smaller buffers come
#: from Python's allocator: no system call to get one, but freed memory stays with the
#: process. A mapping costs a few microseconds more to make (docs/BENCHMARKS.md).
MAPPED = 65536
_MAP_PRIVATE = getattr(mmap, "MAP_PRIVATE", 0)  # not on Windows: the allocator then

_SL = ("start", "last")  # the usual names of a range's bounds, for error messages

# Precompiled struct accessors: the getters and setters run once per field on hot paths.
_U16LE, _U16BE, _S16LE, _S16BE = (struct.Struct(f).unpack_from for f in ("<H", ">H", "<h", ">h"))
_U32LE, _U32BE, _S32LE, _S32BE = (struct.Struct(f).unpack_from for f in ("<I", ">I", "<i", ">i"))
_P16LE, _P16BE, _P32LE, _P32BE = (struct.Struct(f).pack_into for f in ("<H", ">H", "<I", ">I"))


class Bytes(Storage):
    """A fixed-size byte buffer, 1-based like xmake's ``bytes``, that is also a Python object.

    Constructors (all positional):

    * ``Bytes()``: empty and read-only, as in xmake.
    * ``Bytes(size)``: ``size`` zero bytes, writable. ``Bytes(size, init)`` fills them with
      ``init``, an int 0..255 or a str whose first character is one byte in UTF-8.
    * ``Bytes(str)``: the UTF-8 bytes of ``str`` (``surrogateescape``), read-only.
    * ``Bytes(obj)`` for a bytes-like ``obj``: a view sharing ``obj``'s memory, not a copy.
      ``bytes`` therefore gives a read-only buffer and ``bytearray`` (or a writable
      ``memoryview``, ``array``, ``mmap``) a writable one whose writes reach ``obj``.
      ``Bytes(other_bytes)`` is likewise a view of the whole of ``other_bytes``.
    * ``Bytes(buff, start, last=None)``: a view of ``buff[start..last]`` (1-based, inclusive,
      ``last`` defaults to the end) sharing memory; read-only if ``buff`` is.
    * ``Bytes(b1, b2, ...)`` and ``Bytes([b1, b2, ...])``: a new writable buffer holding the
      concatenation of the parts (Bytes, str or bytes-like).

    xmake methods use 1-based inclusive positions; a range may be empty
    (``last == start - 1``). Python protocols use Python's rules: ``b[i]`` is 0-based and
    accepts negative indexes, and ``b[i:j]`` returns a ``bytes`` copy (use ``slice`` or
    ``view`` for a view).

    Errors: a bad position raises ``IndexError``, a bad value or a range that does not fit
    ``ValueError``, an argument of the wrong type ``TypeError``, all naming the argument and
    the valid range. Any write into a read-only buffer raises ``TypeError`` (Python's own
    choice for read-only memory) saying that the buffer is read-only. Every method validates
    all its arguments before it writes, so a failed call leaves the buffer unchanged.

    Bytes is mutable, so it is unhashable; ``==`` compares contents with another Bytes or
    any bytes-like object.
    """

    __slots__ = ()  # the storage, ``_mv``, is ``Storage``'s

    @overload
    def __init__(self) -> None: ...
    @overload
    def __init__(self, size: int, init: int | builtins.str | None = None, /) -> None: ...
    @overload
    def __init__(self, source: _Source, /) -> None: ...
    @overload
    def __init__(self, source: _Source, start: int, last: int | None = None, /) -> None: ...
    @overload
    def __init__(self, parts: Sequence[_Source], /) -> None: ...
    @overload
    def __init__(self, first: _Source, second: _Source, /, *rest: _Source) -> None: ...

    def __init__(self, *args: object) -> None:
        """Build a buffer; see the class docstring for the forms."""
        self._last = None
        if not args:
            self._mv = memoryview(b"")
            return
        first = args[0]
        if isinstance(first, int):
            self._mv = _sized(first, args)
        elif isinstance(first, list | tuple):
            if len(args) > 1:
                raise TypeError("Bytes(parts): takes one list or tuple of parts")
            self._mv = _concat(first)
        elif len(args) == 1:
            self._mv = byte_view(first, "Bytes(source): source", share=True)
        elif isinstance(args[1], int):
            if len(args) > 3:
                raise TypeError(f"Bytes(buff, start, last): takes 3 arguments, not {len(args)}")
            mv = byte_view(first, "Bytes(buff, start, last): buff", share=True)
            last = args[2] if len(args) == 3 else None
            s, e = check_range("Bytes(buff, start, last)", args[1], last, len(mv), _SL)
            self._mv = mv[s:e]
        else:
            self._mv = _concat(args)

    @classmethod
    def _wrap(cls, mv: memoryview) -> Self:
        """Wrap a 1-D 'B' memoryview without checking or copying it (socket fast path)."""
        self = blank(cls)
        self._mv = mv
        self._last = None
        return self

    # -- xmake methods -------------------------------------------------------------------

    def size(self) -> int:
        """Return the number of bytes."""
        return len(self._mv)

    def readonly(self) -> bool:
        """Return True when the buffer cannot be written."""
        return self._mv.readonly

    def str(self, i: int = 1, j: int | None = None) -> builtins.str:
        """Decode bytes ``i..j`` (1-based, inclusive; default all) as UTF-8.

        Undecodable bytes become lone surrogates (``surrogateescape``), so
        ``Bytes(b.str())`` gives back the same bytes. NUL bytes are kept.
        """
        s, e = check_range("Bytes.str", i, j, len(self._mv), ("i", "j"))
        return builtins.str(self._mv[s:e], ENCODING, ERRORS)

    def slice(self, start: int, last: int | None = None) -> Bytes:
        """Return a view of bytes ``start..last`` (1-based, inclusive) sharing memory."""
        s, e = check_range("Bytes.slice", start, last, len(self._mv), _SL)
        return Bytes._wrap(self._mv[s:e])

    def clone(self) -> Bytes:
        """Return a new writable copy of the buffer."""
        return Bytes._wrap(memoryview(bytearray(self._mv)))

    def copy(self, src: _Source, start: int = 1, last: int | None = None) -> Self:
        """Copy ``src[start..last]`` into this buffer at position 1; return self.

        ``src`` may be Bytes, str or bytes-like, even this buffer (overlap is safe). The
        range defaults to the whole of ``src`` and must fit in this buffer.
        """
        return self._copy("Bytes.copy", 1, src, start, last)

    def copy2(self, pos: int, src: _Source, start: int = 1, last: int | None = None) -> Self:
        """Copy ``src[start..last]`` into this buffer at position ``pos``; return self.

        As ``copy``; ``pos`` may be ``size + 1`` only for an empty range.
        """
        return self._copy("Bytes.copy2", pos, src, start, last)

    def move(self, start: int = 1, last: int | None = None) -> Self:
        """Move bytes ``start..last`` to position 1 (overlap is safe); return self."""
        return self._copy("Bytes.move", 1, self, start, last)

    def move2(self, pos: int, start: int = 1, last: int | None = None) -> Self:
        """Move bytes ``start..last`` to position ``pos`` (overlap is safe); return self."""
        return self._copy("Bytes.move2", pos, self, start, last)

    def _copy(
        self, where: builtins.str, pos: int, src: _Source, start: int, last: int | None
    ) -> Self:
        mv = self._mv
        if mv.readonly:
            self._read_only(where)
        smv = byte_view(src, f"{where}: src", share=False)
        s, e = check_range(where, start, last, len(smv), _SL)
        p = check_pos(where, pos, e - s, len(mv))
        # memoryview slice assignment is a memmove, so overlapping ranges are safe.
        mv[p : p + e - s] = smv[s:e]
        return self

    def u8(self, pos: int) -> int:
        """Return the unsigned byte at ``pos`` (1-based)."""
        mv = self._mv
        if not (isinstance(pos, int) and 0 < pos <= len(mv)):
            bad_pos("u8", pos, 1, len(mv))
        return mv[pos - 1]

    def s8(self, pos: int) -> int:
        """Return the signed byte at ``pos`` (1-based)."""
        mv = self._mv
        if not (isinstance(pos, int) and 0 < pos <= len(mv)):
            bad_pos("s8", pos, 1, len(mv))
        v = mv[pos - 1]
        return v - 0x100 if v & 0x80 else v

    def _get(self, method: builtins.str, pos: int, width: int, unpack: _Unpack) -> int:
        mv = self._mv
        if not (isinstance(pos, int) and 0 < pos <= len(mv) - width + 1):
            bad_pos(method, pos, width, len(mv))
        return unpack(mv, pos - 1)[0]

    def u16le(self, pos: int) -> int:
        """Return the unsigned little-endian 16-bit value at ``pos``..``pos+1``."""
        return self._get("u16le", pos, 2, _U16LE)

    def u16be(self, pos: int) -> int:
        """Return the unsigned big-endian 16-bit value at ``pos``..``pos+1``."""
        return self._get("u16be", pos, 2, _U16BE)

    def s16le(self, pos: int) -> int:
        """Return the signed little-endian 16-bit value at ``pos``..``pos+1``."""
        return self._get("s16le", pos, 2, _S16LE)

    def s16be(self, pos: int) -> int:
        """Return the signed big-endian 16-bit value at ``pos``..``pos+1``."""
        return self._get("s16be", pos, 2, _S16BE)

    def u32le(self, pos: int) -> int:
        """Return the unsigned little-endian 32-bit value at ``pos``..``pos+3``."""
        return self._get("u32le", pos, 4, _U32LE)

    def u32be(self, pos: int) -> int:
        """Return the unsigned big-endian 32-bit value at ``pos``..``pos+3``."""
        return self._get("u32be", pos, 4, _U32BE)

    def s32le(self, pos: int) -> int:
        """Return the signed little-endian 32-bit value at ``pos``..``pos+3``."""
        return self._get("s32le", pos, 4, _S32LE)

    def s32be(self, pos: int) -> int:
        """Return the signed big-endian 32-bit value at ``pos``..``pos+3``."""
        return self._get("s32be", pos, 4, _S32BE)

    def u8_set(self, pos: int, value: int) -> Self:
        """Store ``value`` (-128..255; negatives as two's complement) at ``pos``; return self."""
        mv = self._mv
        if mv.readonly:
            self._read_only("u8_set")
        if not (isinstance(pos, int) and 0 < pos <= len(mv)):
            bad_pos("u8_set", pos, 1, len(mv))
        mv[pos - 1] = check_value("u8_set", value, 8)
        return self

    def _set(self, method: builtins.str, pos: int, value: int, width: int, pack: _Pack) -> Self:
        mv = self._mv
        if mv.readonly:
            self._read_only(method)
        if not (isinstance(pos, int) and 0 < pos <= len(mv) - width + 1):
            bad_pos(method, pos, width, len(mv))
        pack(mv, pos - 1, check_value(method, value, width * 8))
        return self

    def u16le_set(self, pos: int, value: int) -> Self:
        """Store ``value`` (-32768..65535) little-endian at ``pos``..``pos+1``; return self."""
        return self._set("u16le_set", pos, value, 2, _P16LE)

    def u16be_set(self, pos: int, value: int) -> Self:
        """Store ``value`` (-32768..65535) big-endian at ``pos``..``pos+1``; return self."""
        return self._set("u16be_set", pos, value, 2, _P16BE)

    def u32le_set(self, pos: int, value: int) -> Self:
        """Store ``value`` (-2**31..2**32-1) little-endian at ``pos``..``pos+3``; return self."""
        return self._set("u32le_set", pos, value, 4, _P32LE)

    def u32be_set(self, pos: int, value: int) -> Self:
        """Store ``value`` (-2**31..2**32-1) big-endian at ``pos``..``pos+3``; return self."""
        return self._set("u32be_set", pos, value, 4, _P32BE)

    def dump(self, start: int = 1, last: int | None = None) -> builtins.str:
        """Return a hex and ASCII dump of bytes ``start..last`` (default all).

        One line per 16 bytes: the 0-based offset in this buffer as 8 hex digits, the bytes
        in hex in groups of four, then the bytes as ASCII with ``.`` for anything not
        printable. Lines are joined by newlines, without a final one; an empty range gives
        ``""``. xmake prints 32 bytes a line in colour; this returns plain text instead.
        For example ``Bytes("0123456789ABCDEF!").dump()`` is::

            00000000   30 31 32 33  34 35 36 37  38 39 41 42  43 44 45 46  0123456789ABCDEF
            00000010   21                                                  !
        """
        s, e = check_range("Bytes.dump", start, last, len(self._mv), _SL)
        data = self._mv[s:e].tobytes()
        lines = []
        for off in range(0, len(data), _DUMP_WIDTH):
            chunk = data[off : off + _DUMP_WIDTH]
            groups = (chunk[g : g + 4] for g in range(0, _DUMP_WIDTH, 4))
            hexpart = "".join(" " + "".join(f" {b:02X}" for b in grp) for grp in groups)
            text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
            lines.append(f"{s + off:08X} {hexpart:<52}  {text}")
        return "\n".join(lines)

    # -- Python protocols ----------------------------------------------------------------

    def view(self) -> memoryview:
        """Return a memoryview (format 'B', 1-D) of the buffer's memory, without a copy.

        It is read-only when the buffer is. Releasing it does not affect the buffer.
        """
        return self._mv[:]

    def __buffer__(self, flags: int, /) -> memoryview:
        """Export the buffer's memory, so that ``memoryview(b)`` works on Python 3.12+."""
        return self._mv[:]

    def __len__(self) -> int:
        return len(self._mv)

    def __bool__(self) -> bool:
        return len(self._mv) > 0

    def __bytes__(self) -> bytes:
        return self._mv.tobytes()

    def __iter__(self) -> Iterator[int]:
        return iter(self._mv)

    @overload
    def __getitem__(self, key: SupportsIndex) -> int: ...
    @overload
    def __getitem__(self, key: builtins.slice) -> bytes: ...

    def __getitem__(self, key: SupportsIndex | builtins.slice) -> int | bytes:
        """``b[i]`` is the byte at 0-based ``i``; ``b[i:j:k]`` is a ``bytes`` copy."""
        if isinstance(key, builtins.slice):
            return self._mv[key].tobytes()
        try:
            return self._mv[key]
        except IndexError:
            raise IndexError(f"Bytes index {key} out of range for size {len(self._mv)}") from None
        except TypeError:
            raise TypeError(
                f"Bytes indices must be integers or slices, not {type_name(key)}"
            ) from None

    @overload
    def __setitem__(self, key: SupportsIndex, value: int) -> None: ...
    @overload
    def __setitem__(self, key: builtins.slice, value: _Source | Sequence[int]) -> None: ...

    def __setitem__(self, key: SupportsIndex | builtins.slice, value: object) -> None:
        """Set a byte (0-based) or a slice; a slice takes as many bytes as it covers."""
        mv = self._mv
        if mv.readonly:
            self._read_only("__setitem__")
        if isinstance(key, builtins.slice):
            mv[key] = self._slice_value(key, value)
            return
        try:
            i = operator.index(key)
        except TypeError:
            raise TypeError(
                f"Bytes indices must be integers or slices, not {type_name(key)}"
            ) from None
        if not -len(mv) <= i < len(mv):
            raise IndexError(f"Bytes index {i} out of range for size {len(mv)}")
        if not isinstance(value, int):
            raise TypeError(f"Bytes item must be an int, not {type_name(value)}")
        if not 0 <= value <= 0xFF:
            raise ValueError(f"Bytes item must be in range 0..255, not {value}")
        mv[i] = value

    def _slice_value(self, key: builtins.slice, value: object) -> memoryview:
        if isinstance(value, int | builtins.str):
            raise TypeError(
                f"Bytes slice assignment takes Bytes, a bytes-like object or ints, "
                f"not {type_name(value)}"
            )
        try:
            src = byte_view(value, "", share=False)
        except TypeError:
            try:  # like bytearray, also take an iterable of ints
                src = memoryview(bytes(value))  # type: ignore[call-overload]
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"Bytes slice assignment: {exc}") from None
        want = len(range(*key.indices(len(self._mv))))
        if len(src) != want:
            raise ValueError(
                f"Bytes has a fixed size: slice of {want} bytes cannot take {len(src)} bytes"
            )
        return src

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Bytes):
            return self._mv == other._mv
        if isinstance(other, builtins.str):
            return NotImplemented
        try:
            omv = byte_view(other, "", share=False)
        except TypeError:
            return NotImplemented
        return self._mv == omv

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Callable[[bytes, bool], Bytes], tuple[bytes, bool]]:
        # Pickling, copy.copy and copy.deepcopy all give an independent buffer with the
        # same contents and the same read-only flag; a view does not stay a view.
        return _rebuild, (self._mv.tobytes(), self._mv.readonly)

    def __repr__(self) -> builtins.str:
        mv = self._mv
        shown = repr(mv[:_REPR_LIMIT].tobytes())
        more = "..." if len(mv) > _REPR_LIMIT else ""
        return f"Bytes({shown}{more}, size={len(mv)}, readonly={mv.readonly})"

    def _read_only(self, method: builtins.str) -> NoReturn:
        where = method if method.startswith("Bytes") else f"Bytes.{method}"
        raise TypeError(f"{where}: cannot modify, the buffer (size {len(self._mv)}) is read-only")


def _sized(size: int, args: tuple[object, ...]) -> memoryview:
    """Build the storage for ``Bytes(size[, init])``."""
    if len(args) > 2:
        raise TypeError(f"Bytes(size, init): takes at most 2 arguments, not {len(args)}")
    if size < 0:
        raise ValueError(f"Bytes(size): size must be >= 0, not {size}")
    init = args[1] if len(args) == 2 else None
    if init is None:
        return _zeroed(size)
    if isinstance(init, str):
        if not init:
            raise ValueError("Bytes(size, init): init must not be an empty str")
        code = init[0].encode(ENCODING, ERRORS)
        if len(code) != 1:
            raise ValueError(
                f"Bytes(size, init): init {init[0]!r} is {len(code)} bytes in UTF-8, not one"
            )
        fill = code[0]
    elif isinstance(init, int):
        if not 0 <= init <= 0xFF:
            raise ValueError(f"Bytes(size, init): init must be in range 0..255, not {init}")
        fill = init
    else:
        raise TypeError(f"Bytes(size, init): init must be an int or a str, not {type_name(init)}")
    return memoryview(bytearray((fill,)) * size)


def _zeroed(size: int) -> memoryview:
    """``size`` writable zero bytes: a private mapping from ``MAPPED`` bytes on."""
    if size >= MAPPED and _MAP_PRIVATE:
        try:
            return memoryview(mmap.mmap(-1, size, flags=_MAP_PRIVATE))
        except OSError:  # out of mappings (vm.max_map_count) or memory: try the heap
            pass
    return memoryview(bytearray(size))


def _rebuild(data: bytes, readonly: bool) -> Bytes:
    """Unpickle a Bytes (see ``Bytes.__reduce__``)."""
    return Bytes._wrap(memoryview(data if readonly else bytearray(data)))


def _concat(parts: Sequence[object]) -> memoryview:
    """Build the storage for ``Bytes(b1, b2, ...)`` and ``Bytes([b1, b2, ...])``."""
    views = [byte_view(p, f"Bytes(parts): part {n}", share=False) for n, p in enumerate(parts, 1)]
    return memoryview(bytearray().join(views))
