"""What the linter knows about a database: the shared snapshot of :mod:`dbopt.postgres.catalog`.

This module only re-exports that one, under the name lint's rules import.
"""

from __future__ import annotations

from dbopt.postgres import catalog as _catalog
from dbopt.postgres.catalog import *  # noqa: F403

__all__ = _catalog.__all__
