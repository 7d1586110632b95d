"""Findings on the indexes that exist: duplicates, prefix-covered, unused, invalid, missing on FKs.

Codes: ``IDX001`` duplicate, ``IDX002`` covered by a wider index's leading
columns, ``IDX003`` unused since the statistics were reset, ``IDX004``
invalid (a failed ``CREATE INDEX CONCURRENTLY``), ``IDX005`` foreign key
without an index on its columns. They are lint's rules LINT004, LINT005,
LINT006, LINT007 and LINT001 under the advisor's codes: one implementation
(:mod:`dbopt.lint.rules.indexes`), partition-aware. An index that enforces a
constraint (primary key, unique, exclusion) is never proposed for dropping,
nor is the last index left serving a foreign key.

:func:`parse_index` turns an existing index into the advisor's
:class:`IndexSpec`, so candidates an existing index covers are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pglast
from pglast import ast, enums

import dbopt.lint.rules  # noqa: F401  (registers the rules)
from dbopt.advisor.catalog import Catalog, ExistingIndex
from dbopt.advisor.model import IndexSpec, KeyElem
from dbopt.advisor.sqltree import deparse, is_node, normalize_predicate, strip_casts
from dbopt.findings import Finding
from dbopt.lint.base import RULES, LintConfig
from dbopt.postgres.catalog import Catalog as LintCatalog

__all__ = [
    "ALIASES",
    "ExistingOptions",
    "existing_findings",
    "existing_specs",
    "lint_config",
    "normalize_predicate",
    "parse_index",
]


@dataclass(frozen=True)
class ExistingOptions:
    """Thresholds for the findings on existing indexes.

    ``min_stats_age_s``: an index counts as unused only when the statistics
    cover at least this long (default 7 days); ``max_scans``: scans at or
    below this count are "unused".
    """

    min_stats_age_s: float = 7 * 24 * 3600
    max_scans: int = 0


def parse_index(index: ExistingIndex) -> IndexSpec | None:
    """The :class:`IndexSpec` of an existing index (None if it cannot be parsed)."""
    try:
        stmt: Any = pglast.parse_sql(index.definition)[0].stmt
    except (pglast.parser.ParseError, IndexError):
        return None
    keys = []
    for elem in stmt.indexParams or ():
        desc = elem.ordering == enums.SortByDir.SORTBY_DESC
        nulls = None
        if elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_FIRST:
            nulls = True
        elif elem.nulls_ordering == enums.SortByNulls.SORTBY_NULLS_LAST:
            nulls = False
        opclass = ".".join(s.sval for s in elem.opclass) if elem.opclass else None
        if elem.name is not None:
            key = KeyElem.column(elem.name, opclass)
        else:
            cols = tuple(sorted({r.fields[-1].sval for r in _column_refs(elem.expr) if r.fields}))
            key = KeyElem(deparse(elem.expr), cols, False, opclass=opclass)
        keys.append(key.ordered(desc, nulls))
    include = tuple(e.name for e in stmt.indexIncludingParams or () if e.name)
    predicate = deparse(strip_casts(stmt.whereClause)) if stmt.whereClause is not None else None
    pred_cols = (
        tuple(sorted({r.fields[-1].sval for r in _column_refs(stmt.whereClause)}))
        if stmt.whereClause is not None
        else ()
    )
    return IndexSpec(
        index.table_oid, stmt.accessMethod or "btree", tuple(keys), include, predicate, pred_cols
    )


def _column_refs(node: Any) -> list[Any]:
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if is_node(n, ast.ColumnRef):
            out.append(n)
        elif is_node(n, ast.Node):
            for name in getattr(type(n), "__slots__", ()):
                value = getattr(n, name, None)
                stack.extend(value if isinstance(value, tuple) else [value])
    return [r for r in out if isinstance(getattr(r.fields[-1], "sval", None), str)]


def existing_specs(catalog: Catalog) -> dict[int, IndexSpec]:
    """Parsed specs of every existing index, by index oid."""
    out = {}
    for index in catalog.indexes:
        spec = parse_index(index)
        if spec is not None:
            out[index.oid] = spec
    return out


#: The advisor's code for each lint rule it reports (one implementation: the lint rule).
ALIASES: dict[str, str] = {
    "LINT004": "IDX001",
    "LINT005": "IDX002",
    "LINT006": "IDX003",
    "LINT007": "IDX004",
    "LINT001": "IDX005",
}


def lint_config(options: ExistingOptions) -> LintConfig:
    """The lint settings that make the index rules judge as ``options`` asks."""
    return LintConfig(
        unused_index_min_stats_age_s=options.min_stats_age_s,
        unused_index_max_scans=options.max_scans,
    )


def existing_findings(catalog: LintCatalog, options: ExistingOptions) -> list[Finding]:
    """The findings on the indexes of ``catalog``, in a stable order.

    These are lint's index rules (LINT004, LINT005, LINT006, LINT007 and
    LINT001) under the advisor's codes (:data:`ALIASES`); the finding's
    ``metadata["lint_code"]`` names the rule. Same logic, same severities,
    same fixes, so the advisor's and lint's drop advice never disagree.
    """
    config = lint_config(options)
    out: list[Finding] = []
    for code, alias in ALIASES.items():
        for f in RULES[code].run(catalog, config):
            out.append(replace(f, code=alias, metadata={**f.metadata, "lint_code": code}))
    out.sort(key=lambda f: (f.code, f.object))
    return out
