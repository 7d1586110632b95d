"""DDL for recommended indexes: deterministic names, CONCURRENTLY, partitioned tables.

A plain table gets ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``. A
partitioned table gets ``CREATE INDEX ... ON ONLY`` the parent (instant, and
invalid until every partition is attached), then for each partition
``CREATE INDEX CONCURRENTLY`` and ``ALTER INDEX ... ATTACH PARTITION``;
sub-partitioned children recurse. A partition that already has an index of
the same definition (not attached to another parent index, valid, not
unique) keeps it: that index is attached, not built again. Every identifier
is quoted.
"""

from __future__ import annotations

from dataclasses import replace

from dbopt.advisor.catalog import Catalog, ExistingIndex, Relation
from dbopt.advisor.existing import parse_index
from dbopt.advisor.model import IndexSpec
from dbopt.postgres import render

__all__ = [
    "create_statements",
    "drop_statements",
    "index_name",
    "qualified",
    "reusable_index",
    "reused_indexes",
]


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
        reuse = reusable_index(spec, child, catalog)
        if reuse is not None:
            out.append(
                f"ALTER INDEX {qualified(rel.schema, name)} "
                f"ATTACH PARTITION {qualified(reuse.schema, reuse.name)}"
            )
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


def reusable_index(spec: IndexSpec, child: Relation, catalog: Catalog) -> ExistingIndex | None:
    """An index of partition ``child`` that ``ATTACH PARTITION`` accepts for ``spec``.

    Same definition (method, keys with order and operator class, INCLUDE,
    predicate), valid, not unique and not yet attached to a parent index.
    The first by name when there are several.
    """
    want = replace(spec, table_oid=child.oid).identity
    for index in sorted(catalog.indexes_on(child.oid), key=lambda i: i.name):
        if not index.valid or index.unique or index.parent_index is not None:
            continue
        if index.partitioned != (child.kind == "p"):
            continue
        if _identity(index) == want:
            return index
    return None


#: Parsed identities by (table oid, definition): sizes and DDL ask for the same ones.
_IDENTITIES: dict[tuple[int, str], tuple[object, ...] | None] = {}


def _identity(index: ExistingIndex) -> tuple[object, ...] | None:
    """``parse_index(index).identity``, parsed once per index definition."""
    key = (index.table_oid, index.definition)
    if key not in _IDENTITIES:
        if len(_IDENTITIES) > 4096:
            _IDENTITIES.clear()
        parsed = parse_index(index)
        _IDENTITIES[key] = parsed.identity if parsed is not None else None
    return _IDENTITIES[key]


def reused_indexes(spec: IndexSpec, rel: Relation, catalog: Catalog) -> list[ExistingIndex]:
    """The partition indexes :func:`create_statements` attaches instead of building."""
    out: list[ExistingIndex] = []
    if rel.kind != "p":
        return out
    for oid in rel.children:
        child = catalog.relations.get(oid)
        if child is None or child.kind == "f":
            continue
        reuse = reusable_index(spec, child, catalog)
        if reuse is not None:
            out.append(reuse)
        elif child.kind == "p":
            out.extend(reused_indexes(spec, child, catalog))
    return sorted(out, key=lambda i: (i.schema, i.name))


def drop_statements(
    rel: Relation,
    name: str,
    *,
    concurrently: bool = True,
    restore: tuple[tuple[ExistingIndex, Relation], ...] = (),
) -> list[str]:
    """The statements that undo index ``name`` of ``rel``.

    Dropping a partitioned index drops the partition indexes attached to it,
    the ones that existed before among them: ``restore`` (index, partition)
    pairs are re-created afterwards, under their own names.
    """
    conc = "CONCURRENTLY " if concurrently and rel.kind != "p" else ""
    out = [f"DROP INDEX {conc}IF EXISTS {qualified(rel.schema, name)}"]
    rebuild = "CONCURRENTLY " if concurrently else ""
    for index, child in restore:
        parsed = parse_index(index)
        if parsed is None:
            continue
        out.append(
            f"CREATE INDEX {rebuild}IF NOT EXISTS {_quote(index.name)} "
            f"ON {qualified(child.schema, child.name)} {parsed.body()}"
        )
    return out
