"""Imports every health check module, so :data:`RULES` holds them all (in code order).

:data:`RULES` is the registry itself (sorted by code once dbopt's own checks
are in), so a check a user registers later with
:func:`~dbopt.health.base.register_check` is run by :func:`~dbopt.health.health` too.
"""

from __future__ import annotations

from dbopt.health import activity, bloat, partitions, storage, workload
from dbopt.health.base import RULES

__all__ = ["RULES", "activity", "bloat", "partitions", "storage", "workload"]

_ordered = sorted(RULES.items())
RULES.clear()
RULES.update(_ordered)
