"""xmake's socket constants, and the OS values they stand for."""

from __future__ import annotations

import _socket
from typing import Final

TCP: Final = 1
UDP: Final = 2
ICMP: Final = 3

IPV4: Final = 1
IPV6: Final = 2
UNIX: Final = 3

EV_RECV: Final = 1
EV_SEND: Final = 2
EV_CONN: Final = EV_SEND
EV_ACPT: Final = EV_RECV

CTRL_SET_BLOCK: Final = 0
CTRL_GET_BLOCK: Final = 1
CTRL_SET_RECVBUFF: Final = 2
CTRL_GET_RECVBUFF: Final = 3
CTRL_SET_SENDBUFF: Final = 4
CTRL_GET_SENDBUFF: Final = 5
CTRL_SET_TCP_NODELAY: Final = 6
CTRL_GET_TCP_NODELAY: Final = 7
CTRL_SET_TCP_KEEPINTVL: Final = 8
CTRL_SET_KEEPALIVE: Final = 9
CTRL_SET_NOSIGPIPE: Final = 10

_AF = {IPV4: _socket.AF_INET, IPV6: _socket.AF_INET6, UNIX: _socket.AF_UNIX}
_SOCK_TYPES = {TCP: _socket.SOCK_STREAM, UDP: _socket.SOCK_DGRAM, ICMP: _socket.SOCK_DGRAM}
_TYPE_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp"}
_FAMILY_DIGIT = {IPV4: "4", IPV6: "6"}
#: sun_path holds 108 bytes including the final NUL.
UNIX_PATH_MAX = 107
INT_MAX = 2**31 - 1

_TCP_OPT = _socket.IPPROTO_TCP
_SOL = _socket.SOL_SOCKET
#: The ctrl codes that read an option, and the options each code sets.
CTRL_GETS: dict[int, tuple[int, int]] = {
    CTRL_GET_BLOCK: (0, 0),
    CTRL_GET_RECVBUFF: (_SOL, _socket.SO_RCVBUF),
    CTRL_GET_SENDBUFF: (_SOL, _socket.SO_SNDBUF),
    CTRL_GET_TCP_NODELAY: (_TCP_OPT, _socket.TCP_NODELAY),
}
CTRL_SETS: dict[int, tuple[int, int]] = {
    CTRL_SET_RECVBUFF: (_SOL, _socket.SO_RCVBUF),
    CTRL_SET_SENDBUFF: (_SOL, _socket.SO_SNDBUF),
    CTRL_SET_KEEPALIVE: (_SOL, _socket.SO_KEEPALIVE),
    CTRL_SET_TCP_NODELAY: (_TCP_OPT, _socket.TCP_NODELAY),
    CTRL_SET_TCP_KEEPINTVL: (_TCP_OPT, _socket.TCP_KEEPINTVL),
}
CTRL_FLAGS = frozenset(
    {CTRL_SET_BLOCK, CTRL_SET_TCP_NODELAY, CTRL_SET_KEEPALIVE, CTRL_SET_NOSIGPIPE}
)
