"""Imports every health check module, so :data:`RULES` holds them all (in code order)."""

from __future__ import annotations

from dbopt.health import activity, bloat, partitions, storage, workload
from dbopt.health.base import RULES as _REGISTERED

__all__ = ["RULES", "activity", "bloat", "partitions", "storage", "workload"]

#: Every health check by code, sorted by code.
RULES = dict(sorted(_REGISTERED.items()))
