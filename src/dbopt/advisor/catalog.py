"""What the advisor knows about the database: relations, columns, statistics, indexes.

The planner-facing view the cost model needs (sizes, write rates, every
relation kind including views, index definitions). Foreign keys and the
findings on existing indexes come from the shared snapshot,
:mod:`dbopt.postgres.catalog`, which lint reads too.

Loaded once per :meth:`IndexAdvisor.advise` with a handful of catalog
queries (read-only). Everything here is plain data; nothing is cached across
calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

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
    correlation: float | None = None


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


_RELATIONS = """
SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.reltuples::float8, c.relpages,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_relation_size(c.oid) ELSE 0 END,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition),
       coalesce(s.n_tup_ins, 0), coalesce(s.n_tup_upd, 0), coalesce(s.n_tup_del, 0),
       coalesce(s.n_tup_hot_upd, 0), coalesce(s.n_live_tup, 0),
       (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL
        OR EXISTS (SELECT 1 FROM pg_statistic st WHERE st.starelid = c.oid))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_all_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p', 'm', 'v', 'f')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp%%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
"""

_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), t.typname,
       t.typcategory::text, co.collname, a.attnotnull
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

_STATS = """
SELECT c.oid, s.attname, s.null_frac::float8, s.n_distinct::float8, s.avg_width,
       s.most_common_vals::text, s.most_common_freqs::float8[], s.correlation::float8
FROM pg_stats s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
WHERE c.oid = ANY(%s) AND s.inherited = (c.relkind = 'p')
"""

_INDEXES = """
SELECT i.indexrelid, ic.relname, n.nspname, i.indrelid, am.amname, i.indisunique,
       i.indisprimary, i.indisvalid, i.indisready, pg_get_indexdef(i.indexrelid),
       CASE WHEN ic.relkind = 'i' THEN pg_relation_size(i.indexrelid) ELSE 0 END,
       coalesce(s.idx_scan, 0),
       (SELECT con.contype::text FROM pg_constraint con
         WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x') LIMIT 1),
       ic.relkind = 'I',
       (SELECT inh.inhparent FROM pg_inherits inh WHERE inh.inhrelid = i.indexrelid),
       i.indnkeyatts
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
WHERE i.indrelid = ANY(%s)
ORDER BY i.indrelid, ic.relname
"""

_SETTINGS = """
SELECT name, setting::float8 FROM pg_settings
WHERE name IN ('random_page_cost', 'seq_page_cost', 'cpu_tuple_cost',
               'cpu_index_tuple_cost', 'cpu_operator_cost', 'effective_cache_size')
"""


def load_catalog(conn: psycopg.Connection[Any]) -> Catalog:
    """Read the catalog through ``conn`` (read-only queries)."""
    relations: dict[int, Relation] = {}
    for row in conn.execute(_RELATIONS):
        rel = Relation(
            oid=row[0],
            schema=row[1],
            name=row[2],
            kind=row[3],
            reltuples=max(0.0, float(row[4])),
            relpages=int(row[5]),
            size_bytes=int(row[6]),
            parent=row[7],
            n_tup_ins=int(row[8]),
            n_tup_upd=int(row[9]),
            n_tup_del=int(row[10]),
            n_tup_hot_upd=int(row[11]),
            n_live_tup=int(row[12]),
            analyzed=bool(row[13]) or row[4] >= 0,
        )
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
    oids = list(relations)
    for row in conn.execute(_COLUMNS, (oids,)):
        relations[row[0]].columns[row[1]] = Column(
            name=row[1],
            type=row[2],
            typname=row[3],
            category=row[4],
            collation=row[5],
            not_null=bool(row[6]),
        )
    for row in conn.execute(_STATS, (oids,)):
        col = relations[row[0]].columns.get(row[1])
        if col is None:
            continue
        col.null_frac, col.n_distinct, col.avg_width = row[2], row[3], row[4]
        col.mcv = _parse_text_array(row[5]) if row[5] else None
        col.mcf = list(row[6]) if row[6] else None
        col.correlation = row[7]
    indexes = [
        ExistingIndex(
            oid=row[0],
            name=row[1],
            schema=row[2],
            table_oid=row[3],
            method=row[4],
            unique=row[5],
            primary=row[6],
            valid=row[7],
            ready=row[8],
            definition=row[9],
            size_bytes=int(row[10]),
            scans=int(row[11]),
            constraint=row[12],
            partitioned=bool(row[13]),
            parent_index=row[14],
            key_count=int(row[15]),
        )
        for row in conn.execute(_INDEXES, (oids,))
    ]
    path_row = conn.execute("SELECT current_schemas(false)").fetchone()
    extensions = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT e.extname, n.nspname FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace"
        )
    }
    db = conn.execute(
        "SELECT d.datcollate, current_setting('server_version_num')::int, s.stats_reset,"
        " extract(epoch FROM now() - s.stats_reset)::float8"
        " FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid"
        " WHERE d.datname = current_database()"
    ).fetchone() or ("", 0, None, None)
    settings = {r[0]: float(r[1]) for r in conn.execute(_SETTINGS)}
    return Catalog(
        relations=relations,
        by_name={(r.schema, r.name): r.oid for r in relations.values()},
        indexes=indexes,
        search_path=list(path_row[0]) if path_row else ["public"],
        extensions=extensions,
        c_collation=db[0] in ("C", "POSIX"),
        server_version=int(db[1]),
        stats_reset=db[2],
        stats_age_s=db[3],
        settings=settings,
    )


def _leaves(relations: dict[int, Relation], rel: Relation) -> list[Relation]:
    if not rel.children:
        return [rel]
    out: list[Relation] = []
    for child in rel.children:
        out.extend(_leaves(relations, relations[child]))
    return out


def _parse_text_array(text: str) -> list[str]:
    """Elements of a PostgreSQL array literal (``{a,"b c",NULL}``) as strings."""
    out: list[str] = []
    i, n = 1, len(text) - 1
    while i < n:
        if text[i] == '"':
            j = i + 1
            buf = []
            while j < n and text[j] != '"':
                if text[j] == "\\":
                    j += 1
                buf.append(text[j])
                j += 1
            out.append("".join(buf))
            i = j + 2
        else:
            j = text.find(",", i)
            j = n if j == -1 else j
            out.append(text[i:j])
            i = j + 1
    return out
