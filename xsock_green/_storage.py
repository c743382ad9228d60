"""The storage of ``Bytes``: one memoryview, in a class the build compiles.

``Bytes`` (``_bytes.py``, interpreted: its constructor and error messages are
Python's) subclasses ``Storage``.  Compiled (``setup.py``), ``Storage`` keeps
``_mv`` in the object's C struct, so the transfer core's modules read and
write it as a field, where an attribute of an interpreted class costs them
a lookup through the type (three per request: the receive target, the data
sent, the view a receive returns).  ``Bytes``' own methods reach it through
the descriptor the class provides, as they reached the slot before.
"""

from __future__ import annotations

from typing import Final

from ._compile import mypyc_attr

__all__ = ["Storage", "blank"]


@mypyc_attr(allow_interpreted_subclasses=True)
class Storage:
    """What every ``Bytes`` holds; not made directly (``Bytes`` is the class to use)."""

    __slots__ = ("_last", "_mv")

    #: 1-D, format 'B', exactly the buffer's bytes; its readonly flag is the buffer's.
    _mv: memoryview
    #: The view of this buffer's first bytes that a receive returned last, or
    #: ``None``: the next receive of as many bytes into the whole buffer
    #: returns it again instead of a new one (``_args.received``).  Every
    #: constructor sets it.
    _last: Storage | None


#: ``blank(Bytes)``: a ``Bytes`` whose fields are not set yet, without ``__init__``.
blank: Final = Storage.__new__
