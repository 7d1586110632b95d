"""The health report's data: statuses, thresholds, one result per check, the report."""

from __future__ import annotations

import enum
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, overload

from dbopt._console import table
from dbopt.core.params import jsonable
from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, FindingsReport
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["CheckResult", "HealthReport", "HealthStatus", "HealthThresholds"]


class HealthStatus(str, enum.Enum):
    """A check's outcome: ``ok < warn < critical``; ``skipped`` (does not apply) and
    ``unknown`` (the check could not run) are outside that order."""

    OK = "ok"
    WARN = "warn"
    CRITICAL = "critical"
    SKIPPED = "skipped"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """0 ok/skipped, 1 unknown, 2 warn, 3 critical: how loudly to report it."""
        return {"ok": 0, "skipped": 0, "unknown": 1, "warn": 2, "critical": 3}[self.value]

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class HealthThresholds:
    """Where each check turns ``warn`` and ``critical``. Ratios are 0..1, times in seconds.

    A check is ``warn`` from its warn value on and ``critical`` from its critical one
    (the hit ratios: below them).

    The defaults follow the seeds' targets (cache and index hit ratio above
    95 %, pool use below 80 %, slow statements above 100 ms) and PgHero's.
    """

    hit_ratio_warn: float = 0.95
    """HEALTH001 and HEALTH002 (cache and index hit ratio) warn below this share."""
    hit_ratio_critical: float = 0.90
    """HEALTH001 and HEALTH002 are critical below this share."""
    hit_ratio_min_blocks: int = 1000
    """Fewer block reads than this are too few to judge a hit ratio (it stays ok)."""
    connections_warn: float = 0.80
    """HEALTH003 warns when this share of the usable connections is in use."""
    connections_critical: float = 0.95
    """HEALTH003 is critical when this share of the usable connections is in use."""
    idle_in_transaction_warn_s: float = 60
    """HEALTH004 warns at a session idle inside a transaction this long."""
    idle_in_transaction_critical_s: float = 600
    """HEALTH004 is critical at a session idle inside a transaction this long."""
    long_query_warn_s: float = 60
    """HEALTH005 warns at a query running this long."""
    long_query_critical_s: float = 300
    """HEALTH005 is critical at a query running this long."""
    blocked_warn_s: float = 5
    """HEALTH006 warns at a query waiting this long for a lock."""
    blocked_critical_s: float = 60
    """HEALTH006 is critical at a query waiting this long for a lock."""
    vacuum_min_dead_rows: int = 1000
    """HEALTH007 passes over tables with fewer dead rows than this."""
    vacuum_critical_dead_ratio: float = 0.5
    """HEALTH007 is critical when dead rows are this share of the table's rows."""
    analyze_min_changes: int = 1000
    """HEALTH008 passes over tables with fewer rows changed since their last ANALYZE."""
    bloat_warn_ratio: float = 0.5
    """HEALTH009 and HEALTH010 (bloat) warn at this estimated share of wasted space."""
    bloat_critical_ratio: float = 0.8
    """HEALTH009 and HEALTH010 are critical at this estimated share of wasted space."""
    bloat_min_bytes: int = 10 * 1024 * 1024
    """HEALTH009 and HEALTH010 pass over tables and indexes that waste fewer bytes."""
    wraparound_warn: float = 0.5
    """HEALTH011 warns when a database's transaction ID age is this share of 2^31."""
    wraparound_critical: float = 0.75
    """HEALTH011 is critical when a database's transaction ID age is this share of 2^31."""
    sequence_warn: float = 0.75
    """HEALTH012 warns when a sequence (or its column) has used this share of its range."""
    sequence_critical: float = 0.9
    """HEALTH012 is critical when a sequence (or its column) has used this share."""
    slow_statement_ms: float = 100
    """HEALTH013 warns at statements whose mean time is at least this (milliseconds)."""
    slow_statement_min_calls: int = 10
    """HEALTH013 passes over statements with fewer calls than this."""
    top_statements: int = 10
    """How many statements (by total time) HEALTH013 reads and lists."""
    replication_lag_warn_s: float = 30
    """HEALTH014 warns at a replica (or this standby) this far behind."""
    replication_lag_critical_s: float = 300
    """HEALTH014 is critical at a replica (or this standby) this far behind."""
    slot_retained_critical_bytes: int = 10 * 1024**3
    """HEALTH015 is critical at a slot that retains this much WAL (an inactive slot warns)."""
    partitions_min_future: int = 2
    """HEALTH016 warns with fewer time partitions ahead of now than this."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0:
                raise ConfigurationError(f"threshold {f.name} must not be negative")
        pairs = [
            ("connections_warn", "connections_critical", 1),
            ("idle_in_transaction_warn_s", "idle_in_transaction_critical_s", 1),
            ("long_query_warn_s", "long_query_critical_s", 1),
            ("blocked_warn_s", "blocked_critical_s", 1),
            ("bloat_warn_ratio", "bloat_critical_ratio", 1),
            ("wraparound_warn", "wraparound_critical", 1),
            ("sequence_warn", "sequence_critical", 1),
            ("replication_lag_warn_s", "replication_lag_critical_s", 1),
            ("hit_ratio_critical", "hit_ratio_warn", 1),
        ]
        for low, high, _ in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ConfigurationError(f"threshold {low} must not exceed {high}")


@dataclass
class CheckResult:
    """One check's outcome: status, the measured value, a one-line summary, the rows behind it.

    ``findings`` holds one :class:`~dbopt.Finding` per problem (per table,
    session, sequence...) when the status is warn or critical.
    """

    code: str
    name: str
    status: HealthStatus
    summary: str
    value: float | None = None
    unit: str = ""
    threshold: str = ""
    details: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "code": self.code,
            "name": self.name,
            "status": self.status.value,
            "summary": self.summary,
            "value": self.value,
            "unit": self.unit,
            "threshold": self.threshold,
            "details": jsonable(self.details),
            "findings": [f.to_dict() for f in self.findings],
        }


class _CallableFindings(list[Finding]):
    """``HealthReport.findings``: a list that still answers the old ``findings()`` call."""

    def __call__(self, suppress: SuppressionsLike = None) -> list[Finding]:
        warnings.warn(
            "HealthReport.findings is an attribute now: use report.findings, and "
            "health(..., suppress=...) to drop findings",
            DeprecationWarning,
            stacklevel=2,
        )
        return Suppressions.coerce(suppress).split(list(self))[0]


@dataclass(eq=False)
class HealthReport(FindingsReport):
    """Every check's result; ``status`` is the worst of them.

    A :class:`~dbopt.findings.FindingsReport`: ``findings`` holds the
    findings of every warn and critical check (worst first) minus the
    ``suppressed`` ones, and ``errors`` maps each check that could not run
    (status ``unknown``) to why. ``report["name"]`` (a string) is the
    :class:`CheckResult` of that check; ``report[0]`` is a finding.
    """

    checks: list[CheckResult]
    database: str = ""
    server_version: int = 0
    taken_at: datetime | None = None
    duration_s: float = 0.0
    suppressed: list[Finding] = field(default_factory=list)

    @property
    def findings(self) -> list[Finding]:  # type: ignore[override]
        """Findings of every warn and critical check (worst first), minus the suppressed ones."""
        dropped = self.suppressed
        out = [f for c in self.checks for f in c.findings if f not in dropped]
        out.sort(key=lambda f: (-f.severity.rank, f.code, f.object))
        return _CallableFindings(out)

    @property
    def errors(self) -> dict[str, str]:  # type: ignore[override]
        """Checks that could not run (status ``unknown``), by code, with why."""
        return {c.code: c.summary for c in self.checks if c.status is HealthStatus.UNKNOWN}

    @property
    def status(self) -> HealthStatus:
        """The worst status among the checks (ok when all are ok or skipped)."""
        worst = max(self.checks, key=lambda c: c.status.rank, default=None)
        if worst is None or worst.status.rank == 0:
            return HealthStatus.OK
        return worst.status

    @overload
    def __getitem__(self, key: str) -> CheckResult: ...
    @overload
    def __getitem__(self, key: int) -> Finding: ...
    @overload
    def __getitem__(self, key: slice) -> Sequence[Finding]: ...
    def __getitem__(self, key: str | int | slice) -> CheckResult | Finding | Sequence[Finding]:
        """The check named ``key`` (or with code ``key``); an int or slice indexes findings."""
        if not isinstance(key, str):
            return self.findings[key]
        for check in self.checks:
            if key in (check.name, check.code):
                return check
        raise KeyError(key)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the shared report keys plus ``status``, ``checks`` and server facts."""
        return {
            **super().to_dict(),
            "status": self.status.value,
            "database": self.database,
            "server_version": self.server_version,
            "taken_at": self.taken_at.isoformat() if self.taken_at else None,
            "duration_s": round(self.duration_s, 4),
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_text(self, *, details: bool = True, limit: int = 10) -> str:
        """A table of checks, then up to ``limit`` detail rows of each non-ok check."""
        rows = [(c.status.value, c.name, c.summary) for c in self.checks]
        out = [
            f"health of {self.database} (server {self.server_version}): {self.status.value}",
            table(("status", "check", "summary"), rows),
        ]
        if details:
            for c in self.checks:
                if c.status.rank < 2 or not c.details:
                    continue
                keys = list(c.details[0])
                body = [[_short(d.get(k)) for k in keys] for d in c.details[:limit]]
                out.append(f"\n{c.name}:\n" + table(keys, body))
        return "\n".join(out)


def _short(value: Any, width: int = 60) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."
