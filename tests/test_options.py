"""Option tables: dict and keyword forms, unknown keys, bad values."""

from __future__ import annotations

import pytest

from xsock_green import Bytes, Socket, socket


def test_dict_and_keyword_forms_agree(tcp_pair: tuple[Socket, Socket]) -> None:
    client, server = tcp_pair
    assert client.send("abcdef", {"block": True, "start": 2, "last": 3}) == 2
    assert client.send("abcdef", block=True, start=2, last=3) == 2
    assert client.send("abcdef", {"block": True}, start=5) == 2
    got = server.recv(Bytes(6), 6, {"block": True, "waitall": True})
    assert got[1] == b"bcbcef"
    v4 = socket.tcp({"family": socket.IPV4})
    kw = socket.tcp(family=socket.IPV4)
    assert (v4.family(), v4.type()) == (kw.family(), kw.type()) == (socket.IPV4, socket.TCP)
    v4.close()
    kw.close()


def test_unknown_key_suggests(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    with pytest.raises(TypeError, match=r"unknown option 'blok'; did you mean 'block'\?"):
        client.send("x", {"blok": True})
    with pytest.raises(TypeError, match="unknown option 'timout'.*'timeout'"):
        client.recv(Bytes(4), 4, timout=5)
    with pytest.raises(TypeError, match="unknown option 'waitall'"):
        client.send("x", waitall=True)
    with pytest.raises(TypeError, match="unknown option"):
        socket.tcp({"famly": socket.IPV6})


def test_same_key_both_ways_raises(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    with pytest.raises(TypeError, match="'block' given both"):
        client.send("x", {"block": True}, block=False)


@pytest.mark.parametrize(
    ("opt", "exc", "words"),
    [
        ({"block": 1}, TypeError, "'block' must be a bool"),
        ({"timeout": "5"}, TypeError, "'timeout' must be milliseconds"),
        ({"timeout": -2}, ValueError, "'timeout' must be -1"),
        ({"timeout": float("nan")}, ValueError, "'timeout'"),
        ({"start": 0}, ValueError, "'start' must be >= 1"),
        ({"last": -1}, ValueError, "'last' must be >= 0"),
        ({"last": 99}, ValueError, "last \\(99\\) is beyond the data size"),
        ({"start": 3, "last": 1}, ValueError, "start \\(3\\) is past last"),
    ],
)
def test_bad_values(
    tcp_pair: tuple[Socket, Socket], opt: dict[str, object], exc: type[Exception], words: str
) -> None:
    client, server = tcp_pair
    with pytest.raises(exc, match=words):
        client.send("abc", opt)
    # Nothing was sent and the socket still works.
    assert server.recv(Bytes(4), 4) == (0, None)
    assert client.send("ok", {"block": True}) == 2


def test_options_must_be_a_dict(tcp_pair: tuple[Socket, Socket]) -> None:
    client, _ = tcp_pair
    with pytest.raises(TypeError, match="options must be a dict"):
        client.send("x", [("block", True)])  # type: ignore[arg-type]


def test_family_values() -> None:
    with pytest.raises(ValueError, match="'family' must be 1..3"):
        socket.udp({"family": 7})
    with pytest.raises(TypeError, match="'family' must be an int"):
        socket.tcp(family="ipv6")


def test_every_calling_form_of_the_data_methods(tcp_pair: tuple[Socket, Socket]) -> None:
    # The compiled build parses a call that names no argument on a fast path
    # of its own (setup.py): each positional form, and a call with too few or
    # too many, must behave as the general parser does.  Options named in
    # one call must never reach the next (that path shares one empty dict).
    client, server = tcp_pair
    assert client.send("abcdef", block=True, start=5) == 2
    assert client.send("abcdef") == 6
    assert client.send("abcdef", {"block": True}) == 6
    got = server.recv(Bytes(14), 14, block=True, waitall=True)
    assert got[1] == b"efabcdefabcdef"
    assert server.recv(Bytes(4)) == (0, None)
    assert server.recv(Bytes(4), 2) == (0, None)
    assert server.recv(Bytes(4), 2, None) == (0, None)
    with pytest.raises(TypeError, match="positional argument"):
        server.recv(Bytes(4), 2, None, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="positional argument"):
        client.send("x", None, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        client.send()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        server.recv()  # type: ignore[call-arg]

    a = socket.udp()
    b = socket.udp()
    try:
        assert b.bind("127.0.0.1", 0)
        port = b.sockname()[1]
        assert a.sendto("hi", "127.0.0.1", port, block=True) == 2
        heard = b.recvfrom(Bytes(8), 8, block=True)
        assert heard[0] == 2 and heard[1] == b"hi"
        assert a.sendto("hey", "127.0.0.1", port) == 3
        assert b.recvfrom(Bytes(8), {"block": True})[1] == b"hey"
        assert b.recvfrom(Bytes(8)) == (0, None, None, None)
        with pytest.raises(TypeError, match="positional argument"):
            a.sendto("x", "127.0.0.1", port, None, None)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            a.sendto("x", "127.0.0.1")  # type: ignore[call-arg]
    finally:
        a.close()
        b.close()


def test_block_table_is_refused_where_block_is_no_option() -> None:
    # The data methods' {"block": True} is recognised without asking their
    # key sets; every other call still asks, and refuses it.
    with pytest.raises(TypeError, match="unknown option 'block'"):
        socket.tcp({"block": True})
    with pytest.raises(TypeError, match="unknown option 'block'"):
        socket.bind("127.0.0.1", 0, {"block": True})
    with pytest.raises(TypeError, match="unknown option 'block'"):
        socket.connect_unix("/nonexistent/x.sock", {"block": True})


def test_option_names_must_be_strings(tcp_pair: tuple[Socket, Socket]) -> None:
    # The same message in both builds (compiled code once checked the key's
    # type on unpacking, with a message of its own).
    client, _ = tcp_pair
    with pytest.raises(TypeError, match="send: option names are strings, not bool"):
        client.send("x", {True: True})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="recv: option names are strings, not int"):
        client.recv(Bytes(4), 4, {"block": True, 1: 2})  # type: ignore[dict-item]
