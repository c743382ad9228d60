"""``python -m xsock_green``: the ``xsock`` command under another name."""

from __future__ import annotations

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m xsock_green"))
