"""One catalog snapshot of a PostgreSQL database, shared by the features.

Relations (with their kind and partition parent), columns, constraints
(foreign keys included), indexes (keys, predicates, the parent index a
partition's index is attached to, scans), sequences and column statistics.
Lint's rules, the index advisor's findings on existing indexes (the same
rules), the health report's sequence check and the schema ERD all read it.

With the ``planner`` part (:data:`PLANNER`), the same snapshot also carries
what the index advisor's cost model needs: views, materialized views and
foreign tables (in :attr:`Catalog.others`), sizes, index definitions, full
planner statistics (:attr:`Catalog.planner_stats`), settings and extensions.
Those calls (``pg_relation_size``, ``pg_get_indexdef``) take an
AccessShareLock, so only the advisor asks for them.

:func:`load` runs the queries below in one read-only REPEATABLE READ
transaction (so every reader sees the same moment), each in a savepoint: a
query that times out costs only what needs it, listed in
:attr:`Catalog.errors`. ``parts`` picks the queries a caller needs.

Every query reads ``pg_catalog`` and the statistics views only. None calls a
function that opens a user relation: ``pg_get_indexdef``,
``pg_get_constraintdef``, ``pg_get_expr`` with a relation and
``pg_relation_size`` all take an AccessShareLock on the table and would wait
behind a migration holding ACCESS EXCLUSIVE, so sizes come from
``relpages`` and expressions are compared as their stored node trees.
``%(schemas)s`` is the list of schemas to read (an empty list means every
schema except the system ones).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbopt.errors import ConfigurationError
from dbopt.postgres.render import qualified

__all__ = [
    "PARTS",
    "PLANNER",
    "SPACE",
    "Catalog",
    "Column",
    "ColumnStats",
    "Constraint",
    "Index",
    "SequenceInfo",
    "Table",
    "load",
]

_IN_SCOPE = """
  n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR n.nspname = ANY(%(schemas)s::text[]))
  AND n.nspname <> ALL(%(exclude_schemas)s::text[])
  AND NOT EXISTS (
    SELECT 1 FROM pg_depend e
    WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
  AND (%(relids)s::oid[] IS NULL OR c.oid = ANY(%(relids)s::oid[])
       OR EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f'
                  AND r.conrelid = c.oid AND r.confrelid = ANY(%(relids)s::oid[])))
"""

SERVER = """
SELECT current_setting('server_version_num')::int AS version_num,
       current_database() AS database,
       (SELECT stats_reset FROM pg_stat_database WHERE datname = current_database())
         AS stats_reset,
       (SELECT extract(epoch FROM now() - stats_reset)::float8
        FROM pg_stat_database WHERE datname = current_database()) AS stats_age_s,
       current_setting('block_size')::int AS block_size,
       current_schemas(false)::text[] AS search_path,
       (SELECT datcollate FROM pg_database WHERE datname = current_database())::text
         AS collate
"""

RELATIONS = f"""
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind AS kind,
       c.relispartition AS is_partition, c.reltuples::float8 AS reltuples,
       c.relpages::int8 AS relpages, COALESCE(t.relpages, 0)::int8 AS toast_pages,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
       CASE WHEN c.relkind = 'r' THEN pg_stat_get_numscans(c.oid) END AS seq_scan,
       CASE WHEN c.relkind = 'r' THEN
         (SELECT sum(pg_stat_get_numscans(x.indexrelid))::int8 FROM pg_index x
          WHERE x.indrelid = c.oid) END AS idx_scan,
       CASE WHEN c.relkind IN ('r', 'm') THEN pg_stat_get_live_tuples(c.oid) END AS n_live_tup,
       CASE WHEN c.relkind = 'r' THEN pg_stat_get_dead_tuples(c.oid) END AS n_dead_tup,
       d.description AS comment,
       pg_stat_get_tuples_inserted(c.oid) AS n_tup_ins,
       pg_stat_get_tuples_updated(c.oid) AS n_tup_upd,
       pg_stat_get_tuples_deleted(c.oid) AS n_tup_del,
       pg_stat_get_tuples_hot_updated(c.oid) AS n_tup_hot_upd,
       (pg_stat_get_last_analyze_time(c.oid) IS NOT NULL
        OR pg_stat_get_last_autoanalyze_time(c.oid) IS NOT NULL
        OR EXISTS (SELECT 1 FROM pg_statistic st WHERE st.starelid = c.oid)) AS analyzed,
       CASE WHEN %(planner)s AND c.relkind IN ('r', 'm') THEN pg_relation_size(c.oid) END
         AS size_bytes
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class t ON t.oid = c.reltoastrelid
LEFT JOIN pg_description d
  ON d.objoid = c.oid AND d.classoid = 'pg_class'::regclass AND d.objsubid = 0
WHERE c.relkind::text = ANY(%(kinds)s::text[]) AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY n.nspname, c.relname
"""

COLUMNS = f"""
SELECT a.attrelid AS relid, a.attnum::int AS num, a.attname AS name,
       format_type(a.atttypid, a.atttypmod) AS type, t.typname AS typname,
       t.typtype AS typtype, t.typcategory AS category, a.attnotnull AS not_null,
       a.attidentity AS identity, a.attgenerated AS generated,
       CASE WHEN a.atthasdef AND a.attgenerated = '' THEN
         (SELECT pg_get_expr(ad.adbin, 0) FROM pg_attrdef ad
          WHERE ad.adrelid = a.attrelid AND ad.adnum = a.attnum)
       END AS default_expr,
       d.description AS comment, co.collname::text AS collation
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_collation co ON co.oid = a.attcollation
LEFT JOIN pg_description d
  ON d.objoid = a.attrelid AND d.classoid = 'pg_class'::regclass AND d.objsubid = a.attnum
WHERE c.relkind::text = ANY(%(kinds)s::text[]) AND c.relpersistence <> 't' AND a.attnum > 0
  AND NOT a.attisdropped AND {_IN_SCOPE}
ORDER BY a.attrelid, a.attnum
"""

CONSTRAINTS = f"""
SELECT co.oid, co.conname AS name, co.contype AS type, co.conrelid AS relid,
       co.confrelid AS ref_relid, rn.nspname AS ref_schema, rc.relname AS ref_name,
       COALESCE(co.conkey::int[], '{{}}') AS columns,
       COALESCE(co.confkey::int[], '{{}}') AS ref_columns,
       co.convalidated AS validated, co.conindid AS index_oid,
       co.conparentid <> 0 AS inherited, co.confdeltype AS on_delete,
       co.confupdtype AS on_update
FROM pg_constraint co
JOIN pg_class c ON c.oid = co.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = co.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY co.conrelid, co.conname
"""

# Node trees minus their parse locations, so two identical expressions compare equal.
_TREE = "regexp_replace({0}::text, ' :location -?[0-9]+', '', 'g')"

INDEXES = f"""
SELECT i.indexrelid AS oid, ic.relname AS name, i.indrelid AS relid,
       ic.relkind = 'I' AS partitioned, am.amname AS method,
       i.indisunique AS is_unique, i.indisprimary AS is_primary,
       i.indisexclusion AS is_exclusion, i.indisvalid AS is_valid,
       i.indnkeyatts::int AS key_count, i.indkey::int2[]::int[] AS columns,
       i.indclass::oid[]::int8[] AS opclasses, i.indcollation::oid[]::int8[] AS collations,
       i.indoption::int2[]::int[] AS options,
       {_TREE.format("i.indexprs")} AS expressions,
       {_TREE.format("i.indpred")} AS predicate,
       ic.relpages::int8 AS relpages,
       (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = i.indexrelid LIMIT 1)
         AS parent,
       CASE WHEN ic.relkind = 'i' THEN pg_stat_get_numscans(i.indexrelid) END AS idx_scan,
       EXISTS (SELECT 1 FROM pg_constraint k
               WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
                 AND k.contype IN ('p', 'u', 'x')) AS backs_constraint,
       (SELECT k.contype::text FROM pg_constraint k
        WHERE k.conindid = i.indexrelid AND k.conrelid = i.indrelid
          AND k.contype IN ('p', 'u', 'x') LIMIT 1) AS constraint_type,
       i.indisready AS is_ready,
       CASE WHEN %(planner)s THEN pg_get_indexdef(i.indexrelid) END AS definition,
       CASE WHEN %(planner)s AND ic.relkind = 'i' THEN pg_relation_size(i.indexrelid) END
         AS size_bytes
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind::text = ANY(%(kinds)s::text[]) AND c.relpersistence <> 't' AND {_IN_SCOPE}
ORDER BY i.indrelid, ic.relname
"""

# Planner statistics. Without the planner part, short MCV lists only: the enum-like rules
# need the whole value set; the advisor's cost model reads every column.
STATS = """
SELECT s.schemaname AS schema, s.tablename AS table, s.attname AS column,
       s.inherited, s.null_frac::float8, s.n_distinct::float8, s.avg_width,
       s.correlation::float8 AS correlation,
       s.most_common_vals::text::text[] AS values,
       s.most_common_freqs::float8[] AS freqs
FROM pg_stats s
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND s.schemaname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR s.schemaname = ANY(%(schemas)s::text[]))
  AND (%(planner)s OR (s.most_common_freqs IS NOT NULL
                       AND array_length(s.most_common_freqs, 1) <= %(max_values)s))
"""

# The planner part's server facts: the cost settings and where each extension lives.
SETTINGS = """
SELECT name, setting::float8 AS value FROM pg_settings
WHERE name IN ('random_page_cost', 'seq_page_cost', 'cpu_tuple_cost',
               'cpu_index_tuple_cost', 'cpu_operator_cost', 'effective_cache_size',
               'shared_buffers')
"""

EXTENSIONS = """
SELECT e.extname AS name, n.nspname AS schema
FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
"""

# pg_sequences reads each sequence's last value (a lock on the sequence, never on a table).
SEQUENCES = """
SELECT c.oid, s.schemaname AS schema, s.sequencename AS name, s.data_type::text AS data_type,
       s.min_value, s.max_value, s.increment_by, s.cycle, s.last_value,
       dep.refobjid AS owner_relid, dep.refobjsubid::int AS owner_column
FROM pg_sequences s
JOIN pg_namespace n ON n.nspname = s.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
LEFT JOIN pg_depend dep
  ON dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
 AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i')
WHERE s.schemaname NOT IN ('pg_catalog', 'information_schema')
  AND s.schemaname NOT LIKE 'pg\\_%%'
  AND (cardinality(%(schemas)s::text[]) = 0 OR s.schemaname = ANY(%(schemas)s::text[]))
  AND s.schemaname <> ALL(%(exclude_schemas)s::text[])
ORDER BY s.schemaname, s.sequencename
"""

# The largest tables and indexes (sizes take an AccessShareLock: the dashboard's Space page).
SPACE = """
SELECT CASE c.relkind WHEN 'i' THEN 'index' WHEN 'I' THEN 'index' ELSE 'table' END AS kind,
       n.nspname AS schema, c.relname AS name,
       CASE WHEN c.relkind IN ('i', 'I') THEN t.relname END AS table,
       pg_relation_size(c.oid)::int8 AS bytes,
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_relation_size(c.oid)
            ELSE pg_total_relation_size(c.oid) END::int8 AS total_bytes,
       CASE WHEN c.reltuples >= 0 AND c.relkind NOT IN ('i', 'I')
            THEN c.reltuples::float8 END AS rows
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index x ON x.indexrelid = c.oid
LEFT JOIN pg_class t ON t.oid = x.indrelid
WHERE c.relkind IN ('r', 'm', 'i', 'p', 'I')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
  AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast_temp%%'
ORDER BY total_bytes DESC, n.nspname, c.relname
LIMIT %(limit)s
"""

#: The catalog queries :func:`load` runs by default, by name.
PARTS = ("relations", "columns", "constraints", "indexes", "sequences", "stats")

#: The extra part for the index advisor's cost model (see the module's docstring).
PLANNER = "planner"


@dataclass
class Column:
    """A column of a table."""

    num: int
    name: str
    type: str
    typname: str
    typtype: str
    category: str
    not_null: bool
    identity: str = ""
    generated: str = ""
    default: str | None = None
    comment: str | None = None
    collation: str | None = None


@dataclass
class Constraint:
    """A primary key, unique, check, foreign key or exclusion constraint."""

    oid: int
    name: str
    type: str
    relid: int
    columns: list[int]
    validated: bool
    inherited: bool
    ref_relid: int = 0
    ref_schema: str | None = None
    ref_name: str | None = None
    ref_columns: list[int] = field(default_factory=list)
    index_oid: int = 0
    on_delete: str = ""
    on_update: str = ""


@dataclass
class Index:
    """An index; ``keys`` holds one token per key column (``"3"`` or ``"expr:<tree>"``)."""

    oid: int
    name: str
    relid: int
    method: str
    is_unique: bool
    is_primary: bool
    is_valid: bool
    partitioned: bool
    key_count: int
    columns: list[int]
    keys: list[str]
    include: list[str]
    opclasses: list[int]
    collations: list[int]
    options: list[int]
    predicate: str | None
    relpages: int
    idx_scan: int | None
    parent: int | None
    backs_constraint: bool
    is_exclusion: bool = False
    is_ready: bool = True
    constraint_type: str | None = None
    #: ``pg_get_indexdef`` and the built size: read with the planner part only.
    definition: str | None = None
    size_bytes: int | None = None

    @property
    def key_columns(self) -> list[int]:
        """Attribute numbers of the key columns (0 for an expression)."""
        return self.columns[: self.key_count]


@dataclass
class Table:
    """A table or partitioned table with its columns, constraints and indexes."""

    oid: int
    schema: str
    name: str
    kind: str
    is_partition: bool
    reltuples: float
    relpages: int
    toast_pages: int
    parent: int | None
    seq_scan: int | None
    idx_scan: int | None
    n_live_tup: int | None
    n_dead_tup: int | None
    comment: str | None = None
    n_tup_ins: int = 0
    n_tup_upd: int = 0
    n_tup_del: int = 0
    n_tup_hot_upd: int = 0
    analyzed: bool = False
    #: ``pg_relation_size``: read with the planner part only.
    size_bytes: int | None = None
    columns: dict[int, Column] = field(default_factory=dict)
    constraints: list[Constraint] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)
    children: list[int] = field(default_factory=list)

    @property
    def sql_name(self) -> str:
        """``schema.name``, each part quoted as needed (what fixes and findings print)."""
        return qualified(self.schema, self.name)

    @property
    def partitioned(self) -> bool:
        """True for a partitioned (parent) table."""
        return self.kind == "p"

    def column(self, num: int) -> Column | None:
        """The column with attribute number ``num``."""
        return self.columns.get(num)

    def column_names(self, nums: Sequence[int]) -> list[str]:
        """Names of the columns ``nums`` (``"(expression)"`` for 0)."""
        out = []
        for num in nums:
            col = self.columns.get(num)
            out.append(col.name if col else "(expression)")
        return out

    @property
    def primary_key(self) -> Constraint | None:
        """The primary key constraint, if any."""
        return next((c for c in self.constraints if c.type == "p"), None)


@dataclass
class SequenceInfo:
    """A sequence with its last value and, if any, the column that owns it."""

    oid: int
    schema: str
    name: str
    data_type: str
    min_value: int
    max_value: int
    increment_by: int
    cycle: bool
    last_value: int | None
    owner_relid: int | None
    owner_column: int | None

    @property
    def sql_name(self) -> str:
        """``schema.name`` quoted as needed."""
        return qualified(self.schema, self.name)


@dataclass
class ColumnStats:
    """The planner's most-common-values list of a column (from ``pg_stats``)."""

    null_frac: float
    n_distinct: float
    values: list[str]
    freqs: list[float]
    avg_width: int | None = None
    correlation: float | None = None


@dataclass
class Catalog:
    """A snapshot of the linted schemas; ``errors`` names the queries that failed."""

    version_num: int
    database: str
    stats_reset: datetime | None
    block_size: int
    stats_age_s: float | None = None
    tables: dict[int, Table] = field(default_factory=dict)
    sequences: list[SequenceInfo] = field(default_factory=list)
    stats: dict[tuple[int, str], ColumnStats] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    search_path: list[str] = field(default_factory=list)
    collate: str = ""
    #: Planner part: views, materialized views and foreign tables, by oid.
    others: dict[int, Table] = field(default_factory=dict)
    #: Planner part: every analyzed column's statistics (MCV lists of any length).
    planner_stats: dict[tuple[int, str], ColumnStats] = field(default_factory=dict)
    settings: dict[str, float] = field(default_factory=dict)
    extensions: dict[str, str] = field(default_factory=dict)
    #: What readers derive from the snapshot once and share (e.g. the index plan).
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __iter__(self) -> Iterator[Table]:
        return iter(self.tables.values())

    def top_level(self) -> Iterator[Table]:
        """Tables that are not partitions (parents and ordinary tables)."""
        return (t for t in self.tables.values() if not t.is_partition)

    def leaves(self, table: Table) -> list[Table]:
        """``table`` itself if it holds rows, else every leaf partition under it."""
        if not table.children:
            return [table]
        out: list[Table] = []
        for child in table.children:
            sub = self.tables.get(child)
            if sub is not None:
                out.extend(self.leaves(sub))
        return out

    def relation(self, oid: int) -> Table | None:
        """The table, or with the planner part the view or foreign table, ``oid``."""
        return self.tables.get(oid) or self.others.get(oid)

    def index(self, oid: int) -> Index | None:
        """The index with ``oid`` (searching every table)."""
        for table in self.tables.values():
            for idx in table.indexes:
                if idx.oid == oid:
                    return idx
        return None


def _split_nodes(tree: str | None) -> list[str]:
    """Top-level nodes of a ``pg_node_tree`` list such as ``({A ...} {B ...})``."""
    if not tree:
        return []
    text = tree.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    nodes, depth, start = [], 0, -1
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and start >= 0:
                nodes.append(text[start : i + 1])
    return nodes


def _run(
    conn: psycopg.Cursor[dict[str, Any]],
    name: str,
    sql: str,
    params: dict[str, Any],
    errors: dict[str, str],
    parts: Collection[str] = (),
) -> list[dict[str, Any]]:
    if name not in parts:
        return []
    try:
        with conn.connection.transaction():
            return conn.execute(sql, params).fetchall()
    except psycopg.errors.QueryCanceled as exc:  # statement or lock timeout
        errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"
    except psycopg.errors.LockNotAvailable as exc:
        errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"
    except psycopg.errors.InsufficientPrivilege as exc:
        errors[name] = f"{type(exc).__name__}: {str(exc).strip()}"
    return []


def load(
    connection: psycopg.Connection[Any],
    *,
    schemas: Sequence[str] = (),
    exclude_schemas: Sequence[str] = (),
    max_values: int = 10,
    parts: Collection[str] = PARTS,
    sequence_owners_only: bool = False,
) -> Catalog:
    """Read the catalog of ``schemas`` (all non-system schemas when empty) in one snapshot.

    ``parts`` names the queries to run (:data:`PARTS`: all of them, plus
    :data:`PLANNER` for the advisor). ``sequence_owners_only`` reads tables
    only when they own a sequence or have a foreign key to one that does
    (what the overflow checks need). Inside a transaction the caller opened,
    the queries run in a savepoint of it.
    """
    planner = PLANNER in parts
    params: dict[str, Any] = {
        "schemas": list(schemas),
        "exclude_schemas": list(exclude_schemas),
        "max_values": max_values,
        "relids": None,
        "planner": planner,
        "kinds": ["r", "p", "m", "v", "f"] if planner else ["r", "p"],
    }
    unknown = set(parts) - {*PARTS, PLANNER}
    if unknown:
        raise ConfigurationError(f"unknown catalog parts: {', '.join(sorted(unknown))}")
    idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with connection.transaction(), connection.cursor(row_factory=dict_row) as conn:
        if idle:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        server = conn.execute(SERVER).fetchone() or {}
        cat = Catalog(
            version_num=int(server.get("version_num", 0)),
            database=str(server.get("database", "")),
            stats_reset=server.get("stats_reset"),
            block_size=int(server.get("block_size", 8192)),
            stats_age_s=server.get("stats_age_s"),
            search_path=list(server.get("search_path") or []),
            collate=str(server.get("collate") or ""),
        )
        for row in _run(conn, "sequences", SEQUENCES, params, cat.errors, parts):
            cat.sequences.append(SequenceInfo(**row))
        if sequence_owners_only:
            params["relids"] = sorted({s.owner_relid for s in cat.sequences if s.owner_relid})
        for row in _run(conn, "relations", RELATIONS, params, cat.errors, parts):
            home = cat.tables if row["kind"] in ("r", "p") else cat.others
            home[row["oid"]] = Table(**row)
        for table in cat.tables.values():
            if table.parent in cat.tables:
                cat.tables[table.parent].children.append(table.oid)
        for row in _run(conn, "columns", COLUMNS, params, cat.errors, parts):
            rel = cat.relation(row.pop("relid"))
            if rel is not None:
                default = row.pop("default_expr")
                rel.columns[row["num"]] = Column(default=default, **row)
        for row in _run(conn, "constraints", CONSTRAINTS, params, cat.errors, parts):
            rel = cat.tables.get(row["relid"])
            if rel is not None:
                rel.constraints.append(Constraint(**row))
        for row in _run(conn, "indexes", INDEXES, params, cat.errors, parts):
            rel = cat.relation(row["relid"])
            if rel is not None:
                rel.indexes.append(_index(row, rel))
        _load_stats(cat, conn, params, parts)
        if planner:
            for row in _run(conn, PLANNER, SETTINGS, params, cat.errors, parts):
                cat.settings[row["name"]] = float(row["value"])
            for row in _run(conn, PLANNER, EXTENSIONS, params, cat.errors, parts):
                cat.extensions[row["name"]] = row["schema"]
    return cat


def _load_stats(
    cat: Catalog,
    conn: psycopg.Cursor[dict[str, Any]],
    params: dict[str, Any],
    parts: Collection[str],
) -> None:
    """``pg_stats`` rows: short MCV lists in ``stats``, everything in ``planner_stats``."""
    if "stats" not in parts and PLANNER not in parts:
        return
    by_name = {(t.schema, t.name): t for t in (*cat.tables.values(), *cat.others.values())}
    for row in _run(conn, "stats", STATS, params, cat.errors, {"stats"}):
        rel = by_name.get((row["schema"], row["table"]))
        if rel is None or row["inherited"] != rel.partitioned:
            continue
        stats = ColumnStats(
            null_frac=row["null_frac"] or 0.0,
            n_distinct=row["n_distinct"] or 0.0,
            values=list(row["values"] or ()),
            freqs=list(row["freqs"] or ()),
            avg_width=row["avg_width"],
            correlation=row["correlation"],
        )
        if params["planner"]:
            cat.planner_stats[(rel.oid, row["column"])] = stats
        short = row["values"] is not None and len(stats.freqs) <= params["max_values"]
        known = any(c.name == row["column"] for c in rel.columns.values())
        if "stats" in parts and short and known and rel.kind in ("r", "p"):
            cat.stats[(rel.oid, row["column"])] = stats


def _index(row: dict[str, Any], rel: Table) -> Index:
    expressions = _split_nodes(row.pop("expressions"))
    columns: list[int] = row["columns"]
    key_count: int = row["key_count"]
    keys, exprs = [], iter(expressions)
    for num in columns[:key_count]:
        keys.append(str(num) if num else "expr:" + next(exprs, "?"))
    include = [rel.columns[n].name if n in rel.columns else "?" for n in columns[key_count:]]
    predicate = row.pop("predicate")
    return Index(keys=keys, include=include, predicate=predicate or None, **row)
