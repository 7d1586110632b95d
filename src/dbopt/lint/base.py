"""Rules, their registry and the linter's configuration."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, Severity, register_codes
from dbopt.lint.catalog import Catalog, Table

__all__ = ["RULES", "LintConfig", "Rule", "register_rules", "rule"]


@dataclass(frozen=True)
class LintConfig:
    """What the heuristic rules look for; every field has a default that suits most schemas.

    * ``id_column_pattern``: columns whose name matches (a regex) should be
      foreign keys (LINT003). The first group names the referenced table.
    * ``id_column_ignore``: ``fnmatch`` patterns of ``table.column`` (or
      ``column``) the heuristic skips, e.g. polymorphic ``entity_id``.
    * ``audit_columns``: columns every table should have (LINT013); each
      entry may list alternatives separated by ``|`` (``"created_at|inserted_at"``).
      ``None`` (the default) follows the schema: the timestamp columns that two
      thirds of the tables already have; ``()`` checks nothing.
    * ``naming_pattern``: what table, column, index and constraint names must
      match (LINT014). ``None`` (the default): snake_case, held only when at
      least 80 % of the table and column names already follow it.
    * ``enum_max_values`` / ``enum_min_rows``: a text or small-integer column
      with at most this many distinct values, in a table with at least this
      many rows, is enum-like (LINT009).
    * ``overflow_warn`` / ``overflow_error``: fraction of a key's or
      sequence's range used before LINT012 warns / errs.
    * ``unused_index_min_pages``: unused indexes smaller than this are not
      reported (LINT006).
    * ``unused_index_min_stats_age_s``: LINT006 reports nothing until the
      statistics have been collecting this long (7 days; statistics never
      reset count as old enough). ``unused_index_max_scans``: scans at or
      below this count as unused (0).
    * ``unused_table_min_stats_age_s``: LINT015 reports nothing until the
      statistics cover this long (7 days): since their last reset, or, never
      reset, since the database was created (when the server lets dbopt read
      that; otherwise the period is unknown and counts as long enough).
    """

    id_column_pattern: str = r"^(.+)_id$"
    id_column_ignore: tuple[str, ...] = ()
    audit_columns: tuple[str, ...] | None = None
    naming_pattern: str | None = None
    enum_max_values: int = 10
    enum_min_rows: int = 50
    overflow_warn: float = 0.75
    overflow_error: float = 0.9
    unused_index_min_pages: int = 0
    unused_index_min_stats_age_s: float = 7 * 24 * 3600
    unused_table_min_stats_age_s: float = 7 * 24 * 3600
    unused_index_max_scans: int = 0

    def __post_init__(self) -> None:
        for name in ("id_column_pattern", "naming_pattern"):
            try:
                re.compile(getattr(self, name) or "")
            except re.error as exc:
                raise ConfigurationError(f"LintConfig.{name} is not a regex: {exc}") from None
        if not 0 < self.overflow_warn <= self.overflow_error <= 1:
            raise ConfigurationError("need 0 < overflow_warn <= overflow_error <= 1")
        if self.enum_max_values < 2:
            raise ConfigurationError("enum_max_values must be at least 2")

    @classmethod
    def from_mapping(cls, values: dict[str, Any]) -> LintConfig:
        """A config from a mapping such as ``[tool.dbopt.lint]`` in ``pyproject.toml``."""
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ConfigurationError(f"unknown lint settings: {', '.join(sorted(unknown))}")
        fixed: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in values.items()
        }
        return cls(**fixed)


Check = Callable[[Catalog, LintConfig, "Rule"], Iterable[Finding]]

#: The catalog parts a rule reads unless it says otherwise.
_NEEDS = ("relations", "columns", "constraints", "indexes")


@dataclass(frozen=True)
class Rule:
    """A lint rule: a stable code and name, what it reports, why, and its check."""

    code: str
    name: str
    severity: Severity
    summary: str
    why: str
    check: Check = field(repr=False, compare=False)
    needs: tuple[str, ...] = _NEEDS

    def finding(
        self,
        obj: str,
        message: str,
        *,
        fix: str | None = None,
        severity: Severity | None = None,
        why: str | None = None,
        **metadata: Any,
    ) -> Finding:
        """A finding of this rule (``metadata`` gets ``rule`` = the rule's name)."""
        return Finding(
            code=self.code,
            severity=severity or self.severity,
            object=obj,
            message=message,
            why=why or self.why,
            fix=fix,
            metadata={"rule": self.name, **metadata},
        )

    def run(self, catalog: Catalog, config: LintConfig) -> Iterator[Finding]:
        """The rule's findings on ``catalog``."""
        yield from self.check(catalog, config, self)


#: Every rule, by code, in the order they were registered.
RULES: dict[str, Rule] = {}


def register_rules(*rules: Rule) -> None:
    """Add ``rules`` to :data:`RULES` (each rule module ends with one table of its rules)."""
    register_codes(RULES, rules, "rule")


def rule(
    code: str,
    name: str,
    severity: Severity | str,
    summary: str,
    why: str,
    needs: Sequence[str] = _NEEDS,
) -> Callable[[Check], Check]:
    """Register the decorated check as rule ``code`` (for rules defined outside dbopt)."""

    def register(check: Check) -> Check:
        register_rules(
            Rule(code, name, Severity.parse(severity), summary, why, check, tuple(needs))
        )
        return check

    return register


def table_meta(table: Table, **extra: Any) -> dict[str, Any]:
    """Finding metadata naming ``table``."""
    return {"schema": table.schema, "table": table.name, **extra}
