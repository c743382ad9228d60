"""The README's quick start runs as written and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")


def test_quick_start_runs() -> None:
    with open(README, encoding="utf-8") as f:
        text = f.read()
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", text, re.S)
    assert block is not None, "README has no quick start block"
    out = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert out.stdout == "13 hello world..\n"
    assert out.stderr == ""
