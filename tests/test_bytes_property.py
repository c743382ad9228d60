"""Property tests: Bytes behaves like a bytearray model under views, copies and writes.

Each test builds a Bytes, often as a view inside a larger parent, and a plain bytearray
model of the same bytes, applies the same operation to both with xmake's 1-based rules
translated by hand, and checks that buffer, model and parent agree afterwards. Invalid
arguments must raise and change nothing.
"""

from __future__ import annotations

import struct

from hypothesis import event, given, settings
from hypothesis import strategies as st

from xsock_green._bytes import Bytes

FAST = settings(max_examples=150, deadline=None)

data_st = st.binary(max_size=40)
View = tuple[bytearray, Bytes, int, bytearray]


@st.composite
def views(draw: st.DrawFn, min_len: int = 0) -> View:
    """A parent buffer, a writable view of at least ``min_len`` bytes into it, the view's
    0-based offset in the parent, and a model of the view's bytes."""
    parent = bytearray(draw(st.binary(min_size=min_len, max_size=40)))
    start = draw(st.integers(min_value=1, max_value=len(parent) + 1 - min_len))
    last = draw(st.integers(min_value=start - 1 + min_len, max_value=len(parent)))
    view = Bytes(Bytes(parent), start, last)
    return parent, view, start - 1, bytearray(parent[start - 1 : last])


def near(data: st.DataObject, lo: int, hi: int) -> int:
    """An int mostly in ``lo..hi``, sometimes just outside it, to test the edges."""
    hi = max(lo, hi)
    return data.draw(st.one_of(st.integers(lo, hi), st.integers(lo - 2, hi + 2)))


def range_ok(start: int, last: int, size: int) -> bool:
    """xsock_green's rule for a 1-based inclusive range: may be empty, never outside."""
    return 1 <= start <= size + 1 and start - 1 <= last <= size


def check_parent(parent: bytearray, before: bytes, offset: int, model: bytearray) -> None:
    """The parent holds the model at ``offset`` and is untouched elsewhere."""
    expected = bytearray(before)
    expected[offset : offset + len(model)] = model
    assert parent == expected


@FAST
@given(data_st, st.integers(-2, 45), st.integers(-2, 45))
def test_view_ctor_and_slice_match_model(data: bytes, start: int, last: int) -> None:
    b = Bytes(data)
    if range_ok(start, last, len(data)):
        expected = data[start - 1 : last]
        assert bytes(Bytes(b, start, last)) == expected
        assert bytes(b.slice(start, last)) == expected
        assert b.str(start, last).encode("utf-8", "surrogateescape") == expected
        assert Bytes(b, start, last).readonly()
    else:
        for attempt in (
            lambda: Bytes(b, start, last),
            lambda: b.slice(start, last),
            lambda: b.str(start, last),
        ):
            try:
                attempt()
            except IndexError:
                pass
            else:
                raise AssertionError(f"range {start}..{last} of {len(data)} was accepted")


@FAST
@given(data_st, st.slices(45))
def test_python_slices_match_bytes(data: bytes, key: slice) -> None:
    b = Bytes(data)
    assert b[key] == data[key]
    assert list(b) == list(data)
    assert len(b) == len(data)
    for i in range(-len(data), len(data)):
        assert b[i] == data[i]


@FAST
@given(views(), data_st, st.data())
def test_copy2_matches_model(v: View, src: bytes, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    start = near(data, 1, len(src) + 1)
    last = near(data, start - 1, len(src))
    n = last - start + 1
    pos = near(data, 1, len(model) + 1 - max(n, 0))
    valid = range_ok(start, last, len(src)) and 1 <= pos <= len(model) + 1
    valid = valid and pos + n - 1 <= len(model)
    event(f"valid={valid}")
    try:
        result = b.copy2(pos, src, start, last)
    except (IndexError, ValueError):
        assert not valid
    else:
        assert valid
        assert result is b
        model[pos - 1 : pos - 1 + n] = src[start - 1 : last]
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views(), st.one_of(data_st, st.text(max_size=20)), st.data())
def test_copy_matches_model(v: View, src: bytes | str, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    raw = src.encode("utf-8", "surrogateescape") if isinstance(src, str) else src
    start = near(data, 1, len(raw) + 1)
    last = near(data, start - 1, min(len(raw), start - 1 + len(model)))
    valid = range_ok(start, last, len(raw)) and last - start + 1 <= len(model)
    event(f"valid={valid}")
    try:
        b.copy(src, start, last)
    except (IndexError, ValueError):
        assert not valid
    else:
        assert valid
        model[: last - start + 1] = raw[start - 1 : last]
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views(), st.data())
def test_move2_matches_model(v: View, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    start = near(data, 1, len(model) + 1)
    last = near(data, start - 1, len(model))
    n = last - start + 1
    pos = near(data, 1, len(model) + 1 - max(n, 0))
    valid = range_ok(start, last, len(model)) and 1 <= pos <= len(model) + 1
    valid = valid and pos + n - 1 <= len(model)
    event(f"valid={valid}")
    try:
        b.move2(pos, start, last)
    except (IndexError, ValueError):
        assert not valid
    else:
        assert valid
        model[pos - 1 : pos - 1 + n] = bytes(model[start - 1 : last])
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views(), st.data())
def test_move_matches_model(v: View, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    start = near(data, 1, len(model) + 1)
    last = near(data, start - 1, len(model))
    valid = range_ok(start, last, len(model))
    event(f"valid={valid}")
    try:
        b.move(start, last)
    except IndexError:
        assert not valid
    else:
        assert valid
        model[: last - start + 1] = bytes(model[start - 1 : last])
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


SETTERS = {
    "u8_set": ("B", "b", "u8", "s8"),
    "u16le_set": ("<H", "<h", "u16le", "s16le"),
    "u16be_set": (">H", ">h", "u16be", "s16be"),
    "u32le_set": ("<I", "<i", "u32le", "s32le"),
    "u32be_set": (">I", ">i", "u32be", "s32be"),
}


@FAST
@given(views(min_len=2), st.sampled_from(sorted(SETTERS)), st.data())
def test_integer_setters_match_struct(v: View, setter: str, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    ufmt, sfmt, uget, sget = SETTERS[setter]
    width = struct.calcsize(ufmt)
    bits = width * 8
    pos = near(data, 1, len(model) - width + 1)
    low, high = -(1 << (bits - 1)), (1 << bits) - 1
    value = data.draw(st.one_of(st.integers(low, high), st.sampled_from([low - 1, high + 1])))
    pos_ok = 1 <= pos <= len(model) - width + 1
    value_ok = low <= value <= high
    event(f"pos_ok={pos_ok} value_ok={value_ok}")
    try:
        getattr(b, setter)(pos, value)
    except IndexError:
        assert not pos_ok
    except ValueError:
        assert pos_ok
        assert not value_ok
    else:
        assert pos_ok
        assert value_ok
        struct.pack_into(ufmt, model, pos - 1, value & ((1 << bits) - 1))
        assert getattr(b, uget)(pos) == struct.unpack_from(ufmt, model, pos - 1)[0]
        assert getattr(b, sget)(pos) == struct.unpack_from(sfmt, model, pos - 1)[0]
        assert getattr(b, uget)(pos) == value & ((1 << bits) - 1)
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views(), st.data())
def test_item_writes_match_model(v: View, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    for _ in range(data.draw(st.integers(0, 8))):
        index = near(data, -len(model), len(model) - 1)
        value = near(data, 0, 255)
        try:
            b[index] = value
        except IndexError:
            assert not -len(model) <= index < len(model)
        except ValueError:
            assert not 0 <= value <= 255
        else:
            model[index] = value
        assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views(), st.slices(45), st.data())
def test_slice_writes_match_model(v: View, key: slice, data: st.DataObject) -> None:
    parent, b, offset, model = v
    before = bytes(parent)
    want = len(range(*key.indices(len(model))))
    value = data.draw(st.one_of(st.binary(min_size=want, max_size=want), st.binary(max_size=45)))
    fits = len(value) == want
    event(f"fits={fits}")
    try:
        b[key] = value
    except ValueError:
        assert not fits
    else:
        assert fits
        model[key] = value
    assert bytes(b) == bytes(model)
    check_parent(parent, before, offset, model)


@FAST
@given(views())
def test_clone_is_independent(v: View) -> None:
    parent, b, offset, model = v
    c = b.clone()
    assert c == b
    assert c == model
    if c.size():
        c[0] = (c[0] + 1) % 256
        assert c != b
        parent[offset] = c[0]
        assert b == c
        c[0] = (c[0] + 1) % 256
        assert b != c
    assert bytes(b) == parent[offset : offset + len(model)]


@FAST
@given(st.lists(st.one_of(data_st, st.text(max_size=10)), max_size=5))
def test_concatenation_matches_join(parts: list[bytes | str]) -> None:
    raw = b"".join(p.encode("utf-8", "surrogateescape") if isinstance(p, str) else p for p in parts)
    listed = Bytes(parts)
    assert bytes(listed) == raw
    assert not listed.readonly()
    if len(parts) >= 2:
        assert bytes(Bytes(*parts)) == raw


@FAST
@given(st.binary(max_size=60).map(lambda d: d.decode("utf-8", "surrogateescape")))
def test_str_round_trip(text: str) -> None:
    assert Bytes(text).str() == text
    assert bytes(Bytes(Bytes(text).str())) == bytes(Bytes(text))


@FAST
@given(st.binary(max_size=70))
def test_dump_lists_every_byte(data: bytes) -> None:
    lines = Bytes(data).dump().split("\n") if data else []
    assert len(lines) == (len(data) + 15) // 16
    for n, line in enumerate(lines):
        chunk = data[n * 16 : n * 16 + 16]
        assert int(line[:8], 16) == n * 16
        assert bytes.fromhex(line[9:61]) == chunk
        assert len(line) == 63 + len(chunk)
