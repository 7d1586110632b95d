"""The demo behind ``dbopt demo``: everything dbopt does, on a learning platform.

With no ``--dsn`` it starts an embedded PostgreSQL (pgserver, the
``[embedded]`` extra) in a temporary directory; with ``--dsn`` it creates
and drops its own database on that server. See docs/demo.md.
"""

from __future__ import annotations

from dbopt.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
