"""``lint()``: run the rules over one catalog snapshot and collect their findings."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dbopt.lint.rules  # noqa: F401  (registers the rules)
from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, FindingsReport
from dbopt.lint.base import RULES, LintConfig, Rule
from dbopt.lint.samples import load_extra
from dbopt.postgres import catalog as catalog_mod
from dbopt.postgres.connect import Target, map_driver_errors, read_only_connection
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["LintReport", "lint", "select_rules"]


@dataclass(eq=False)
class LintReport(FindingsReport):
    """What :func:`lint` found: findings (worst first), suppressed ones, and rules that failed.

    A :class:`~dbopt.findings.FindingsReport`: iterating yields the kept
    findings. ``errors`` maps a rule code (or a catalog query) to why it
    could not run, e.g. a statement timeout; those rules produced no findings.
    """

    findings: list[Finding]
    suppressed: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    rules: list[str] = field(default_factory=list)
    tables: int = 0
    server_version: int = 0
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the shared report keys plus ``rules``, ``tables``, timings."""
        return {
            **super().to_dict(),
            "rules": list(self.rules),
            "tables": self.tables,
            "server_version": self.server_version,
            "duration_s": round(self.duration_s, 4),
        }


def select_rules(rules: Iterable[str] | None = None, exclude: Iterable[str] = ()) -> list[Rule]:
    """The registered rules named (by code or name) in ``rules`` minus ``exclude``."""
    by_key = {**{r.code: r for r in RULES.values()}, **{r.name: r for r in RULES.values()}}
    wanted = sorted(RULES.values(), key=lambda r: r.code) if rules is None else []
    for key in rules or ():
        if key not in by_key:
            raise ConfigurationError(f"unknown lint rule {key!r}; known: {', '.join(RULES)}")
        wanted.append(by_key[key])
    skip = set()
    for key in exclude:
        if key not in by_key:
            raise ConfigurationError(f"unknown lint rule {key!r}")
        skip.add(by_key[key].code)
    seen: set[str] = set()
    out = []
    for r in wanted:
        if r.code not in skip and r.code not in seen:
            seen.add(r.code)
            out.append(r)
    return out


def _order(f: Finding) -> tuple[int, str, str]:
    return (-f.severity.rank, f.code, f.object)


def lint(
    target: Target,
    *,
    schemas: Sequence[str] = (),
    exclude_schemas: Sequence[str] = (),
    rules: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    config: LintConfig | None = None,
    suppress: SuppressionsLike = None,
    statement_timeout_ms: int = 5000,
    lock_timeout_ms: int = 1000,
) -> LintReport:
    """Lint the schema of ``target`` (an Engine, URL or libpq string) and return a report.

    Reads ``pg_catalog`` and the statistics views only, on a read-only
    connection of its own under ``statement_timeout_ms``; it never locks a
    user table, so it runs beside migrations that hold ACCESS EXCLUSIVE.
    ``schemas`` limits the schemas read (default: all but system schemas and
    objects of extensions). ``rules``/``exclude`` pick rules by code or name.
    Raises :class:`~dbopt.ServerUnavailableError` when the server is down and
    :class:`~dbopt.DatabaseError` when the catalog cannot be read at all.
    """
    cfg = config or LintConfig()
    selected = select_rules(rules, exclude)
    silencer = Suppressions.coerce(suppress)
    started = time.perf_counter()
    with (
        read_only_connection(
            target,
            tool="lint",
            statement_timeout_ms=statement_timeout_ms,
            lock_timeout_ms=lock_timeout_ms,
        ) as conn,
        map_driver_errors("lint could not read the catalog"),
    ):
        cat = catalog_mod.load(
            conn,
            schemas=schemas,
            exclude_schemas=exclude_schemas,
            max_values=cfg.enum_max_values,
        )
        # the statistics period is cheap and every usage rule (LINT006 too) needs it
        load_extra(conn, cat, {q for r in selected for q in r.needs} | {"stats_period"})
    errors: dict[str, str] = {}
    findings: list[Finding] = []
    for r in selected:
        missing = [q for q in r.needs if q in cat.errors]
        if missing:
            errors[r.code] = "; ".join(f"{q}: {cat.errors[q]}" for q in missing)
            continue
        findings.extend(r.run(cat, cfg))
    kept, silenced = silencer.split(findings)
    kept.sort(key=_order)
    return LintReport(
        findings=kept,
        suppressed=silenced,
        errors=errors,
        rules=[r.code for r in selected],
        tables=len(cat.tables),
        server_version=cat.version_num,
        duration_s=time.perf_counter() - started,
    )
