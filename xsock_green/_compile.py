"""The compiled build: which modules mypyc compiles, and how to run without them.

``setup.py`` compiles ``MODULES`` with mypyc when it can, into extension
modules beside their ``.py`` files, which Python then imports instead.  Set
``XSOCK_PURE_PYTHON=1`` (any value but empty or ``0``) to import the
``.py`` files even where the compiled ones exist, as gevent's
``PURE_PYTHON`` does; the package's ``__init__`` imports this module first,
so the variable must be set before ``xsock_green`` is imported.

This module is never compiled, and neither build needs ``mypy_extensions``
at run time: mypy (and so mypyc) sees the real ``mypyc_attr``, the program
a no-op in its place.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib.machinery import ModuleSpec
from typing import TYPE_CHECKING

__all__ = ["MODULES", "PURE_PYTHON", "compiled", "mypyc_attr"]

#: The modules that ``setup.py`` compiles: the request path, and ``Bytes``' storage.
MODULES = ("_args", "_core", "_hub", "_options", "_storage", "_transfer")

#: True when ``XSOCK_PURE_PYTHON`` asks for the ``.py`` modules.
PURE_PYTHON = os.environ.get("XSOCK_PURE_PYTHON", "") not in ("", "0")

_HERE = os.path.dirname(os.path.abspath(__file__))

if TYPE_CHECKING:
    from mypy_extensions import mypyc_attr
else:

    def mypyc_attr(*attrs, **kwattrs):
        return lambda cls: cls


class _PureFinder:
    """Finds ``MODULES`` as their ``.py`` files, ahead of any compiled module."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        package, _, name = fullname.rpartition(".")
        if package != __package__ or name not in MODULES:
            return None
        return importlib.util.spec_from_file_location(fullname, os.path.join(_HERE, name + ".py"))


def compiled() -> bool:
    """True when the compiled modules are the ones in use."""
    return all(
        not getattr(sys.modules.get(f"{__package__}.{name}"), "__file__", ".py").endswith(".py")
        for name in MODULES
    )


if PURE_PYTHON and not any(isinstance(f, _PureFinder) for f in sys.meta_path):
    sys.meta_path.insert(0, _PureFinder())
