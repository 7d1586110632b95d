"""Health checks: the registry, what a check gets to run, and small helpers."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbopt.findings import Finding, Severity, register_codes
from dbopt.health.model import CheckResult, HealthStatus, HealthThresholds

__all__ = ["RULES", "Context", "HealthCheck", "level", "register_check", "register_checks"]


@dataclass
class Context:
    """What every check gets: the connection, the server version and the thresholds."""

    conn: psycopg.Connection[dict[str, Any]]
    version: int
    database: str
    thresholds: HealthThresholds
    schemas: Sequence[str] = ()
    _settings: dict[str, str] = field(default_factory=dict, repr=False)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """All rows of ``sql`` (each a dict)."""
        return self.conn.execute(sql, params or {}).fetchall()

    def setting(self, name: str) -> str | None:
        """A server setting (``pg_settings.setting``; read once per report)."""
        if not self._settings:
            rows = self.conn.execute("SELECT name, setting FROM pg_settings").fetchall()
            self._settings = {r["name"]: r["setting"] for r in rows}
        return self._settings.get(name)


Run = Callable[["HealthCheck", Context], CheckResult]


@dataclass(frozen=True)
class HealthCheck:
    """A registered check; it doubles as the rule description SARIF shows for its code."""

    code: str
    name: str
    summary: str
    why: str
    run: Run = field(repr=False, compare=False)
    severity: Severity = Severity.WARNING

    def result(
        self,
        status: HealthStatus,
        summary: str,
        *,
        value: float | None = None,
        unit: str = "",
        threshold: str = "",
        details: list[dict[str, Any]] | None = None,
        findings: list[Finding] | None = None,
    ) -> CheckResult:
        """A :class:`CheckResult` of this check."""
        return CheckResult(
            code=self.code,
            name=self.name,
            status=status,
            summary=summary,
            value=value,
            unit=unit,
            threshold=threshold,
            details=details or [],
            findings=findings or [],
        )

    def counted(
        self,
        statuses: Sequence[HealthStatus],
        summary: str,
        details: list[dict[str, Any]],
        findings: list[Finding],
        *,
        unit: str,
        threshold: str,
    ) -> CheckResult:
        """The result of a check that counts objects: the worst status, ``len(details)``."""
        return self.result(
            worst(statuses),
            summary,
            value=float(len(details)),
            unit=unit,
            threshold=threshold,
            details=details,
            findings=findings,
        )

    def finding(
        self, status: HealthStatus, obj: str, message: str, fix: str | None = None, **meta: Any
    ) -> Finding:
        """A finding for a warn (warning) or critical (error) problem."""
        severity = Severity.ERROR if status is HealthStatus.CRITICAL else Severity.WARNING
        return Finding(
            code=self.code,
            severity=severity,
            object=obj,
            message=message,
            why=self.why,
            fix=fix,
            metadata={"rule": self.name, "status": status.value, **meta},
        )


#: Every health check by code, in report order.
RULES: dict[str, HealthCheck] = {}


def register_checks(*checks: HealthCheck) -> None:
    """Add ``checks`` to :data:`RULES` (each check module ends with one table of its checks)."""
    register_codes(RULES, checks, "health check")


def register_check(code: str, name: str, summary: str, why: str) -> Callable[[Run], Run]:
    """Register the decorated function as health check ``code`` (dbopt's own checks are
    registered by the tables at the end of their modules)."""

    def register(run: Run) -> Run:
        register_checks(HealthCheck(code, name, summary, why, run))
        return run

    return register


def health_check(code: str, name: str, summary: str, why: str) -> Callable[[Run], Run]:
    """Deprecated name of :func:`register_check` (``dbopt.health_check`` is the pool probe's)."""
    warnings.warn(
        "dbopt.health.base.health_check is now register_check",
        DeprecationWarning,
        stacklevel=2,
    )
    return register_check(code, name, summary, why)


def database_ratio(
    check: HealthCheck,
    ctx: Context,
    status: HealthStatus,
    summary: str,
    fix: str,
    *,
    value: float,
    threshold: str,
    details: list[dict[str, Any]],
    **meta: Any,
) -> CheckResult:
    """The result of a check that measures one ratio for the whole database.

    Unless ``status`` is ok it carries one finding on the database, with
    ``summary`` as its message, ``fix`` and ``meta``.
    """
    findings = []
    if status is not HealthStatus.OK:
        findings.append(check.finding(status, ctx.database, summary, fix, **meta))
    return check.result(
        status,
        summary,
        value=value,
        unit="ratio",
        threshold=threshold,
        details=details,
        findings=findings,
    )


def level(value: float, warn: float, critical: float, *, above: bool = True) -> HealthStatus:
    """``critical``, ``warn`` or ``ok`` for ``value``; ``above``: higher values are worse."""
    if above:
        if value >= critical:
            return HealthStatus.CRITICAL
        return HealthStatus.WARN if value >= warn else HealthStatus.OK
    if value < critical:
        return HealthStatus.CRITICAL
    return HealthStatus.WARN if value < warn else HealthStatus.OK


def worst(statuses: Sequence[HealthStatus]) -> HealthStatus:
    """The worst of ``statuses`` (ok when empty)."""
    return max(statuses, key=lambda s: s.rank, default=HealthStatus.OK)
