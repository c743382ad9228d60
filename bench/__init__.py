"""xsock_green's benchmark harness (not part of the test suite).

Run it with ``python -m bench`` from the repository root; see ``run.py`` and
``docs/BENCHMARKS.md``.
"""
