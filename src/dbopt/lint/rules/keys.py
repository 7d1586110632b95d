"""Keys: foreign keys without an index, tables without a primary key, ``*_id`` without a FK."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from dbopt.findings import Finding
from dbopt.lint.base import LintConfig, Rule, rule, table_meta
from dbopt.lint.catalog import Catalog, Constraint, Index, Table
from dbopt.postgres.render import ident, idents, index_name, qualified

__all__: list[str] = []

_INTEGER_TYPES = {"int2", "int4", "int8"}


def covers(index: Index, columns: list[int]) -> bool:
    """True when ``index`` can serve lookups on ``columns`` (its leading keys are them)."""
    if not index.is_valid or index.predicate is not None:
        return False
    n = len(columns)
    if index.method == "hash":
        return n == 1 and index.key_columns == columns
    if index.method != "btree" or index.key_count < n:
        return False
    return sorted(index.key_columns[:n]) == sorted(columns)


def fk_is_indexed(catalog: Catalog, table: Table, fk: Constraint) -> bool:
    """True when ``table`` (or, if partitioned, every one of its partitions) indexes ``fk``."""
    if any(covers(idx, fk.columns) for idx in table.indexes):
        return True
    if not table.partitioned:
        return False
    leaves = catalog.leaves(table)
    names = table.column_names(fk.columns)
    for leaf in leaves:
        nums = [n for name in names for n, c in leaf.columns.items() if c.name == name]
        if len(nums) != len(names) or not any(covers(i, nums) for i in leaf.indexes):
            return False
    return bool(leaves)


def _index_name(table: str, columns: list[str]) -> str:
    return index_name(table, columns, "idx")


@rule(
    "LINT001",
    "fk_without_index",
    "warning",
    "A foreign key has no index whose leading columns cover it.",
    "Deleting or updating a referenced row makes PostgreSQL search the referencing table "
    "for matches: without an index that is a sequential scan per row, under lock. Joins "
    "from the parent to this table cannot use an index either.",
)
def fk_without_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog.top_level():
        for fk in table.constraints:
            if fk.type != "f" or fk.inherited or fk_is_indexed(catalog, table, fk):
                continue
            cols = table.column_names(fk.columns)
            name = _index_name(table.name, cols)
            if table.partitioned:
                fix = (
                    f"CREATE INDEX {ident(name)} ON {table.sql_name} ({idents(cols)});"
                    "  -- partitioned: CONCURRENTLY is not allowed; create it ON ONLY the parent"
                    " and attach per-partition indexes built CONCURRENTLY to avoid long locks"
                )
            else:
                fix = (
                    f"CREATE INDEX CONCURRENTLY {ident(name)} ON {table.sql_name} ({idents(cols)});"
                )
            yield r.finding(
                f"{table.sql_name}.{ident(fk.name)}",
                f"foreign key {fk.name} ({', '.join(cols)}) -> "
                f"{qualified(fk.ref_schema, fk.ref_name)} has no covering index",
                fix=fix,
                **table_meta(
                    table,
                    constraint=fk.name,
                    columns=cols,
                    referenced=f"{fk.ref_schema}.{fk.ref_name}",
                    rows=max(table.reltuples, 0),
                ),
            )


@rule(
    "LINT002",
    "no_primary_key",
    "warning",
    "A table has no primary key.",
    "Without a primary key rows cannot be addressed reliably: ORMs cannot map them, logical "
    "replication cannot replicate UPDATE and DELETE, and duplicates creep in.",
)
def no_primary_key(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog.top_level():
        if table.primary_key is not None:
            continue
        fix = None
        id_col = next((c for c in table.columns.values() if c.name == "id"), None)
        if id_col is not None:
            fix = f"ALTER TABLE {table.sql_name} ADD PRIMARY KEY ({ident(id_col.name)});"
            unique = next(
                (
                    i
                    for i in table.indexes
                    if i.is_unique
                    and i.is_valid
                    and i.predicate is None
                    and i.key_columns == [id_col.num]
                    and not i.partitioned
                ),
                None,
            )
            if unique is not None:
                fix = (
                    f"ALTER TABLE {table.sql_name} ADD CONSTRAINT "
                    f"{ident(table.name + '_pkey')} PRIMARY KEY USING INDEX {ident(unique.name)};"
                )
        yield r.finding(
            table.sql_name,
            f"table {table.sql_name} has no primary key",
            fix=fix,
            **table_meta(table, rows=max(table.reltuples, 0)),
        )


def _guess_target(catalog: Catalog, table: Table, stem: str, typname: str) -> Table | None:
    candidates = [stem + "s", stem, stem + "es", stem[:-1] + "ies" if stem.endswith("y") else ""]
    by_name = {(t.schema, t.name): t for t in catalog.top_level()}
    for cand in filter(None, candidates):
        target = by_name.get((table.schema, cand))
        pk = target.primary_key if target else None
        if target is None or pk is None or len(pk.columns) != 1:
            continue
        pk_col = target.columns.get(pk.columns[0])
        if pk_col is not None and (
            pk_col.typname == typname or {pk_col.typname, typname} <= _INTEGER_TYPES
        ):
            return target
    return None


@rule(
    "LINT003",
    "id_column_without_fk",
    "info",
    "A column named like a reference (``*_id``) is not part of any foreign key.",
    "Nothing stops the column from pointing at rows that do not exist (orphans); the "
    "relationship is invisible to tools and to the planner's join estimates.",
)
def id_column_without_fk(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    pattern = re.compile(config.id_column_pattern)
    for table in catalog.top_level():
        in_fk = {n for c in table.constraints if c.type == "f" for n in c.columns}
        pk = table.primary_key
        for col in table.columns.values():
            match = pattern.match(col.name)
            if match is None or col.num in in_fk:
                continue
            if pk is not None and pk.columns == [col.num]:
                continue
            full = f"{table.name}.{col.name}"
            if any(
                fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(col.name, p)
                for p in config.id_column_ignore
            ):
                continue
            stem = match.group(1) if match.groups() else col.name
            target = _guess_target(catalog, table, stem, col.typname)
            fix = None
            if target is not None and target.primary_key is not None:
                pk_name = target.columns[target.primary_key.columns[0]].name
                con = index_name(table.name, [col.name], "fkey")
                fix = (
                    f"ALTER TABLE {table.sql_name} ADD CONSTRAINT {ident(con)} FOREIGN KEY "
                    f"({ident(col.name)}) REFERENCES {target.sql_name} ({ident(pk_name)}) "
                    f"NOT VALID;\nALTER TABLE {table.sql_name} VALIDATE CONSTRAINT {ident(con)};"
                )
            yield r.finding(
                f"{table.sql_name}.{ident(col.name)}",
                f"column {col.name} looks like a reference"
                + (f" to {target.sql_name}" if target else "")
                + " but has no foreign key",
                fix=fix,
                **table_meta(
                    table,
                    column=col.name,
                    guessed_target=f"{target.schema}.{target.name}" if target else None,
                ),
            )
