"""A schema as data for diagrams and docs, read from a live database or from SQLAlchemy.

From a database, everything comes from the linter's lock-free catalog
snapshot; index and CHECK definitions are added with ``pg_get_indexdef`` and
``pg_get_constraintdef`` when they can be read within ``lock_timeout_ms``
(those functions lock the table briefly), else they are built from columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from dbopt.lint import catalog as catalog_mod
from dbopt.postgres.connect import Target, read_only_connection
from dbopt.postgres.render import qualified

__all__ = [
    "ColumnDoc",
    "ForeignKeyDoc",
    "IndexDoc",
    "SchemaDoc",
    "TableDoc",
    "from_database",
    "from_metadata",
]


@dataclass
class ColumnDoc:
    """A column: name, SQL type, nullability, default, keys, comment."""

    name: str
    type: str
    nullable: bool = True
    default: str | None = None
    primary_key: bool = False
    foreign_key: bool = False
    unique: bool = False
    comment: str | None = None


@dataclass
class ForeignKeyDoc:
    """A foreign key from ``columns`` to ``ref_table (ref_columns)``."""

    name: str | None
    columns: list[str]
    ref_schema: str | None
    ref_table: str
    ref_columns: list[str]
    on_delete: str | None = None
    #: For a partitioned table whose foreign key lives on its partitions rather than on
    #: the parent: the partitions that carry it (empty for a key on the table itself).
    partitions: list[str] = field(default_factory=list)


@dataclass
class IndexDoc:
    """An index; ``size_bytes`` and ``scans`` are known for a live database only."""

    name: str
    columns: list[str]
    unique: bool = False
    primary: bool = False
    definition: str | None = None
    size_bytes: int | None = None
    scans: int | None = None


@dataclass
class TableDoc:
    """A table with what diagrams and docs show about it."""

    schema: str | None
    name: str
    columns: list[ColumnDoc] = field(default_factory=list)
    foreign_keys: list[ForeignKeyDoc] = field(default_factory=list)
    indexes: list[IndexDoc] = field(default_factory=list)
    checks: list[tuple[str, str]] = field(default_factory=list)
    rows: float | None = None
    size_bytes: int | None = None
    index_bytes: int | None = None
    comment: str | None = None
    partitions: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        """``schema.name`` quoted as needed."""
        return qualified(self.schema, self.name)


@dataclass
class SchemaDoc:
    """The tables of a schema (partitions folded into their parent)."""

    tables: list[TableDoc]
    source: str = "database"
    database: str | None = None

    def table(self, schema: str | None, name: str) -> TableDoc | None:
        """The table ``schema.name`` (any schema when ``schema`` is None)."""
        return next(
            (t for t in self.tables if t.name == name and (schema is None or t.schema == schema)),
            None,
        )


_ON_DELETE = {"a": None, "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def _definitions(
    conn: psycopg.Connection[dict[str, Any]], oids: list[int], lock_ms: int
) -> tuple[dict[int, str], dict[int, str]]:
    """Index and CHECK definitions, or empty maps when a table is locked right now."""
    try:
        with conn.transaction():
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{lock_ms}ms",))
            idx = conn.execute(
                "SELECT indexrelid AS oid, pg_get_indexdef(indexrelid) AS def FROM pg_index"
                " WHERE indrelid = ANY(%s::oid[])",
                (oids,),
            ).fetchall()
            chk = conn.execute(
                "SELECT oid, pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE contype = 'c' AND conrelid = ANY(%s::oid[])",
                (oids,),
            ).fetchall()
    except (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled):
        return {}, {}
    return {r["oid"]: r["def"] for r in idx}, {r["oid"]: r["def"] for r in chk}


def from_database(
    target: Target,
    *,
    schemas: Sequence[str] = (),
    lock_timeout_ms: int = 500,
    statement_timeout_ms: int = 10000,
) -> SchemaDoc:
    """The schema of a live database (all non-system schemas unless ``schemas`` is given)."""
    with read_only_connection(
        target,
        tool="schema",
        statement_timeout_ms=statement_timeout_ms,
        lock_timeout_ms=max(lock_timeout_ms, 1),
    ) as conn:
        cat = catalog_mod.load(conn, schemas=schemas)
        index_defs, check_defs = _definitions(conn, list(cat.tables), lock_timeout_ms)
        checks_by_table: dict[int, list[tuple[str, str]]] = {}
        for table in cat:
            for con in table.constraints:
                if con.type == "c" and not con.inherited:
                    checks_by_table.setdefault(table.oid, []).append(
                        (con.name, check_defs.get(con.oid, "CHECK (...)"))
                    )
    docs = []
    bs = cat.block_size
    for table in cat.top_level():
        leaves = cat.leaves(table)
        pk = table.primary_key
        pk_cols = set(pk.columns) if pk else set()
        fk_cols = {n for c in table.constraints if c.type == "f" for n in c.columns}
        unique_cols = {
            c.columns[0] for c in table.constraints if c.type == "u" and len(c.columns) == 1
        }
        doc = TableDoc(
            schema=table.schema,
            name=table.name,
            comment=table.comment,
            rows=sum(max(t.reltuples, 0) for t in leaves)
            if any(t.reltuples >= 0 for t in leaves)
            else None,
            size_bytes=sum((t.relpages + t.toast_pages) for t in leaves) * bs,
            index_bytes=sum(i.relpages for t in leaves for i in t.indexes) * bs,
            partitions=[cat.tables[c].name for c in table.children if c in cat.tables],
            checks=checks_by_table.get(table.oid, []),
        )
        for col in table.columns.values():
            doc.columns.append(
                ColumnDoc(
                    name=col.name,
                    type=col.type,
                    nullable=not col.not_null,
                    default=col.default,
                    primary_key=col.num in pk_cols,
                    foreign_key=col.num in fk_cols,
                    unique=col.num in unique_cols,
                    comment=col.comment,
                )
            )
        for con in table.constraints:
            if con.type == "f" and not con.inherited:
                ref = cat.tables.get(con.ref_relid)
                ref_cols = ref.column_names(con.ref_columns) if ref else []
                doc.foreign_keys.append(
                    ForeignKeyDoc(
                        con.name,
                        table.column_names(con.columns),
                        con.ref_schema,
                        con.ref_name or "?",
                        ref_cols,
                        _ON_DELETE.get(con.on_delete),
                    )
                )
        if table.partitioned:
            for fk in _partition_foreign_keys(cat, table, doc.foreign_keys):
                doc.foreign_keys.append(fk)
                for col_doc in doc.columns:
                    col_doc.foreign_key = col_doc.foreign_key or col_doc.name in fk.columns
        for idx in table.indexes:
            parts = [idx] + [
                i for t in leaves if t is not table for i in t.indexes if i.parent == idx.oid
            ]
            scans = [p.idx_scan for p in parts if p.idx_scan is not None]
            doc.indexes.append(
                IndexDoc(
                    name=idx.name,
                    columns=table.column_names(idx.key_columns),
                    unique=idx.is_unique,
                    primary=idx.is_primary,
                    definition=index_defs.get(idx.oid),
                    size_bytes=sum(p.relpages for p in parts) * bs,
                    scans=sum(scans) if scans else None,
                )
            )
        docs.append(doc)
    return SchemaDoc(docs, source="database", database=cat.database)


def _partition_foreign_keys(
    cat: catalog_mod.Catalog, table: catalog_mod.Table, own: list[ForeignKeyDoc]
) -> list[ForeignKeyDoc]:
    """Foreign keys that partitions of ``table`` declare and the parent does not.

    Pagila's ``payment`` is the model: its foreign keys were added partition by
    partition, so the parent has none. Each distinct (columns, referenced
    table, referenced columns) becomes one key of the parent, listing the
    partitions that carry it.
    """
    have = {(tuple(f.columns), f.ref_schema, f.ref_table, tuple(f.ref_columns)) for f in own}
    found: dict[tuple[Any, ...], ForeignKeyDoc] = {}
    for leaf in cat.leaves(table):
        if leaf is table:
            continue
        for con in leaf.constraints:
            if con.type != "f" or con.inherited:
                continue
            ref = cat.tables.get(con.ref_relid)
            cols = leaf.column_names(con.columns)
            ref_cols = ref.column_names(con.ref_columns) if ref else []
            key = (tuple(cols), con.ref_schema, con.ref_name or "?", tuple(ref_cols))
            if key in have:
                continue
            if key not in found:
                found[key] = ForeignKeyDoc(
                    None,
                    cols,
                    con.ref_schema,
                    con.ref_name or "?",
                    ref_cols,
                    _ON_DELETE.get(con.on_delete),
                )
            found[key].partitions.append(leaf.name)
    return list(found.values())


def _type(column: Any) -> str:
    from sqlalchemy.dialects import postgresql

    try:
        dialect_class: Any = postgresql.dialect
        dialect = dialect_class()
        return str(column.type.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - a type PostgreSQL cannot render: show its repr
        return str(column.type)


def from_metadata(metadata: Any) -> SchemaDoc:
    """The schema described by SQLAlchemy ``metadata`` (or a declarative base)."""
    meta = getattr(metadata, "metadata", metadata)
    docs = []
    for table in meta.sorted_tables:
        pk_cols = {c.name for c in table.primary_key.columns}
        fk_cols = {e.parent.name for fk in table.foreign_key_constraints for e in fk.elements}
        doc = TableDoc(schema=table.schema, name=table.name, comment=table.comment)
        for col in table.columns:
            default = None
            if col.server_default is not None:
                arg = getattr(col.server_default, "arg", None)
                default = str(getattr(arg, "text", arg))
            doc.columns.append(
                ColumnDoc(
                    name=col.name,
                    type=_type(col),
                    nullable=bool(col.nullable),
                    default=default,
                    primary_key=col.name in pk_cols,
                    foreign_key=col.name in fk_cols,
                    unique=bool(col.unique),
                    comment=col.comment,
                )
            )
        for fk in table.foreign_key_constraints:
            targets = [e.target_fullname.split(".") for e in fk.elements]
            first = targets[0]
            doc.foreign_keys.append(
                ForeignKeyDoc(
                    str(fk.name) if fk.name else None,
                    [e.parent.name for e in fk.elements],
                    first[-3] if len(first) >= 3 else None,
                    first[-2],
                    [t[-1] for t in targets],
                    fk.ondelete,
                )
            )
        for index in table.indexes:
            doc.indexes.append(
                IndexDoc(
                    name=str(index.name),
                    columns=[c.name for c in index.columns],
                    unique=bool(index.unique),
                )
            )
        docs.append(doc)
    return SchemaDoc(docs, source="metadata")
