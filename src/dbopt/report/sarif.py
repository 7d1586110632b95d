"""SARIF 2.1.0 output with every dbopt tool's rule descriptions.

The rendering lives in :mod:`dbopt._sarif` (the base layer, so any
:class:`~dbopt.FindingsReport` can render itself); this module adds
:func:`known_rules`, the registry of the lint, health, migration and drift
rules, and makes it the default.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dbopt import _sarif
from dbopt._sarif import RuleDoc
from dbopt.findings import Finding

__all__ = ["RuleDoc", "known_rules", "render_sarif", "to_sarif"]

SCHEMA = _sarif.SCHEMA


def known_rules() -> dict[str, RuleDoc]:
    """Every rule of dbopt's checkers (lint, migrations, health, drift), by code.

    The default of :func:`to_sarif` when the caller does not hand over its
    tool's rules. Imported here, below the report layer, on first call.
    """
    from dbopt.health.checks import RULES as HEALTH_RULES
    from dbopt.lint import RULES as LINT_RULES
    from dbopt.migrations.rules import RULES as MIGRATION_RULES
    from dbopt.schema.drift import RULES as DRIFT_RULES

    out: dict[str, RuleDoc] = {}
    for registry in (LINT_RULES, MIGRATION_RULES, HEALTH_RULES, DRIFT_RULES):
        out.update(registry)
    return out


def to_sarif(
    findings: Iterable[Finding],
    *,
    rules: Mapping[str, RuleDoc] | None = None,
    artifact: str | None = None,
    tool: str = "dbopt",
) -> dict[str, Any]:
    """A SARIF 2.1.0 log (a dict) with one run holding ``findings``.

    ``rules`` overrides the rule descriptions (default: :func:`known_rules`);
    ``artifact`` is a repository path to attach database findings to.
    """
    docs = known_rules() if rules is None else rules
    return _sarif.to_sarif(findings, rules=docs, artifact=artifact, tool=tool)


def render_sarif(findings: Iterable[Finding], *, indent: int | None = 2, **options: Any) -> str:
    """:func:`to_sarif` as JSON text."""
    return json.dumps(to_sarif(findings, **options), indent=indent, ensure_ascii=False)
