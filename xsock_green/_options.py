"""xmake option tables, validated against one schema.

xmake passes options as a Lua table; Python callers may pass the same table
as a ``dict`` or as keyword arguments.  Every key of every call is described
once in ``_SCHEMA``; each call names the keys it accepts.  Validation raises
``TypeError`` for an unknown key (with a suggestion) or a value of the wrong
type, and ``ValueError`` for an impossible value.  The result is a plain dict
that the caller reads with ``.get(key, default)``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Final, cast

__all__ = ["BLOCK", "EMPTY", "check_int", "check_port", "check_timeout", "options"]

Options = Mapping[str, Any]

#: What ``options`` returns for no options and for xmake's ``{block = true}``:
#: the transfer core recognises them by identity and reads nothing from them.
EMPTY: Final[Options] = {}
BLOCK: Final[Options] = {"block": True}


def _bool(key: str, value: object) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"option {key!r} must be a bool, not {type(value).__name__}")


def check_int(key: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``[low, high]``; raise otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{key!r} must be an int, not {type(value).__name__}")
    if value < low or (high is not None and value > high):
        bound = f"{low}..{high}" if high is not None else f">= {low}"
        raise ValueError(f"{key!r} must be {bound}, got {value}")
    return value


def check_timeout(key: str, value: object) -> float:
    """Validate a timeout in milliseconds: ``-1`` (no limit) or ``>= 0``."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{key!r} must be milliseconds (int or float), not {type(value).__name__}")
    if value != -1 and not value >= 0:  # also refuses NaN
        raise ValueError(f"{key!r} must be -1 (no limit) or >= 0 milliseconds, got {value}")
    return value


def check_port(value: object) -> int:
    """Validate a port number."""
    return check_int("port", value, 0, 65535)


def _tls(key: str, value: object) -> None:
    import ssl

    if not isinstance(value, (bool, ssl.SSLContext)):
        raise TypeError(
            f"option {key!r} must be True or an ssl.SSLContext, not {type(value).__name__}"
        )


def _str(key: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"option {key!r} must be a str, not {type(value).__name__}")


def _family(key: str, value: object) -> None:
    check_int(key, value, 1, 3)


def _position(key: str, value: object) -> None:
    check_int(key, value, 1)


def _limit(key: str, value: object) -> None:
    """A count limit: ``-1`` (no limit) or ``>= 1``."""
    if check_int(key, value, -1) == 0:
        raise ValueError(f"{key!r} must be -1 (no limit) or >= 1, got 0")


def _callable(key: str, value: object) -> None:
    if not callable(value):
        raise TypeError(f"option {key!r} must be callable, not {type(value).__name__}")


_SCHEMA: Final[dict[str, Callable[[str, object], object]]] = {
    "block": _bool,
    "waitall": _bool,
    "is_abstract": _bool,
    "reuseport": _bool,
    "timeout": check_timeout,
    "start": _position,
    "last": lambda key, value: check_int(key, value, 0),
    "family": _family,
    "tls": _tls,
    "server_hostname": _str,
    "server_side": _bool,
    # xsock_green.server
    "backlog": lambda key, value: check_int(key, value, 0),
    "max_conns": _limit,
    "nodelay": _bool,
    "stop_timeout": check_timeout,
    "handshake_timeout": check_timeout,
    "proxy_protocol": _bool,
    "workers": lambda key, value: check_int(key, value, 1),
    "ready": _callable,
}


_BOOL_KEYS: Final = frozenset(key for key, check in _SCHEMA.items() if check is _bool)


def options(
    where: str,
    allowed: frozenset[str],
    opt: Options | None,
    kw: Options,
    blocks: bool = False,
) -> Options:
    """Merge and validate an option table and keyword options for ``where``.

    Returns the validated mapping (the caller's own dict when it needs no
    merging, so the common call costs no copy).  A literal table of flags
    such as ``{"block": True}`` takes the first branch of each test.
    ``blocks`` says that ``allowed`` has ``block`` (the data methods say so,
    which spares their every call a set lookup).
    """
    if type(opt) is dict and not kw:  # the common call: one literal table
        table = cast(dict[str, Any], opt)
        if len(table) == 1 and table.get("block") is True and (blocks or "block" in allowed):
            return BLOCK  # xmake's {block = true}, the table of nearly every call
        merged: Options = table
    elif opt is None:
        merged = kw
    elif not isinstance(opt, Mapping):
        raise TypeError(f"{where}: options must be a dict, not {type(opt).__name__}")
    elif kw:
        both = opt.keys() & kw.keys()
        if both:
            raise TypeError(
                f"{where}: option {sorted(both)[0]!r} given both in the table and as a keyword"
            )
        merged = {**opt, **kw}
    else:
        merged = opt
    # Keys typed as objects: compiled, a ``str`` key would be checked on
    # unpacking, with mypyc's message instead of the one below.
    for key, value in cast(Mapping[object, Any], merged).items():
        if (value is True or value is False) and key in allowed and key in _BOOL_KEYS:
            continue
        if key not in allowed:
            if not isinstance(key, str):
                raise TypeError(f"{where}: option names are strings, not {type(key).__name__}")
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            accepted = ", ".join(sorted(allowed)) or "none"
            raise TypeError(f"{where}: unknown option {key!r}{hint} (accepted: {accepted})")
        _SCHEMA[key](key, value)
    return merged
