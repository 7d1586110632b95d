"""What the linter knows about a database: one snapshot of catalog and statistics.

:func:`load` runs the queries of :mod:`.queries` in one read-only REPEATABLE
READ transaction (so every rule sees the same moment), each in a savepoint: a
query that times out costs only the rules that need it, listed in
:attr:`Catalog.errors`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from dbopt.errors import ConfigurationError
from dbopt.lint import queries
from dbopt.postgres.render import qualified

__all__ = [
    "PARTS",
    "Catalog",
    "Column",
    "ColumnStats",
    "Constraint",
    "Index",
    "SequenceInfo",
    "Table",
    "load",
]

#: The catalog queries :func:`load` can run, by name.
PARTS = ("relations", "columns", "constraints", "indexes", "sequences", "stats")


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
) -> Catalog:
    """Read the catalog of ``schemas`` (all non-system schemas when empty) in one snapshot.

    ``parts`` names the queries to run (:data:`PARTS`: all of them); a caller
    that needs only sequences and their owners reads just those. Inside a
    transaction the caller opened, the queries run in a savepoint of it.
    """
    params: dict[str, Any] = {
        "schemas": list(schemas),
        "exclude_schemas": list(exclude_schemas),
        "max_values": max_values,
    }
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ConfigurationError(f"unknown catalog parts: {', '.join(sorted(unknown))}")
    idle = connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with connection.transaction(), connection.cursor(row_factory=dict_row) as conn:
        if idle:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        server = conn.execute(queries.SERVER).fetchone() or {}
        cat = Catalog(
            version_num=int(server.get("version_num", 0)),
            database=str(server.get("database", "")),
            stats_reset=server.get("stats_reset"),
            block_size=int(server.get("block_size", 8192)),
            stats_age_s=server.get("stats_age_s"),
        )
        for row in _run(conn, "relations", queries.RELATIONS, params, cat.errors, parts):
            cat.tables[row["oid"]] = Table(**row)
        for table in cat.tables.values():
            if table.parent in cat.tables:
                cat.tables[table.parent].children.append(table.oid)
        for row in _run(conn, "columns", queries.COLUMNS, params, cat.errors, parts):
            rel = cat.tables.get(row.pop("relid"))
            if rel is not None:
                default = row.pop("default_expr")
                rel.columns[row["num"]] = Column(default=default, **row)
        for row in _run(conn, "constraints", queries.CONSTRAINTS, params, cat.errors, parts):
            rel = cat.tables.get(row["relid"])
            if rel is not None:
                rel.constraints.append(Constraint(**row))
        for row in _run(conn, "indexes", queries.INDEXES, params, cat.errors, parts):
            rel = cat.tables.get(row["relid"])
            if rel is not None:
                rel.indexes.append(_index(row, rel))
        for row in _run(conn, "sequences", queries.SEQUENCES, params, cat.errors, parts):
            cat.sequences.append(SequenceInfo(**row))
        by_name = {(t.schema, t.name): t for t in cat.tables.values()}
        for row in _run(conn, "stats", queries.STATS, params, cat.errors, parts):
            rel = by_name.get((row["schema"], row["table"]))
            if rel is None or row["inherited"] != rel.partitioned:
                continue
            num = next((c.num for c in rel.columns.values() if c.name == row["column"]), None)
            if num is not None and row["values"] is not None:
                cat.stats[(rel.oid, row["column"])] = ColumnStats(
                    null_frac=row["null_frac"] or 0.0,
                    n_distinct=row["n_distinct"] or 0.0,
                    values=list(row["values"]),
                    freqs=list(row["freqs"]),
                )
    return cat


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
