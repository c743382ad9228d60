"""xsock_green: xmake's socket and bytes modules for Python, on gevent's hub.

Inside a greenlet a call that must wait yields to other greenlets; from plain
code it simply blocks.  Importing this package never monkey-patches.

    from xsock_green import socket, Bytes
"""

from __future__ import annotations

# First: XSOCK_PURE_PYTHON=1 must take effect before a compiled module loads.
from . import _compile  # noqa: F401  # isort: skip
from . import poller, scheduler, server, socket
from ._bytes import Bytes
from ._errors import BusyError, HubWaitError, SocketError, TimeoutError, WrongThreadError
from ._reader import Reader
from ._socket import Socket
from ._version import __version__

#: xmake's spelling, for line-by-line ports of ``import("core.base.bytes")``.
bytes = Bytes

__all__ = [
    "BusyError",
    "Bytes",
    "HubWaitError",
    "Reader",
    "Socket",
    "SocketError",
    "TimeoutError",
    "WrongThreadError",
    "__version__",
    "poller",
    "scheduler",
    "server",
    "socket",
]
