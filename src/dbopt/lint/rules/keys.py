"""Keys: foreign keys without an index, tables without a primary key, ``*_id`` without a FK."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator

from dbopt.findings import Finding, Severity
from dbopt.lint.base import LintConfig, Rule, register_rules, table_meta
from dbopt.lint.catalog import Catalog, Column, Constraint, Index, Table
from dbopt.postgres.render import ident, idents, index_name, qualified

__all__ = ["covers", "fk_is_indexed", "partitions_lacking"]

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


def _leaf_columns(table: Table, leaf: Table, nums: list[int]) -> list[int] | None:
    """``nums`` of ``table`` as attribute numbers of partition ``leaf`` (matched by name)."""
    by_name = {c.name: n for n, c in leaf.columns.items()}
    out = [by_name.get(name) for name in table.column_names(nums)]
    return None if None in out else [n for n in out if n is not None]


def partitions_lacking(catalog: Catalog, table: Table, columns: list[int]) -> list[Table]:
    """The leaf tables under ``table`` with no index covering ``columns``.

    Empty when ``table`` itself has one (a partitioned index reaches every
    partition); ``[table]`` for a plain table without one.
    """
    if any(covers(idx, columns) for idx in table.indexes):
        return []
    if not table.partitioned:
        return [table]
    out = []
    for leaf in catalog.leaves(table):
        if leaf is table:
            continue
        nums = _leaf_columns(table, leaf, columns)
        if nums is None or not any(covers(i, nums) for i in leaf.indexes):
            out.append(leaf)
    return out


def fk_is_indexed(catalog: Catalog, table: Table, fk: Constraint) -> bool:
    """True when ``table`` (or, if partitioned, every one of its partitions) indexes ``fk``."""
    if any(covers(idx, fk.columns) for idx in table.indexes):
        return True
    return (
        table.partitioned
        and bool(catalog.leaves(table))
        and not partitions_lacking(catalog, table, fk.columns)
    )


def _index_name(table: str, columns: list[str]) -> str:
    return index_name(table, columns, "idx")


def _create_on(catalog: Catalog, table: Table, cols: list[str]) -> list[str]:
    """Statements creating a B-tree on ``cols`` of ``table`` without a long write lock.

    A partitioned table gets an invalid index ``ON ONLY`` itself, an index
    built ``CONCURRENTLY`` on each partition, and each attached (the parent's
    index turns valid with the last one). Run the statements one at a time.
    """
    name = _index_name(table.name, cols)
    if not table.partitioned:
        return [f"CREATE INDEX CONCURRENTLY {ident(name)} ON {table.sql_name} ({idents(cols)});"]
    out = [f"CREATE INDEX {ident(name)} ON ONLY {table.sql_name} ({idents(cols)});"]
    parts = sorted(
        (catalog.tables[c] for c in table.children if c in catalog.tables), key=lambda t: t.name
    )
    for part in parts:
        out.extend(_create_on(catalog, part, cols))
        out.append(
            f"ALTER INDEX {qualified(table.schema, name)} ATTACH PARTITION "
            f"{qualified(part.schema, _index_name(part.name, cols))};"
        )
    return out


def fk_without_index(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog:
        for fk in table.constraints:
            # a foreign key inherited from the parent is judged once, on the parent
            if fk.type != "f" or fk.inherited:
                continue
            lacking = partitions_lacking(catalog, table, fk.columns)
            if not lacking or (table.partitioned and not catalog.leaves(table)):
                continue
            cols = table.column_names(fk.columns)
            where = ""
            extra: dict[str, object] = {}
            if table.partitioned and len(lacking) < len(catalog.leaves(table)):
                # some partitions have one: index just those that lack it
                names = ", ".join(t.sql_name for t in lacking)
                where = f" on partition{'s' if len(lacking) > 1 else ''} {names}"
                fixes = [s for leaf in lacking for s in _create_on(catalog, leaf, cols)]
                extra["partitions"] = [t.name for t in lacking]
            else:
                fixes = _create_on(catalog, table, cols)
            parent = catalog.tables.get(table.parent or 0) if table.is_partition else None
            if parent is not None:
                extra["partition_of"] = parent.sql_name
            yield r.finding(
                f"{table.sql_name}.{ident(fk.name)}",
                f"foreign key {fk.name} ({', '.join(cols)}) -> "
                f"{qualified(fk.ref_schema, fk.ref_name)} has no covering index{where}",
                fix="\n".join(fixes),
                **table_meta(
                    table,
                    constraint=fk.name,
                    columns=cols,
                    referenced=f"{fk.ref_schema}.{fk.ref_name}",
                    rows=max(table.reltuples, 0),
                    **extra,
                ),
            )


def no_primary_key(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    for table in catalog.top_level():
        if table.primary_key is not None:
            continue
        if table.partitioned and catalog.leaves(table) != [table]:
            # keys on the partitions count for the parent; name the partitions without one
            lacking = [t for t in catalog.leaves(table) if t.primary_key is None]
            if not lacking:
                continue
            if len(lacking) < len(catalog.leaves(table)):
                names = ", ".join(t.sql_name for t in lacking)
                yield r.finding(
                    table.sql_name,
                    f"partitioned table {table.sql_name} has no primary key and partition"
                    f"{'s' if len(lacking) > 1 else ''} {names} lack the one "
                    "the other partitions have",
                    **table_meta(table, partitions=[t.name for t in lacking]),
                )
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
    # the whole stem first, then its trailing words: manager_staff_id -> staff
    words = stem.split("_")
    stems = ["_".join(words[i:]) for i in range(len(words))]
    candidates = [
        c for s in stems for c in (s + "s", s, s + "es", s[:-1] + "ies" if s.endswith("y") else "")
    ]
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


def id_column_without_fk(catalog: Catalog, config: LintConfig, r: Rule) -> Iterator[Finding]:
    pattern = re.compile(config.id_column_pattern)
    for table in catalog.top_level():
        in_fk = {n for c in table.constraints if c.type == "f" for n in c.columns}
        pk = table.primary_key
        for col in table.columns.values():
            match = pattern.match(col.name)
            if match is None or col.num in in_fk:
                continue
            if pk is not None and col.num in pk.columns and _own_key(catalog, table, col, match):
                continue
            full = f"{table.name}.{col.name}"
            if any(
                fnmatch.fnmatchcase(full, p) or fnmatch.fnmatchcase(col.name, p)
                for p in config.id_column_ignore
            ):
                continue
            lacking, sibling_fk = _partitions_without_fk(catalog, table, col.name)
            if table.partitioned and sibling_fk is not None:
                if lacking:  # some partitions have the foreign key: name those that lack it
                    yield _partition_fk_finding(catalog, r, table, col.name, lacking, sibling_fk)
                continue  # foreign keys on every partition count for the parent
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


def _own_key(catalog: Catalog, table: Table, col: Column, match: re.Match[str]) -> bool:
    """True when primary-key column ``col`` identifies ``table``'s own rows.

    A single-column primary key always does; in a composite key (Pagila's
    partitioned ``payment`` keys on ``(payment_date, payment_id)``), a column
    whose name points at no other table does too. A composite-key column that
    names another table (a link table's ``track_id``) is still a reference.
    """
    pk = table.primary_key
    if pk is None or pk.columns == [col.num]:
        return True
    stem = match.group(1) if match.groups() else col.name
    target = _guess_target(catalog, table, stem, col.typname)
    return target is None or target.oid == table.oid


def _partitions_without_fk(
    catalog: Catalog, table: Table, column: str
) -> tuple[list[Table], Constraint | None]:
    """Leaf partitions of ``table`` with no foreign key on ``column``, and one that has it."""
    if not table.partitioned:
        return [], None
    lacking, found = [], None
    for leaf in catalog.leaves(table):
        num = next((n for n, c in leaf.columns.items() if c.name == column), None)
        fk = next(
            (c for c in leaf.constraints if c.type == "f" and num is not None and num in c.columns),
            None,
        )
        if fk is None:
            lacking.append(leaf)
        elif found is None:
            found = fk
    return lacking, found


def _partition_fk_finding(
    catalog: Catalog,
    r: Rule,
    table: Table,
    column: str,
    lacking: list[Table],
    sibling: Constraint,
) -> Finding:
    ref = qualified(sibling.ref_schema, sibling.ref_name)
    owner = catalog.tables.get(sibling.relid)
    ref_table = catalog.tables.get(sibling.ref_relid)
    fixes = []
    if owner is not None and ref_table is not None:
        cols = owner.column_names(sibling.columns)
        ref_cols = ref_table.column_names(sibling.ref_columns)
        for leaf in lacking:
            con = f"{leaf.name}_{'_'.join(cols)}_fkey"[:63]
            fixes.append(
                f"ALTER TABLE {leaf.sql_name} ADD CONSTRAINT {ident(con)} FOREIGN KEY "
                f"({idents(cols)}) REFERENCES {ref} ({idents(ref_cols)}) NOT VALID;\n"
                f"ALTER TABLE {leaf.sql_name} VALIDATE CONSTRAINT {ident(con)};"
            )
    names = ", ".join(t.sql_name for t in lacking)
    return r.finding(
        f"{table.sql_name}.{ident(column)}",
        f"column {column} of partitioned {table.sql_name} references {ref} on some partitions "
        f"(e.g. {sibling.name}), but partition{'s' if len(lacking) > 1 else ''} {names} "
        "lack that foreign key",
        fix="\n".join(fixes) or None,
        **table_meta(
            table,
            column=column,
            guessed_target=f"{sibling.ref_schema}.{sibling.ref_name}",
            partitions=[t.name for t in lacking],
        ),
    )


register_rules(
    Rule(
        "LINT001",
        "fk_without_index",
        Severity.WARNING,
        "A foreign key has no index whose leading columns cover it.",
        "Deleting or updating a referenced row makes PostgreSQL search the referencing table "
        "for matches: without an index that is a sequential scan per row, under lock. Joins "
        "from the parent to this table cannot use an index either.",
        fk_without_index,
    ),
    Rule(
        "LINT002",
        "no_primary_key",
        Severity.WARNING,
        "A table has no primary key.",
        "Without a primary key rows cannot be addressed reliably: ORMs cannot map them, logical "
        "replication cannot replicate UPDATE and DELETE, and duplicates creep in.",
        no_primary_key,
    ),
    Rule(
        "LINT003",
        "id_column_without_fk",
        Severity.INFO,
        "A column named like a reference (``*_id``) is not part of any foreign key.",
        "Nothing stops the column from pointing at rows that do not exist (orphans); the "
        "relationship is invisible to tools and to the planner's join estimates.",
        id_column_without_fk,
    ),
)
