"""Tests for Bytes: xmake's cases, Python protocols, bad input and memory sharing."""

from __future__ import annotations

import array
import copy
import functools
import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

import pytest

from xsock_green._bytes import MAPPED, Bytes

DIGITS = "123456789"


def writable(data: bytes | str) -> Bytes:
    """A writable Bytes holding ``data``."""
    return Bytes(data).clone()


def assert_fails_unchanged(
    b: Bytes, exc: type[Exception], match: str, action: Callable[[], object]
) -> None:
    """``action`` raises ``exc`` (message matching ``match``) and leaves ``b`` as it was."""
    before = bytes(b)
    with pytest.raises(exc, match=match):
        action()
    assert bytes(b) == before


def bad(value: object) -> Any:
    """Pass a value of the wrong type past the type checker."""
    return value


# -- xmake's own cases -------------------------------------------------------------------


def test_xmake_ctor() -> None:
    assert Bytes(DIGITS).str() == DIGITS
    assert Bytes(Bytes(DIGITS)).str() == DIGITS
    assert Bytes(Bytes(DIGITS), 3, 5).str() == "345"
    assert Bytes(DIGITS).size() == 9
    assert Bytes(10).size() == 10
    assert Bytes(Bytes("123"), Bytes("456"), Bytes("789")).str() == DIGITS


def test_xmake_clone_slice_concat() -> None:
    assert Bytes(10).clone().size() == 10
    assert Bytes(DIGITS).clone().str() == DIGITS
    assert Bytes(10).slice(1, 2).size() == 2
    assert Bytes(DIGITS).slice(1, 4).str() == "1234"
    assert Bytes(Bytes("123"), Bytes("456")).str() == "123456"


def test_concat_varargs_and_list() -> None:
    parts = [Bytes("123"), Bytes("456"), Bytes("789")]
    for b in (Bytes(*parts), Bytes(parts), Bytes(tuple(parts))):
        assert b.str() == DIGITS
        assert b.size() == 9
        assert not b.readonly()


def test_concat_mixed_kinds_is_a_new_buffer() -> None:
    source = bytearray(b"45")
    b = Bytes(Bytes("12"), b"3", source, memoryview(b"6"), "789")
    assert b.str() == DIGITS
    b.u8_set(4, ord("X"))
    source[0] = ord("Y")
    assert b.str() == "123X56789"
    assert source == bytearray(b"Y5")


def test_copy_cases() -> None:
    assert Bytes(5).copy(DIGITS, 5, 9).str() == "56789"
    assert Bytes(14).copy(DIGITS).copy2(10, DIGITS, 5, 9).str() == "12345678956789"
    assert Bytes(DIGITS).clone().move(5, 9).str() == "567896789"
    assert Bytes(DIGITS).clone().move2(2, 5, 9).str() == "156789789"


@pytest.mark.parametrize("src", [Bytes(DIGITS), DIGITS.encode(), DIGITS, bytearray(b"123456789")])
def test_copy_sources(src: Bytes | bytes | str | bytearray) -> None:
    assert Bytes(9).copy(src).str() == DIGITS
    assert Bytes(3).copy(src, 4, 6).str() == "456"
    assert Bytes(5, "-").copy2(2, src, 8).str() == "-89--"


def test_copy_returns_self_and_defaults() -> None:
    b = Bytes(9)
    assert b.copy(DIGITS) is b
    assert b.copy2(1, "ab") is b
    assert b.move(2) is b
    assert b.move2(1, 1, 0) is b
    assert Bytes(12, ".").copy("abc").str() == "abc........."
    assert writable("abcdef").move(4).str() == "defdef"
    assert writable("abcdef").move2(3, 1, 4).str() == "ababcd"


def test_copy_empty_range_and_overlap() -> None:
    b = writable("abcdef")
    b.copy("xyz", 2, 1)
    b.copy2(7, "xyz", 1, 0)  # pos may be size + 1 for an empty range
    b.move2(7, 3, 2)
    assert b.str() == "abcdef"
    assert Bytes(0).copy("").size() == 0
    b.copy(b, 2, 6)  # source and destination overlap
    assert b.str() == "bcdeff"
    b.copy2(2, b, 1, 5)
    assert b.str() == "bbcdef"


# -- constructors ------------------------------------------------------------------------


def test_empty() -> None:
    b = Bytes()
    assert b.size() == 0
    assert len(b) == 0
    assert bytes(b) == b""
    assert b.readonly()
    assert not b
    assert b.str() == ""


def test_sized_zero_filled_writable() -> None:
    b = Bytes(4)
    assert bytes(b) == b"\0\0\0\0"
    assert not b.readonly()
    assert Bytes(0).size() == 0
    assert not Bytes(0).readonly()


def test_sized_with_init() -> None:
    assert bytes(Bytes(3, 0x41)) == b"AAA"
    assert bytes(Bytes(3, 255)) == b"\xff\xff\xff"
    assert bytes(Bytes(3, "xyz")) == b"xxx"
    assert bytes(Bytes(2, "\udcff")) == b"\xff\xff"  # a surrogate-escaped byte is one byte
    assert bytes(Bytes(2, None)) == b"\0\0"
    assert not Bytes(3, "a").readonly()


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((-1,), ValueError, "size must be >= 0"),
        ((3, 256), ValueError, r"init must be in range 0\.\.255"),
        ((3, -1), ValueError, r"init must be in range 0\.\.255"),
        ((3, ""), ValueError, "init must not be an empty str"),
        ((3, "é"), ValueError, "2 bytes in UTF-8"),
        ((3, 1.5), TypeError, "init must be an int or a str"),
        ((3, 1, 2), TypeError, "at most 2 arguments"),
        ((1.5,), TypeError, "must be Bytes, str or a bytes-like object, not float"),
        ((None,), TypeError, "not NoneType"),
        (({1: 2},), TypeError, "not dict"),
        (([Bytes("a"), [b"b"]],), TypeError, "part 2 .* not list"),
        ((b"a", b"b", 3.0), TypeError, "part 3 .* not float"),
        (([b"a"], [b"b"]), TypeError, "one list or tuple"),
    ],
)
def test_ctor_bad_arguments(args: tuple[Any, ...], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Bytes(*args)


def test_str_is_read_only_utf8_surrogateescape() -> None:
    b = Bytes("héllo")
    assert bytes(b) == "héllo".encode()
    assert b.readonly()
    assert b.str() == "héllo"
    raw = b"\xff\x00\x80abc\xc3"
    assert bytes(Bytes(Bytes(raw).str())) == raw
    assert Bytes(raw).str() == raw.decode("utf-8", "surrogateescape")


def test_bytes_source_is_shared_and_read_only() -> None:
    data = b"abc"
    b = Bytes(data)
    assert b.readonly()
    assert b.view().obj is data


def test_bytearray_source_is_a_writable_view() -> None:
    data = bytearray(b"abc")
    b = Bytes(data)
    assert not b.readonly()
    b.u8_set(1, ord("X"))
    assert data == bytearray(b"Xbc")
    data[2] = ord("Y")
    assert b.str() == "XbY"


def test_memoryview_and_other_buffers() -> None:
    ro = Bytes(memoryview(b"abcd")[1:3])
    assert ro.readonly()
    assert ro.str() == "bc"
    arr = array.array("H", [0x0102, 0x0304])
    b = Bytes(arr)
    assert b.size() == 4
    assert bytes(b) == arr.tobytes()
    b.u16le_set(3, 0)
    assert arr[1] == 0
    mv2d = memoryview(bytearray(b"abcdef")).cast("B", (2, 3))
    assert Bytes(mv2d).str() == "abcdef"


def test_non_contiguous_buffer_cannot_be_viewed_but_can_be_copied() -> None:
    strided = memoryview(b"abcdef")[::2]
    with pytest.raises(TypeError, match="non-contiguous"):
        Bytes(strided)
    assert Bytes(strided, b"!").str() == "ace!"
    assert Bytes(3).copy(strided).str() == "ace"


def test_released_source_view_does_not_break_bytes() -> None:
    data = bytearray(b"abc")
    mv = memoryview(data)
    b = Bytes(mv)
    mv.release()
    assert b.str() == "abc"


def test_view_ctor() -> None:
    b = writable(DIGITS)
    v = Bytes(b, 3, 5)
    assert v.str() == "345"
    assert not v.readonly()
    assert Bytes(b, 7).str() == "789"
    assert Bytes(b, 10).size() == 0
    assert Bytes(b, 4, 3).size() == 0
    assert Bytes(b"xyz", 2).str() == "yz"
    assert Bytes("xyz", 2, 2).str() == "y"
    v.u8_set(1, ord("X"))
    assert b.str() == "12X456789"
    assert Bytes(Bytes(DIGITS), 2, 3).readonly()
    whole = Bytes(b)
    whole.u8_set(9, ord("Z"))
    assert b.str() == "12X45678Z"


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        ((0,), IndexError, r"start=0 out of range 1\.\.10"),
        ((11,), IndexError, r"start=11 out of range 1\.\.10"),
        ((1, 10), IndexError, r"last=10 out of range 0\.\.9"),
        ((5, 3), IndexError, r"last=3 out of range 4\.\.9"),
        ((2, 1.0), TypeError, "last must be an int"),
        ((1, 2, 3), TypeError, "takes 3 arguments"),
    ],
)
def test_view_ctor_bad_bounds(args: tuple[Any, ...], exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        Bytes(Bytes(DIGITS), *args)


# -- xmake methods -----------------------------------------------------------------------


def test_size_and_readonly() -> None:
    assert Bytes(7).size() == 7
    assert not Bytes(7).readonly()
    assert Bytes("x").readonly()
    assert not Bytes("x").clone().readonly()
    assert Bytes(DIGITS).slice(2, 3).readonly()


def test_str_ranges() -> None:
    b = Bytes(DIGITS)
    assert b.str(3) == "3456789"
    assert b.str(3, 4) == "34"
    assert b.str(5, 4) == ""
    assert b.str(10) == ""
    assert Bytes(b"a\0b").str() == "a\0b"  # xmake's strndup would stop at NUL
    with pytest.raises(IndexError, match=r"i=0 out of range"):
        b.str(0)
    with pytest.raises(IndexError, match=r"j=10 out of range 2\.\.9"):
        b.str(3, 10)
    with pytest.raises(TypeError, match="i must be an int"):
        b.str(bad("1"))


def test_slice_is_a_view() -> None:
    parent = writable(DIGITS)
    s = parent.slice(4, 6)
    assert isinstance(s, Bytes)
    assert s.str() == "456"
    s.copy("abc")
    assert parent.str() == "123abc789"
    parent.u8_set(5, ord("Q"))
    assert s.str() == "aQc"
    assert parent.slice(8).str() == "89"
    nested = parent.slice(2, 8).slice(2, 3)
    nested.u16be_set(1, 0x5859)
    assert parent.str() == "12XYQc789"
    with pytest.raises(IndexError, match=r"Bytes\.slice: last=10"):
        parent.slice(1, 10)
    with pytest.raises(IndexError, match=r"Bytes\.slice: start=0"):
        parent.slice(0, 1)


def test_clone_is_independent_and_writable() -> None:
    src = writable(DIGITS)
    c = src.clone()
    assert c == src
    assert not c.readonly()
    c.u8_set(1, 0)
    src.u8_set(2, 0)
    assert c.str() == "\x00" + DIGITS[1:]
    assert src.str() == "1\x00" + DIGITS[2:]
    assert not Bytes(DIGITS).clone().readonly()


def test_copy_errors_leave_buffer_unchanged() -> None:
    b = writable("abcdef")
    assert_fails_unchanged(
        b, ValueError, r"Bytes\.copy: 9 bytes do not fit", lambda: b.copy(DIGITS)
    )
    assert_fails_unchanged(
        b, ValueError, r"Bytes\.copy2: 3 bytes do not fit at pos=5: only 2 left",
        lambda: b.copy2(5, "xyz"),
    )  # fmt: skip
    assert_fails_unchanged(b, IndexError, r"start=0", lambda: b.copy("xyz", 0))
    assert_fails_unchanged(b, IndexError, r"start=5 out of range 1\.\.4", lambda: b.copy("xyz", 5))
    assert_fails_unchanged(
        b, IndexError, r"last=4 out of range 1\.\.3", lambda: b.copy("xyz", 2, 4)
    )
    assert_fails_unchanged(
        b, IndexError, r"last=0 out of range 1\.\.3", lambda: b.copy("xyz", 2, 0)
    )
    assert_fails_unchanged(b, IndexError, r"pos=0 out of range 1\.\.7", lambda: b.copy2(0, "x"))
    assert_fails_unchanged(b, IndexError, r"pos=8 out of range", lambda: b.copy2(8, "x", 1, 0))
    assert_fails_unchanged(b, TypeError, r"src must be Bytes, str", lambda: b.copy(bad(5)))
    assert_fails_unchanged(b, TypeError, r"pos must be an int", lambda: b.copy2(bad("1"), "x"))
    assert_fails_unchanged(b, TypeError, r"start must be an int", lambda: b.copy("x", bad(1.0)))


def test_move_errors_leave_buffer_unchanged() -> None:
    b = writable("abcdef")
    assert_fails_unchanged(b, IndexError, r"Bytes\.move: start=0", lambda: b.move(0))
    assert_fails_unchanged(b, IndexError, r"Bytes\.move: last=7", lambda: b.move(2, 7))
    assert_fails_unchanged(b, IndexError, r"Bytes\.move2: pos=0", lambda: b.move2(0, 1, 2))
    assert_fails_unchanged(
        b, ValueError, r"Bytes\.move2: 4 bytes do not fit at pos=4: only 3 left",
        lambda: b.move2(4, 1, 4),
    )  # fmt: skip


def test_read_only_writes_raise_and_change_nothing() -> None:
    b = Bytes(DIGITS)
    writes: list[Callable[[], object]] = [
        lambda: b.copy("x"),
        lambda: b.copy2(1, "x"),
        lambda: b.move(2),
        lambda: b.move2(1, 2, 3),
        lambda: b.u8_set(1, 1),
        lambda: b.u16le_set(1, 1),
        lambda: b.u16be_set(1, 1),
        lambda: b.u32le_set(1, 1),
        lambda: b.u32be_set(1, 1),
        lambda: b.__setitem__(0, 1),
        lambda: b.__setitem__(slice(0, 1), b"x"),
        lambda: b.slice(2, 3).u8_set(1, 0),
        lambda: Bytes(b, 1, 1).copy("x"),
    ]
    for write in writes:
        assert_fails_unchanged(b, TypeError, "is read-only", write)
    # The read-only check comes first, even when the arguments are bad too.
    assert_fails_unchanged(b, TypeError, "is read-only", lambda: b.u8_set(100, 1000))


def test_getters_on_known_bytes() -> None:
    b = Bytes(bytes([0x01, 0x02, 0x03, 0x04, 0xFF, 0xFE, 0xFF, 0xFF]))
    assert b.u8(1) == 0x01
    assert b.u8(5) == 0xFF
    assert b.s8(1) == 1
    assert b.s8(5) == -1
    assert b.s8(6) == -2
    assert b.u16le(1) == 0x0201
    assert b.u16be(1) == 0x0102
    assert b.s16le(5) == -257  # FF FE little-endian is 0xFEFF
    assert b.s16be(5) == -2
    assert b.u16be(5) == 0xFFFE
    assert b.u32le(1) == 0x04030201
    assert b.u32be(1) == 0x01020304
    assert b.s32le(1) == 0x04030201
    assert b.s32be(5) == -65537  # FF FE FF FF
    assert b.u32be(5) == 0xFFFEFFFF
    assert b.s32le(5) == -257  # FF FE FF FF little-endian is 0xFFFFFEFF
    assert Bytes(bytes([0xFF, 0xFF, 0xFF, 0xFE])).s32be(1) == -2
    assert b.u32be(5) == b.slice(5).u32be(1)


@pytest.mark.parametrize(
    ("setter", "getters", "width"),
    [
        ("u8_set", ("u8", "s8"), 1),
        ("u16le_set", ("u16le", "s16le"), 2),
        ("u16be_set", ("u16be", "s16be"), 2),
        ("u32le_set", ("u32le", "s32le"), 4),
        ("u32be_set", ("u32be", "s32be"), 4),
    ],
)
def test_setter_getter_round_trips(setter: str, getters: tuple[str, str], width: int) -> None:
    bits = width * 8
    unsigned, signed = getters
    for pos in (1, 2, 7 - width):
        for value in (0, 1, 0x7F, (1 << (bits - 1)) - 1, 1 << (bits - 1), (1 << bits) - 1):
            b = Bytes(6, 0xAA)
            assert getattr(b, setter)(pos, value) is b
            assert getattr(b, unsigned)(pos) == value
            expected_signed = value - (1 << bits) if value >> (bits - 1) else value
            assert getattr(b, signed)(pos) == expected_signed
            # The neighbours are untouched.
            assert bytes(b)[: pos - 1] == b"\xaa" * (pos - 1)
            assert bytes(b)[pos - 1 + width :] == b"\xaa" * (7 - pos - width)
        for value in (-1, -2, -(1 << (bits - 1))):
            b = Bytes(6)
            getattr(b, setter)(pos, value)
            assert getattr(b, signed)(pos) == value
            assert getattr(b, unsigned)(pos) == value + (1 << bits)


def test_setters_byte_order() -> None:
    assert bytes(Bytes(4).u32be_set(1, 0x01020304)) == b"\x01\x02\x03\x04"
    assert bytes(Bytes(4).u32le_set(1, 0x01020304)) == b"\x04\x03\x02\x01"
    assert bytes(Bytes(3).u16be_set(2, 0xABCD)) == b"\x00\xab\xcd"
    assert bytes(Bytes(3).u16le_set(2, 0xABCD)) == b"\x00\xcd\xab"
    assert bytes(Bytes(4).u32be_set(1, -2)) == b"\xff\xff\xff\xfe"
    assert bytes(Bytes(1).u8_set(1, -128)) == b"\x80"
    chained = Bytes(7).u8_set(1, 1).u16be_set(2, 0x0203).u32le_set(4, 0x07060504)
    assert bytes(chained) == bytes(range(1, 8))


@pytest.mark.parametrize(("name", "width"), [("u8", 1), ("u16le", 2), ("u32be", 4), ("s32le", 4)])
def test_getter_bad_positions(name: str, width: int) -> None:
    b = Bytes(DIGITS)
    getter = getattr(b, name)
    last_ok = 10 - width
    assert isinstance(getter(last_ok), int)
    for pos in (0, -1, last_ok + 1, 100):
        with pytest.raises(IndexError, match=rf"Bytes\.{name}: pos={pos} out of range"):
            getter(pos)
    with pytest.raises(TypeError, match=rf"Bytes\.{name}: pos must be an int, not float"):
        getter(1.0)
    with pytest.raises(IndexError, match="does not fit in size"):
        getattr(Bytes(width - 1), name)(1)


@pytest.mark.parametrize(
    ("name", "width"),
    [("u8_set", 1), ("u16le_set", 2), ("u16be_set", 2), ("u32le_set", 4), ("u32be_set", 4)],
)
def test_setter_bad_input_leaves_buffer_unchanged(name: str, width: int) -> None:
    b = writable(DIGITS)
    setter = getattr(b, name)
    bits = width * 8
    too_big, too_small = 1 << bits, -(1 << (bits - 1)) - 1
    assert_fails_unchanged(
        b, ValueError, rf"value={too_big} out of range", lambda: setter(1, too_big)
    )
    assert_fails_unchanged(b, ValueError, r"value=.* out of range", lambda: setter(1, too_small))
    assert_fails_unchanged(b, TypeError, "value must be an int", lambda: setter(1, 1.0))
    assert_fails_unchanged(b, TypeError, "pos must be an int", lambda: setter("1", 1))
    for pos in (0, 11 - width):
        assert_fails_unchanged(
            b, IndexError, rf"pos={pos} out of range", functools.partial(setter, pos, 1)
        )


def test_dump_format() -> None:
    text = Bytes("0123456789ABCDEF!").dump()
    assert text == (
        "00000000   30 31 32 33  34 35 36 37  38 39 41 42  43 44 45 46  0123456789ABCDEF\n"
        "00000010   21                                                  !"
    )
    lines = Bytes(bytes(range(40))).dump().split("\n")
    assert len(lines) == 3
    assert lines[0].startswith("00000000   00 01 02 03  04 05")
    assert lines[0].endswith("  " + "." * 16)
    assert lines[2].startswith("00000020   20 21 22 23  24 25 26 27")
    assert lines[2].endswith("  " + " !\"#$%&'")
    # The ASCII column starts at the same place whatever the length of the line.
    assert [line[63:] for line in lines] == [".." * 8, "." * 16, " !\"#$%&'"]


def test_dump_ranges() -> None:
    b = Bytes(bytes(range(0x41, 0x41 + 26)))
    assert b.dump(3, 4) == "00000002   43 44" + " " * 45 + "  CD"
    assert b.dump(18).startswith("00000011   52 53")
    assert b.dump(5, 4) == ""
    assert Bytes().dump() == ""
    assert b.dump() == b.dump(1, 26)
    with pytest.raises(IndexError, match=r"Bytes\.dump: last=27"):
        b.dump(1, 27)


# -- Python protocols --------------------------------------------------------------------


def test_len_bool_bytes_iter() -> None:
    b = Bytes(DIGITS)
    assert len(b) == 9
    assert b
    assert not Bytes(0)
    assert bytes(b) == b"123456789"
    assert list(b) == list(b"123456789")
    assert list(reversed(b)) == list(b"987654321")
    assert 0x31 in b
    assert 0x30 not in b


def test_getitem_python_rules() -> None:
    b = Bytes(DIGITS)
    assert b[0] == ord("1")
    assert b[8] == ord("9")
    assert b[-1] == ord("9")
    assert b[-9] == ord("1")
    assert b[2:5] == b"345"
    assert isinstance(b[2:5], bytes)
    assert b[::2] == b"13579"
    assert b[::-1] == b"987654321"
    assert b[5:2] == b""
    assert b[100:] == b""
    with pytest.raises(IndexError, match="index 9 out of range for size 9"):
        b[9]
    with pytest.raises(IndexError, match="index -10 out of range"):
        b[-10]
    with pytest.raises(TypeError, match="indices must be integers or slices, not float"):
        b[bad(1.0)]


def test_getitem_slice_is_a_copy() -> None:
    b = writable("abc")
    part = b[0:2]
    b[0] = ord("X")
    assert part == b"ab"


def test_setitem_python_rules() -> None:
    b = writable(DIGITS)
    b[0] = ord("a")
    b[-1] = ord("z")
    assert b.str() == "a2345678z"
    b[1:3] = b"BC"
    b[3:5] = Bytes("DE")
    b[5:6] = b"F"
    b[6:8] = [ord("G"), ord("H")]
    b[0:0] = b""
    assert b.str() == "aBCDEFGHz"
    b[::2] = bytearray(b"12345")
    assert b.str() == "1B2D3F4H5"
    b[::-4] = memoryview(b"xyz")
    assert b.str() == "zB2DyF4Hx"
    b[:] = b[::-1]
    assert b.str() == "xH4FyD2Bz"


def test_setitem_bad_input_leaves_buffer_unchanged() -> None:
    b = writable(DIGITS)
    for key, value, exc, match in [
        (9, 1, IndexError, "index 9 out of range for size 9"),
        (-10, 1, IndexError, "index -10 out of range"),
        (0, 256, ValueError, r"range 0\.\.255, not 256"),
        (0, -1, ValueError, r"range 0\.\.255, not -1"),
        (0, b"x", TypeError, "item must be an int, not bytes"),
        ("0", 1, TypeError, "indices must be integers or slices, not str"),
        (slice(0, 2), b"xyz", ValueError, "slice of 2 bytes cannot take 3 bytes"),
        (slice(0, 2), b"x", ValueError, "fixed size"),
        (slice(None, None, 2), b"xy", ValueError, "slice of 5 bytes cannot take 2"),
        (slice(0, 2), "xy", TypeError, "not str"),
        (slice(0, 2), 2, TypeError, "not int"),
        (slice(0, 2), [1, 256], ValueError, "slice assignment"),
        (slice(0, 2), [1, "a"], TypeError, "slice assignment"),
        (slice(0, 2), None, TypeError, "slice assignment"),
    ]:

        def attempt(k: object = key, v: object = value) -> None:
            b[bad(k)] = bad(v)

        assert_fails_unchanged(b, exc, match, attempt)


def test_equality() -> None:
    b = Bytes(DIGITS)
    assert b == Bytes(DIGITS)
    assert b == writable(DIGITS)
    assert b == b"123456789"
    assert b == bytearray(b"123456789")
    assert b == memoryview(b"123456789")
    assert b"123456789" == b  # noqa: SIM300 - bytes.__eq__ defers to Bytes
    assert b != b"12345678"
    assert b != Bytes("987654321")
    assert b != DIGITS  # like bytes, never equal to a str
    assert b != 5
    assert b != None  # noqa: E711
    words = array.array("H", [1, 2])
    assert Bytes(words.tobytes()) == words  # compared byte by byte, not item by item
    assert Bytes(b"aXbYc", 1, 5)[::2] == b"abc"
    assert Bytes() == Bytes(0)
    assert Bytes() == b""


def test_unhashable() -> None:
    with pytest.raises(TypeError, match="unhashable"):
        hash(Bytes(DIGITS))
    assert Bytes.__hash__ is None


def test_view_is_a_memoryview_without_copy() -> None:
    b = writable(DIGITS)
    v = b.view()
    assert isinstance(v, memoryview)
    assert v.format == "B"
    assert v.ndim == 1
    assert not v.readonly
    v[0] = ord("X")
    assert b.str()[0] == "X"
    b.u8_set(2, ord("Y"))
    assert v[1] == ord("Y")
    with b.view() as released:  # releasing a view leaves the buffer usable
        assert len(released) == 9
    assert b.str() == "XY3456789"
    ro = Bytes(DIGITS).view()
    assert ro.readonly
    with pytest.raises(TypeError):
        ro[0] = 1
    assert Bytes(b, 2, 3).view().tobytes() == b"Y3"


@pytest.mark.skipif(sys.version_info < (3, 12), reason="__buffer__ needs Python 3.12")
def test_memoryview_of_bytes() -> None:  # pragma: no cover - depends on the interpreter
    b = writable(DIGITS)
    mv = memoryview(b)  # type: ignore[arg-type, unused-ignore]
    mv[0] = ord("X")
    assert b.str() == "X23456789"
    assert memoryview(Bytes(DIGITS)).readonly  # type: ignore[arg-type, unused-ignore]


def test_buffer_method_shares_memory() -> None:
    b = writable("abc")
    mv = b.__buffer__(0)
    mv[2] = ord("Z")
    assert b.str() == "abZ"


def test_repr() -> None:
    assert repr(Bytes("abc")) == "Bytes(b'abc', size=3, readonly=True)"
    assert repr(Bytes(2)) == "Bytes(b'\\x00\\x00', size=2, readonly=False)"
    long = repr(Bytes(100, "x"))
    assert long == "Bytes(b'" + "x" * 32 + "'..., size=100, readonly=False)"


def test_pickle_and_copy_give_independent_buffers() -> None:
    b = writable(DIGITS)
    for dup in (pickle.loads(pickle.dumps(b)), copy.copy(b), copy.deepcopy(b)):
        assert isinstance(dup, Bytes)
        assert dup == b
        assert not dup.readonly()
        dup.u8_set(1, 0)
        assert b.str() == DIGITS
    ro = pickle.loads(pickle.dumps(Bytes(DIGITS)))
    assert ro.readonly()
    assert ro.str() == DIGITS


# -- internal interface used by the socket module ----------------------------------------


def test_wrap_shares_memory_without_copy() -> None:
    data = bytearray(b"abcdef")
    mv = memoryview(data)[1:4]
    b = Bytes._wrap(mv)
    assert type(b) is Bytes
    assert b._mv is mv
    assert b.str() == "bcd"
    assert not b.readonly()
    b.u8_set(1, ord("X"))
    assert data == bytearray(b"aXcdef")
    data[3] = ord("Y")
    assert b.str() == "XcY"
    assert Bytes._wrap(memoryview(b"ro")).readonly()


def test_mv_slot_contract() -> None:
    for b in (Bytes(), Bytes(3), Bytes("ab"), Bytes(b"ab"), Bytes(Bytes(DIGITS), 2, 4)):
        mv = b._mv
        assert isinstance(mv, memoryview)
        assert mv.format == "B"
        assert mv.ndim == 1
        assert len(mv) == b.size()
        assert mv.readonly == b.readonly()
    # _mv is the only field, the compiled base's (xsock_green._storage), in both builds.
    assert Bytes.__slots__ == ()
    assert [cls.__name__ for cls in Bytes.__mro__ if "_mv" in vars(cls)] == ["Storage"]
    assert not hasattr(Bytes(1), "__dict__")


# -- large buffers: private mappings -----------------------------------------------------

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads resident memory from /proc"
)


def _resident_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


@pytest.mark.parametrize("size", [MAPPED - 1, MAPPED, 4 * MAPPED + 1])
def test_sized_buffers_are_zeroed_and_writable_on_both_sides_of_mapped(size: int) -> None:
    b = Bytes(size)
    assert len(b) == size and not b.readonly()
    assert not any(bytes(b))
    b.u8_set(size, 7)
    b.copy2(1, b"abc")
    assert bytes(b[:3]) == b"abc" and b.u8(size) == 7
    assert pickle.loads(pickle.dumps(b)) == b


@linux_only
def test_large_buffers_cost_only_what_is_written_and_go_back_when_freed() -> None:
    count = 256  # 16 MiB of 64 KiB buffers
    before = _resident_kib()
    buffers = [Bytes(MAPPED) for _ in range(count)]
    for b in buffers:
        b.u8_set(1, 1)  # one page of each
    touched_one_page = _resident_kib() - before
    for b in buffers:
        b.copy(b"\xff" * MAPPED)  # all of it
    touched_all = _resident_kib() - before
    del buffers, b
    after = _resident_kib() - before
    assert touched_one_page < count * MAPPED // 1024 // 4, touched_one_page
    assert touched_all >= count * MAPPED // 1024 * 9 // 10, touched_all
    assert after < touched_all // 10, (touched_all, after)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_large_buffer_is_not_shared_with_a_forked_child() -> None:
    b = Bytes(MAPPED)
    pid = os.fork()
    if pid == 0:  # the child writes its copy, then leaves at once
        b.u8_set(1, 99)
        os._exit(0 if b.u8(1) == 99 else 1)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b.u8(1) == 0  # the parent's copy is its own


def test_large_buffer_falls_back_to_the_heap_when_no_mapping_is_left(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno
    import mmap

    def refuse(*args: object, **kwargs: object) -> mmap.mmap:
        raise OSError(errno.ENOMEM, "Cannot allocate memory")  # vm.max_map_count reached

    monkeypatch.setattr(mmap, "mmap", refuse)
    b = Bytes(MAPPED)
    assert len(b) == MAPPED and not any(bytes(b)) and not b.readonly()
    b.u8_set(MAPPED, 1)
    assert b.u8(MAPPED) == 1
