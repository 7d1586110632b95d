"""Schema linter: ``lint(engine)`` reads the catalog and returns :class:`~dbopt.Finding`s.

Rules (``RULES``, by code): LINT001 foreign key without index, LINT002 no
primary key, LINT003 ``*_id`` without a foreign key, LINT004 duplicate index,
LINT005 prefix-covered index, LINT006 unused index, LINT007 invalid index,
LINT008 NOT VALID constraint, LINT009 enum-like column without CHECK, LINT010
timestamp without time zone, LINT011 json instead of jsonb, LINT012 key or
sequence near overflow, LINT013 missing audit columns, LINT014 naming
convention, LINT015 table never scanned.
"""

from __future__ import annotations

from dbopt.lint.base import RULES, LintConfig, Rule
from dbopt.lint.runner import LintReport, lint, select_rules

__all__ = ["RULES", "LintConfig", "LintReport", "Rule", "lint", "select_rules"]
