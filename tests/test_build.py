"""Which build runs: the mypyc-compiled modules, or pure Python when asked.

``setup.py`` compiles ``xsock_green._compile.MODULES`` when it can;
``XSOCK_PURE_PYTHON=1`` makes the ``.py`` files load even where compiled
ones exist.  ``./run test`` runs the suite in both modes.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import socket
import subprocess
import sys

import pytest

import xsock_green
from xsock_green import _compile

PACKAGE = os.path.dirname(xsock_green.__file__)
#: What ``setup.py`` builds: the mypyc modules, then the C helper ``_kernel.c``.
EXTENSIONS = (*_compile.MODULES, "_kernel")


def built() -> list[str]:
    """The extension modules that are there for this Python."""
    return [
        name
        for name in EXTENSIONS
        if any(
            os.path.exists(os.path.join(PACKAGE, name + suffix))
            for suffix in importlib.machinery.EXTENSION_SUFFIXES
        )
    ]


def files_in(env: dict[str, str]) -> list[str]:
    """The files a fresh interpreter with ``env`` loads ``MODULES`` from."""
    code = (
        "import importlib, xsock_green, xsock_green._compile as c\n"
        "for m in c.MODULES: print(importlib.import_module('xsock_green.' + m).__file__)\n"
        "print(c.compiled())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[-1] == str(all(not f.endswith(".py") for f in out[:-1]))
    return out[:-1]


def test_all_or_none_of_the_modules_are_built() -> None:
    assert built() in ([], list(EXTENSIONS))


def test_the_compiled_build_is_there_when_expected() -> None:
    # CI sets XSOCK_EXPECT_COMPILED=1: a change that mypyc refuses must not
    # quietly turn the default build into pure Python.  `pip install -v -e .`
    # shows setup.py's reason ("xsock_green: ...").
    if os.environ.get("XSOCK_EXPECT_COMPILED", "") not in ("", "0"):
        assert built() == list(EXTENSIONS)


def test_the_compiled_build_parses_positional_calls_fast() -> None:
    # setup.py gives mypyc's wrappers of send/recv/sendto/recvfrom a fast
    # path for calls without keywords; a mypyc that writes its wrappers
    # differently leaves them slow, and CI should say so.  The helper's name
    # is in the library's symbol table (setuptools does not strip it).
    if os.environ.get("XSOCK_EXPECT_COMPILED", "") in ("", "0") or not _compile.compiled():
        pytest.skip("checked where the compiled build is expected and in use (CI)")
    library = sys.modules["xsock_green__mypyc"].__file__
    assert library is not None
    with open(library, "rb") as f:
        assert b"XSockArg_ParseVarKw" in f.read()


def test_this_run_uses_the_mode_it_was_asked_for() -> None:
    files = [importlib.import_module(f"xsock_green.{name}").__file__ for name in _compile.MODULES]
    from xsock_green import _hub

    if _compile.PURE_PYTHON or not built():
        assert all(f is not None and f.endswith(".py") for f in files), files
        assert not _compile.compiled()
        assert _hub.queued is _hub.fionread
    else:
        assert all(f is not None and not f.endswith(".py") for f in files), files
        assert _compile.compiled()
        assert _hub.queued.__module__ == "xsock_green._kernel"


def test_xsock_pure_python_forces_the_py_files() -> None:
    env = {k: v for k, v in os.environ.items() if k != "XSOCK_PURE_PYTHON"}
    pure = files_in({**env, "XSOCK_PURE_PYTHON": "1"})
    assert all(f.endswith(".py") for f in pure), pure
    default = files_in({**env, "XSOCK_PURE_PYTHON": "0"})
    assert all(f.endswith(".py") != bool(built()) for f in default), default


def test_setup_and_run_name_the_same_modules() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "setup.py"), encoding="utf-8") as f:
        setup_py = f.read()
    with open(os.path.join(root, "run"), encoding="utf-8") as f:
        run = f.read()
    quoted = ", ".join(f'"{name}"' for name in _compile.MODULES)
    assert f"MODULES = ({quoted})" in setup_py
    listed = " ".join(f"xsock_green/{name}.py" for name in _compile.MODULES)
    assert f'compiled="{listed} xsock_green/_kernel.c"' in run
    assert 'Extension("xsock_green._kernel", ["xsock_green/_kernel.c"])' in setup_py


def test_the_kernel_question_has_one_answer_in_c_and_in_python() -> None:
    # The compiled build asks ioctl(FIONREAD) through _kernel.c, the pure one
    # through fcntl: the same answers, including "the kernel will not say".
    try:
        from xsock_green import _kernel
    except ImportError:
        pytest.skip("the C helper is not built (a pure-Python install)")
    from xsock_green._hub import fionread

    a, b = socket.socketpair()
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        seen = []
        for sent, taken in ((0, 0), (1, 0), (1000, 0), (0, 600)):
            b.sendall(b"x" * sent)
            if taken:
                a.recv(taken)
            seen.append((_kernel.queued(a.fileno()), fionread(a.fileno())))
        assert seen == [(0, 0), (1, 1), (1001, 1001), (401, 401)]
        # A listening TCP socket has no receive queue: EINVAL, so 1 (read and see).
        assert _kernel.queued(listener.fileno()) == fionread(listener.fileno()) == 1
        with pytest.raises(TypeError):
            _kernel.queued("3")  # type: ignore[arg-type]
    finally:
        for s in (a, b, listener):
            s.close()


def test_the_two_builds_share_one_type_tree() -> None:
    # Socket (never compiled) subclasses Core (compiled): either way it is one class tree.
    from xsock_green._core import Core

    assert issubclass(xsock_green.Socket, Core)
    assert xsock_green.Socket.__weakrefoffset__ != 0  # weakref.ref(sock) works
