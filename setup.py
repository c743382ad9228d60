"""Build: mypyc compiles the request path when it can; pure Python otherwise.

The metadata is in setup.cfg.  This file only adds the extension modules:
``xsock_green._compile.MODULES`` (the transfer core, the hub door, options
and arguments), compiled by mypyc from the same strict-typed ``.py`` files,
which are installed too.  When mypy/mypyc is missing, when it refuses the
code, or when no C compiler works, the install goes on without them and
the package runs as pure Python: the build never fails for want of the
compiled modules.  ``XSOCK_PURE_PYTHON=1`` at build time skips compiling;
at run time it makes an installed build import the ``.py`` files.
"""

from __future__ import annotations

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

MODULES = ("_args", "_core", "_hub", "_options", "_transfer")  # as xsock_green._compile.MODULES


def _say(message: str) -> None:
    print(f"xsock_green: {message}", file=sys.stderr)


def ext_modules() -> list[object]:
    if os.environ.get("XSOCK_PURE_PYTHON", "") not in ("", "0"):
        _say("XSOCK_PURE_PYTHON is set: pure Python build")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as exc:
        _say(f"mypyc is not available ({exc}): pure Python build")
        return []
    paths = [os.path.join("xsock_green", name + ".py") for name in MODULES]
    try:
        extensions = mypycify(paths, opt_level="3", group_name="xsock_green")
    except (Exception, SystemExit) as exc:  # mypy's errors end in SystemExit
        _say(f"mypyc could not compile the modules ({exc!r}): pure Python build")
        return []
    return list(extensions)


class BuildAllOrNone(build_ext):
    """Build every compiled module or none: a compiler that fails (or is
    missing) leaves the pure-Python package, never half of the modules."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # CompileError, LinkError, no compiler at all
            _say(f"the C build failed ({exc}): pure Python build")
            for extension in self.extensions:
                for inplace in (0, 1):
                    self.inplace = inplace
                    path = self.get_ext_fullpath(extension.name)
                    if os.path.exists(path):
                        os.remove(path)
            self.inplace = 0
            self.extensions = []


setup(ext_modules=ext_modules(), cmdclass={"build_ext": BuildAllOrNone})
