"""Health report: ``health(engine) -> HealthReport`` with ok / warn / critical per check.

Checks (by code): HEALTH001 cache hit ratio, HEALTH002 index hit ratio,
HEALTH003 connections, HEALTH004 idle in transaction, HEALTH005 long-running
queries, HEALTH006 blocked queries, HEALTH007 VACUUM needed, HEALTH008
ANALYZE needed, HEALTH009 table bloat, HEALTH010 index bloat, HEALTH011
transaction ID wraparound, HEALTH012 sequences, HEALTH013 top statements
(pg_stat_statements), HEALTH014 replication lag, HEALTH015 replication slots,
HEALTH016 partitions. HealthThresholds are in :class:`HealthThresholds`.
"""

from __future__ import annotations

from dbopt.health.checks import RULES
from dbopt.health.model import CheckResult, HealthReport, HealthStatus, HealthThresholds
from dbopt.health.runner import health

__all__ = ["RULES", "CheckResult", "HealthReport", "HealthStatus", "HealthThresholds", "health"]
