"""Build: mypyc compiles the request path when it can; pure Python otherwise.

The metadata is in setup.cfg.  This file only adds the extension modules:
``xsock_green._compile.MODULES`` (the transfer core, the hub door, options
and arguments), compiled by mypyc from the same strict-typed ``.py`` files,
which are installed too, and ``xsock_green/_kernel.c``, a few lines of C
that the compiled build calls instead of ``fcntl.ioctl``.  When mypy/mypyc
is missing, when it refuses the code, or when no C compiler works, the
install goes on without them and the package runs as pure Python: the
build never fails for want of the compiled modules.
``XSOCK_PURE_PYTHON=1`` at build time skips compiling; at run time it
makes an installed build import the ``.py`` files.
"""

from __future__ import annotations

import ast
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# As xsock_green._compile.MODULES (tests/test_build.py holds the two equal).
MODULES = ("_args", "_core", "_hub", "_options", "_storage", "_transfer")


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
    sources = [s for extension in extensions for s in extension.sources if s.endswith(".c")]
    for source in sources:
        keep_docstrings(source, paths)
    if not [source for source in sources if fast_positional_calls(source)]:
        _say("no **kw argument parsing found to speed up: left as mypyc wrote it")
    if not [source for source in sources if release_types(source)]:
        _say("no deallocator found that keeps its type: left as mypyc wrote them")
    # The one hand-written C module: what the core asks the kernel (see its
    # header comment); the compiled _hub uses it, the pure build does not.
    return [*extensions, Extension("xsock_green._kernel", ["xsock_green/_kernel.c"])]


def _c_text(text: str) -> str:
    """``text`` as the inside of a C string literal (octal escapes, so never ambiguous)."""
    return "".join(
        chr(b) if 32 <= b < 127 and chr(b) not in '\\"?' else f"\\{b:03o}"
        for b in text.encode("utf-8")
    )


def keep_docstrings(c_file: str, paths: list[str]) -> None:
    """Put the public methods' and properties' docstrings into the generated
    C: mypyc keeps only the signatures, and ``help(sock.send)`` should say
    what it does.

    Each class's methods are in one table, ``<module>___<Class>_methods``,
    its properties in ``<module>___<Class>_getseters``;
    ``tests/test_public_api.py`` checks that ``Socket``'s have their text.
    """
    with open(c_file, encoding="utf-8") as f:
        code = f.read()
    for path in paths:
        module = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for cls in (node for node in tree.body if isinstance(node, ast.ClassDef)):
            for method in (node for node in cls.body if isinstance(node, ast.FunctionDef)):
                doc = ast.get_docstring(method)
                if doc is None or method.name.startswith("_"):
                    continue
                prop = any(getattr(d, "id", None) == "property" for d in method.decorator_list)
                if prop:
                    # {"name", (getter)..., (setter)... or NULL, <doc>, NULL}
                    table = f" {module}___{cls.name}_getseters[] = {{"
                    entry = (
                        rf'(\{{"{method.name}",\s*\(getter\)\w+,\s*(?:\(setter\)\w+|NULL),\s*)NULL'
                    )
                else:
                    # PyDoc_STR("send($self, data, ...)\\n--\\n\\n<docstring>")
                    table = f" {module}___{cls.name}_methods[] = {{"
                    entry = (
                        rf'(PyDoc_STR\("{method.name}\(\$self[^"]*?\\n--\\n\\n)(?:[^"\\]|\\.)*"\)'
                    )
                code = _patch(code, table, entry, doc, prop)
    with open(c_file, "w", encoding="utf-8") as f:
        f.write(code)


def _patch(code: str, table: str, entry: str, doc: str, prop: bool) -> str:
    """Write ``doc`` after the first match of ``entry`` inside the C table ``table``."""
    start = code.find(table)
    if start < 0:
        return code
    end = code.index("};", start)
    text = f'"{_c_text(doc)}"' if prop else f'{_c_text(doc)}")'
    found = re.compile(entry).search(code, start, end)
    if found is None:
        return code
    return code[: found.start()] + found.group(1) + text + code[found.end() :]


# mypyc parses the arguments of a function with ``**kw`` (``send``, ``recv``,
# ``sendto``, ``recvfrom``) with its general parser: it walks the format
# string for every parameter and makes a new dict for ``**kw`` even when the
# call names no argument.  That is about 410 instructions per call
# (callgrind, TCP echo: 10,888 per request before, 10,065 after), where
# mypyc's parsers for other signatures take a positional call in a few.
# ``XSockArg_ParseVarKw`` gives those four wrappers (and no other) that fast
# path, and hands every other call to the general parser, so results and
# errors stay mypyc's own.  It goes where the generated C includes mypyc's
# parser, whose macros and general function it uses; when a mypyc version
# writes either differently, the build leaves the calls as they are:
# slower, and just as correct.
_PARSER_INCLUDE = "#include <getargsfast.c>\n"
# The wrappers of exactly these methods (and their glue for Python
# subclasses): their parser's format, then (declarations only) the call.
_VARKW_CALL = re.compile(
    r'(static CPyArg_Parser parser = \{"%[^"]*:(?:send|recv|sendto|recvfrom)(?:__\w+_glue)?", '
    r"kwlist, 0\};[^{}]*?)CPyArg_ParseStackAndKeywords"
    r"(\(args, nargs, kwnames, &parser, NULL, &obj_kw, )"
)
_VARKW_FAST = r"""
/* xsock_green's setup.py: mypyc's parser for a signature with **kw and no
 * *args, with a fast path for a call that names no argument.  Its **kw is
 * one empty dict shared by all such calls: the methods only test it and
 * pass it to options(), which neither changes nor keeps it. */
static PyObject *xsock_no_keywords = NULL;

static int
XSockArg_ParseVarKw(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                    CPyArg_Parser *parser, ...)
{
    int ok;
    va_list va;
    va_start(va, parser);
    if (kwnames == NULL && PARSER_INITED(parser) && parser->varargs &&
            !parser->has_required_kws && nargs >= parser->min && nargs <= parser->max) {
        PyObject **kw;
        Py_ssize_t i;
        (void)va_arg(va, PyObject **);  /* *args: NULL in these signatures */
        kw = va_arg(va, PyObject **);
        for (i = 0; i < nargs; i++) {
            *va_arg(va, PyObject **) = args[i];
        }
        if (xsock_no_keywords == NULL) {
            xsock_no_keywords = PyDict_New();
        }
        ok = xsock_no_keywords != NULL;
        if (ok) {
            Py_INCREF(xsock_no_keywords);
            *kw = xsock_no_keywords;
        }
    } else {
        ok = vgetargskeywordsfast_impl(args, nargs, NULL, kwnames, parser, &va);
    }
    va_end(va);
    return ok;
}
"""


def fast_positional_calls(c_file: str) -> bool:
    """Give the ``**kw`` wrappers in ``c_file`` a fast path for positional
    calls; False when it has none (or not where this expects them)."""
    with open(c_file, encoding="utf-8") as f:
        code = f.read()
    if _PARSER_INCLUDE not in code:
        return False
    code, found = _VARKW_CALL.subn(r"\1XSockArg_ParseVarKw\2", code)
    if not found:
        return False
    code = code.replace(_PARSER_INCLUDE, _PARSER_INCLUDE + _VARKW_FAST, 1)
    with open(c_file, "w", encoding="utf-8") as f:
        f.write(code)
    return True


# mypyc's classes are heap types: every instance owns a reference to its
# class (``tp_alloc`` takes it), and CPython's rule is that the class's
# deallocator gives it back.  mypyc's frees the memory and keeps the
# reference, so each ``Bytes`` or ``Socket`` ever made left one more on its
# class (CPython does not drop it either: for a subclass of a heap type it
# leaves that to the base's deallocator), and a subclass defined at run time
# was never freed.  The patch drops it right after the memory is freed.  It
# matches mypyc's exact line: a mypyc that fixes this writes the line
# differently, and the build then leaves it alone instead of dropping twice.
_FREE = re.compile(r"Py_TYPE\(self\)->tp_free\(\(PyObject \*\)self\);(\s*CPy_TRASHCAN_END\(self\))")
_FREE_AND_RELEASE = (
    "{ PyTypeObject *xsock_type = Py_TYPE(self);"
    " xsock_type->tp_free((PyObject *)self); Py_DECREF(xsock_type); }\\1"
)


def release_types(c_file: str) -> bool:
    """Make the deallocators in ``c_file`` give back their instance's
    reference to its class; False when it has none written as expected."""
    with open(c_file, encoding="utf-8") as f:
        code, found = _FREE.subn(_FREE_AND_RELEASE, f.read())
    if found:
        with open(c_file, "w", encoding="utf-8") as f:
            f.write(code)
    return found > 0


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
