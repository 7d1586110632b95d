"""What the advisor knows about the database: relations, columns, statistics, indexes.

The planner-facing view the cost model needs (sizes, write rates, every
relation kind including views, index definitions), built from the shared
snapshot :mod:`dbopt.postgres.catalog` read with its planner part; the
findings on existing indexes judge that same snapshot (lint's rules).

Loaded once per :meth:`IndexAdvisor.advise` (read-only). Everything here is
plain data; nothing is cached across calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbopt.errors import QueryCanceledError
from dbopt.postgres.catalog import PARTS, PLANNER, load
from dbopt.postgres.catalog import Catalog as Snapshot

__all__ = ["Catalog", "Column", "ExistingIndex", "Relation"]


@dataclass
class Column:
    """One column of a relation, with its planner statistics when ANALYZEd."""

    name: str
    type: str
    typname: str
    category: str
    collation: str | None = None
    not_null: bool = False
    null_frac: float | None = None
    n_distinct: float | None = None
    avg_width: int | None = None
    mcv: list[str] | None = None
    mcf: list[float] | None = None


@dataclass
class Relation:
    """A table, partitioned table, materialized view, view or foreign table."""

    oid: int
    schema: str
    name: str
    kind: str
    reltuples: float
    relpages: int
    size_bytes: int
    parent: int | None = None
    children: list[int] = field(default_factory=list)
    columns: dict[str, Column] = field(default_factory=dict)
    n_tup_ins: int = 0
    n_tup_upd: int = 0
    n_tup_del: int = 0
    n_tup_hot_upd: int = 0
    n_live_tup: int = 0
    analyzed: bool = False

    @property
    def qualified(self) -> str:
        """``schema.name``, unquoted (for display)."""
        return f"{self.schema}.{self.name}"

    @property
    def is_table(self) -> bool:
        """True for relations that can carry indexes (tables, partitioned, matviews)."""
        return self.kind in ("r", "p", "m")


@dataclass
class ExistingIndex:
    """An index that exists; ``definition`` is ``pg_get_indexdef``."""

    oid: int
    name: str
    schema: str
    table_oid: int
    method: str
    unique: bool
    primary: bool
    valid: bool
    ready: bool
    definition: str
    size_bytes: int
    scans: int
    constraint: str | None
    partitioned: bool
    parent_index: int | None
    key_count: int
    keys: tuple[Any, ...] = ()  # KeyElem tuples, filled by the advisor's parser
    include: tuple[str, ...] = ()
    predicate: str | None = None
    parsed: bool = False


@dataclass
class Catalog:
    """Relations, indexes and foreign keys of one database, plus server facts."""

    relations: dict[int, Relation]
    by_name: dict[tuple[str, str], int]
    indexes: list[ExistingIndex]
    search_path: list[str]
    extensions: dict[str, str]
    c_collation: bool
    server_version: int
    stats_reset: Any
    stats_age_s: float | None
    settings: dict[str, float]
    #: The shared snapshot this view was built from (lint's index rules judge it).
    snapshot: Snapshot | None = field(default=None, repr=False, compare=False)
    _viewdefs: dict[int, str | None] = field(default_factory=dict)

    def lookup(self, schema: str | None, name: str) -> Relation | None:
        """The relation ``schema.name``; unqualified names follow ``search_path``."""
        if schema is not None:
            oid = self.by_name.get((schema, name))
            return self.relations.get(oid) if oid is not None else None
        for sch in self.search_path:
            oid = self.by_name.get((sch, name))
            if oid is not None:
                return self.relations[oid]
        return None

    def root(self, rel: Relation) -> Relation:
        """The top partitioned table of a partition (``rel`` itself otherwise)."""
        while rel.parent is not None and rel.parent in self.relations:
            rel = self.relations[rel.parent]
        return rel

    def indexes_on(self, oid: int) -> list[ExistingIndex]:
        """Indexes of relation ``oid``."""
        return [i for i in self.indexes if i.table_oid == oid]

    def leaves(self, rel: Relation) -> list[Relation]:
        """Leaf partitions under ``rel`` (``[rel]`` for a plain table)."""
        if not rel.children:
            return [rel]
        out: list[Relation] = []
        for child in rel.children:
            if child in self.relations:
                out.extend(self.leaves(self.relations[child]))
        return out

    def viewdef(self, conn: psycopg.Connection[Any], oid: int) -> str | None:
        """The SELECT behind view ``oid`` (fetched on first use)."""
        if oid not in self._viewdefs:
            row = conn.execute("SELECT pg_get_viewdef(%s::oid)", (oid,)).fetchone()
            self._viewdefs[oid] = row[0] if row else None
        return self._viewdefs[oid]


def load_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """The advisor's view of the shared snapshot (:func:`dbopt.postgres.catalog.load`).

    One read, with the planner part, serves both the cost model (this view)
    and the findings on existing indexes (:attr:`Catalog.snapshot`).
    """
    snap = load(conn, parts=(*PARTS, PLANNER))
    lost = sorted(set(snap.errors) & {"relations", "columns", "indexes", "stats", PLANNER})
    if lost:
        raise QueryCanceledError(
            "could not read the catalog: "
            + "; ".join(f"{name}: {snap.errors[name]}" for name in lost)
        )
    relations: dict[int, Relation] = {}
    for t in (*snap.tables.values(), *snap.others.values()):
        rel = Relation(
            oid=t.oid,
            schema=t.schema,
            name=t.name,
            kind=t.kind,
            reltuples=max(0.0, t.reltuples),
            relpages=t.relpages,
            size_bytes=t.size_bytes or 0,
            parent=t.parent if t.is_partition else None,
            n_tup_ins=t.n_tup_ins,
            n_tup_upd=t.n_tup_upd,
            n_tup_del=t.n_tup_del,
            n_tup_hot_upd=t.n_tup_hot_upd,
            n_live_tup=t.n_live_tup or 0,
            analyzed=t.analyzed or t.reltuples >= 0,
        )
        for c in t.columns.values():
            col = Column(c.name, c.type, c.typname, c.category, c.collation, c.not_null)
            st = snap.planner_stats.get((t.oid, c.name))
            if st is not None:
                col.null_frac, col.n_distinct = st.null_frac, st.n_distinct
                col.avg_width = st.avg_width
                col.mcv = st.values or None
                col.mcf = st.freqs or None
            rel.columns[c.name] = col
        relations[rel.oid] = rel
    for rel in relations.values():
        if rel.parent is not None and rel.parent in relations:
            relations[rel.parent].children.append(rel.oid)
    for rel in relations.values():
        if rel.kind == "p":
            leaves = [r for r in _leaves(relations, rel) if r is not rel]
            rel.reltuples = sum(r.reltuples for r in leaves)
            rel.relpages = sum(r.relpages for r in leaves)
            rel.size_bytes = sum(r.size_bytes for r in leaves)
            for attr in ("n_tup_ins", "n_tup_upd", "n_tup_del", "n_tup_hot_upd", "n_live_tup"):
                setattr(rel, attr, sum(getattr(r, attr) for r in leaves))
    indexes = sorted(
        (
            ExistingIndex(
                oid=i.oid,
                name=i.name,
                schema=t.schema,
                table_oid=t.oid,
                method=i.method,
                unique=i.is_unique,
                primary=i.is_primary,
                valid=i.is_valid,
                ready=i.is_ready,
                definition=i.definition or "",
                size_bytes=i.size_bytes or 0,
                scans=i.idx_scan or 0,
                constraint=i.constraint_type,
                partitioned=i.partitioned,
                parent_index=i.parent,
                key_count=i.key_count,
            )
            for t in (*snap.tables.values(), *snap.others.values())
            for i in t.indexes
        ),
        key=lambda i: (i.table_oid, i.name),
    )
    return Catalog(
        relations=relations,
        by_name={(r.schema, r.name): r.oid for r in relations.values()},
        indexes=indexes,
        search_path=snap.search_path or ["public"],
        extensions=snap.extensions,
        c_collation=snap.collate in ("C", "POSIX"),
        server_version=snap.version_num,
        stats_reset=snap.stats_reset,
        stats_age_s=snap.stats_age_s,
        settings=snap.settings,
        snapshot=snap,
    )


def _leaves(relations: dict[int, Relation], rel: Relation) -> list[Relation]:
    if not rel.children:
        return [rel]
    out: list[Relation] = []
    for child in rel.children:
        out.extend(_leaves(relations, relations[child]))
    return out
