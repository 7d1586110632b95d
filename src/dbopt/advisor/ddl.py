"""DDL for recommended indexes: deterministic names, CONCURRENTLY, partitioned tables.

A plain table gets ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``. A
partitioned table gets ``CREATE INDEX ... ON ONLY`` the parent (instant, and
invalid until every partition is attached), then for each partition
``CREATE INDEX CONCURRENTLY`` and ``ALTER INDEX ... ATTACH PARTITION``;
sub-partitioned children recurse. Every identifier is quoted.
"""

from __future__ import annotations

import hashlib
import re

from dbopt.advisor.catalog import Catalog, Relation
from dbopt.advisor.model import IndexSpec, quote_ident

__all__ = ["create_statements", "drop_statements", "index_name", "qualified"]

_MAX_NAME = 63
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def qualified(schema: str, name: str) -> str:
    """``"schema"."name"``."""
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def index_name(spec: IndexSpec, rel: Relation, taken: set[str] | None = None) -> str:
    """A deterministic index name: ``<table>_<columns>_idx`` (at most 63 bytes).

    Unsafe characters become ``_``; long names are cut and end in a short hash
    of the definition; a name in ``taken`` gets the hash too.
    """
    parts = [rel.name]
    for key in spec.keys:
        parts.append(key.columns[0] if key.is_column else "expr_" + "_".join(key.columns))
    if spec.include:
        parts.append("incl")
    if spec.predicate:
        parts.append("part")
    suffix = "idx" if spec.method == "btree" else f"{spec.method}_idx"
    base = _UNSAFE.sub("_", "_".join(parts)).strip("_") or "index"
    name = f"{base}_{suffix}"
    digest = hashlib.sha1(repr(spec.identity[1:]).encode(), usedforsecurity=False).hexdigest()[:8]
    if len(name.encode()) > _MAX_NAME or (taken is not None and name in taken):
        room = _MAX_NAME - len(suffix) - len(digest) - 2
        name = f"{base.encode()[:room].decode(errors='ignore').rstrip('_')}_{digest}_{suffix}"
    return name


def create_statements(
    spec: IndexSpec, rel: Relation, name: str, catalog: Catalog, *, concurrently: bool = True
) -> list[str]:
    """The statements that create ``spec`` on ``rel`` under ``name``."""
    conc = "CONCURRENTLY " if concurrently else ""
    if rel.kind != "p":
        return [
            f"CREATE INDEX {conc}IF NOT EXISTS {quote_ident(name)} "
            f"ON {qualified(rel.schema, rel.name)} {spec.body()}"
        ]
    taken: set[str] = set()
    return _partitioned(spec, rel, name, catalog, conc, taken)


def _partitioned(
    spec: IndexSpec, rel: Relation, name: str, catalog: Catalog, conc: str, taken: set[str]
) -> list[str]:
    taken.add(name)
    out = [
        f"CREATE INDEX IF NOT EXISTS {quote_ident(name)} "
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
                f"CREATE INDEX {conc}IF NOT EXISTS {quote_ident(child_name)} "
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
