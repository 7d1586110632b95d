"""DDL for recommended indexes: deterministic names, CONCURRENTLY, partitioned tables.

A plain table gets ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``. A
partitioned table gets ``CREATE INDEX ... ON ONLY`` the parent (instant, and
invalid until every partition is attached), then for each partition
``CREATE INDEX CONCURRENTLY`` and ``ALTER INDEX ... ATTACH PARTITION``;
sub-partitioned children recurse. Every identifier is quoted.
"""

from __future__ import annotations

from dbopt.advisor.catalog import Catalog, Relation
from dbopt.advisor.model import IndexSpec
from dbopt.postgres import render

__all__ = ["create_statements", "drop_statements", "index_name", "qualified"]


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"`` (always quoted)."""
    return render.qualified(schema, name, force=True)


def _quote(name: str) -> str:
    return render.ident(name, force=True)


def index_name(spec: IndexSpec, rel: Relation, taken: set[str] | None = None) -> str:
    """A deterministic index name: ``<table>_<columns>_idx`` (at most 63 bytes).

    Built by :func:`dbopt.postgres.render.index_name`: unsafe characters
    become ``_``; a name that was changed that way, is too long, or is in
    ``taken`` ends in a short hash of the table, columns and definition, so
    it stays unique after truncation.
    """
    parts: list[str] = []
    for key in spec.keys:
        parts.append(key.columns[0] if key.is_column else "expr_" + "_".join(key.columns))
    if spec.include:
        parts.append("incl")
    if spec.predicate:
        parts.append("part")
    suffix = "idx" if spec.method == "btree" else f"{spec.method}_idx"
    return render.index_name(
        rel.name, parts, suffix, key=repr(spec.identity[1:]), taken=taken or ()
    )


def create_statements(
    spec: IndexSpec, rel: Relation, name: str, catalog: Catalog, *, concurrently: bool = True
) -> list[str]:
    """The statements that create ``spec`` on ``rel`` under ``name``."""
    conc = "CONCURRENTLY " if concurrently else ""
    if rel.kind != "p":
        return [
            f"CREATE INDEX {conc}IF NOT EXISTS {_quote(name)} "
            f"ON {qualified(rel.schema, rel.name)} {spec.body()}"
        ]
    taken: set[str] = set()
    return _partitioned(spec, rel, name, catalog, conc, taken)


def _partitioned(
    spec: IndexSpec, rel: Relation, name: str, catalog: Catalog, conc: str, taken: set[str]
) -> list[str]:
    taken.add(name)
    out = [
        f"CREATE INDEX IF NOT EXISTS {_quote(name)} "
        f"ON ONLY {qualified(rel.schema, rel.name)} {spec.body()}"
    ]
    children = sorted(
        (catalog.relations[c] for c in rel.children if c in catalog.relations),
        key=lambda r: (r.schema, r.name),
    )
    for child in children:
        if child.kind == "f":
            continue
        child_name = index_name(spec, child, taken)
        taken.add(child_name)
        if child.kind == "p":
            out.extend(_partitioned(spec, child, child_name, catalog, conc, taken))
        else:
            out.append(
                f"CREATE INDEX {conc}IF NOT EXISTS {_quote(child_name)} "
                f"ON {qualified(child.schema, child.name)} {spec.body()}"
            )
        out.append(
            f"ALTER INDEX {qualified(rel.schema, name)} "
            f"ATTACH PARTITION {qualified(child.schema, child_name)}"
        )
    return out


def drop_statements(rel: Relation, name: str, *, concurrently: bool = True) -> list[str]:
    """The statement that drops index ``name`` of ``rel`` (partition indexes go with it)."""
    conc = "CONCURRENTLY " if concurrently and rel.kind != "p" else ""
    return [f"DROP INDEX {conc}IF EXISTS {qualified(rel.schema, name)}"]
