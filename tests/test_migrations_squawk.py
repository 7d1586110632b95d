"""dbopt's migration checks against squawk's own per-rule test inputs.

The inputs are in ``tests/data/squawk/`` (one file per squawk rule, each
naming its source file in squawk's repository; squawk is MIT OR Apache-2.0).
For every squawk rule dbopt maps, a case agrees when dbopt reports the mapped
finding exactly when squawk expects a violation. Documented exceptions (where
dbopt deliberately differs; the reasons are in docs/migrations.md) are
excluded from the ratio, and each must still differ, so the list stays true.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dbopt.findings import Finding
from dbopt.migrations import check
from dbopt.migrations.locks import lock_of

DATA = Path(__file__).parent / "data" / "squawk"
INT4 = {"int", "int4", "integer", "serial", "serial4"}
INT2 = {"int2", "smallint", "smallserial", "serial2"}


def _codes(*codes: str) -> Callable[[Finding], bool]:
    return lambda f: f.code in codes


def _typed(types: set[str]) -> Callable[[Finding], bool]:
    return lambda f: (
        f.code in ("MIG012", "MIG039")
        and str(f.metadata.get("type", "")).removesuffix("[]") in types
    )


#: squawk rule -> which dbopt findings count as its violation
MAPPING: dict[str, Callable[[Finding], bool]] = {
    "adding-field-with-default": _codes("MIG007"),
    "adding-foreign-key-constraint": _codes("MIG004"),
    "adding-not-nullable-field": _codes("MIG006"),
    "adding-required-field": _codes("MIG015"),
    "adding-serial-primary-key-field": lambda f: f.code == "MIG014" and "PRIMARY KEY" in f.message,
    "ban-alter-domain-with-add-constraint": _codes("MIG024"),
    "ban-char-field": _codes("MIG036"),
    "ban-concurrent-index-creation-in-transaction": _codes("MIG003"),
    "ban-create-domain-with-constraint": _codes("MIG025"),
    "ban-drop-column": _codes("MIG010"),
    "ban-drop-database": _codes("MIG026"),
    "ban-drop-not-null": _codes("MIG028"),
    "ban-drop-table": _codes("MIG010"),
    "ban-duplicate-column-assignments": _codes("MIG031"),
    "ban-truncate-cascade": _codes("MIG027"),
    "ban-uncommitted-transaction": _codes("MIG029"),
    "changing-column-type": _codes("MIG008"),
    "constraint-missing-not-valid": _codes("MIG004", "MIG005", "MIG019"),
    "disallowed-unique-constraint": lambda f: f.code == "MIG014" and "UNIQUE" in f.message,
    "identifier-too-long": _codes("MIG037"),
    "prefer-bigint-over-int": _typed(INT4),
    "prefer-bigint-over-smallint": _typed(INT2),
    "prefer-identity": _codes("MIG034"),
    "prefer-repack": _codes("MIG022"),
    "prefer-robust-stmts": _codes("MIG032"),
    "prefer-text-field": _codes("MIG035"),
    "prefer-timestamptz": _codes("MIG013"),
    "renaming-column": _codes("MIG009"),
    "renaming-table": _codes("MIG009"),
    "require-concurrent-index-creation": _codes("MIG001"),
    "require-concurrent-index-deletion": _codes("MIG002"),
    "require-concurrent-partition-detach": _codes("MIG021"),
    "require-concurrent-reindex": _codes("MIG020"),
    "require-enum-value-ordering": _codes("MIG033"),
    "require-lock-timeout": _codes("MIG011"),
    "require-statement-timeout": _codes("MIG023"),
    "require-table-schema": _codes("MIG038"),
    # squawk's tests of the two timeout rules run together
    "require-timeout-settings": _codes("MIG011", "MIG023"),
    "transaction-nesting": _codes("MIG030"),
}

#: (squawk rule, squawk test) where dbopt deliberately differs; reasons in docs/migrations.md
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("adding-field-with-default", "docs_example_error_on_pg_11"): (
        "PostgreSQL 11.0 already adds a column with a constant default without a rewrite; "
        "squawk treats 11 as before it"
    ),
    ("ban-char-field", "all_the_types"): (
        "`int array[]` is not PostgreSQL syntax (ARRAY takes no empty brackets): MIG000"
    ),
    ("ban-concurrent-index-creation-in-transaction", "assuming_in_transaction_ok"): (
        "a runner that wraps the file in a transaction makes CONCURRENTLY fail even when it is "
        "the only statement"
    ),
    ("require-timeout-settings", "err_other_ddl_operations"): (
        "CREATE TYPE locks no existing table: nothing can queue behind it"
    ),
    ("require-timeout-settings", "fix_multiple_ddl_statements"): (
        "the ALTER is on a table created earlier in the same migration: nobody else can be "
        "using it yet"
    ),
}


def _load() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(DATA.glob("*.json"))}


def _agrees(rule: str, case: dict[str, Any]) -> bool:
    report = check(
        case["sql"],
        in_transaction=case["assume_in_transaction"],
        pg_version=case["pg_version"] or 15,
        enable=["all"],
    )
    hit = any(MAPPING[rule](f) for f in report)
    return hit == (case["expect"] == "error")


def agreement() -> dict[str, tuple[int, int, int, list[str]]]:
    """Per squawk rule: (agreeing cases, cases counted, exceptions, disagreeing tests)."""
    out = {}
    for rule, data in _load().items():
        if rule == "lock-modes":
            continue
        ok = counted = excepted = 0
        wrong: list[str] = []
        for case in data["cases"]:
            agrees = _agrees(rule, case)
            if (rule, case["test"]) in EXCEPTIONS:
                assert not agrees, f"{rule} {case['test']} agrees now: drop the exception"
                excepted += 1
                continue
            counted += 1
            ok += agrees
            if not agrees:
                wrong.append(case["test"])
        out[rule] = (ok, counted, excepted, wrong)
    return out


def test_every_squawk_rule_in_the_data_is_mapped() -> None:
    rules = set(_load()) - {"lock-modes"}
    assert rules == set(MAPPING)
    for data in _load().values():
        assert data["source"]
        assert data["license"].startswith("squawk is dual-licensed MIT")


def test_agreement_per_rule_is_at_least_97_percent() -> None:
    results = agreement()
    low = {rule: (ok, n, wrong) for rule, (ok, n, _, wrong) in results.items() if ok < 0.97 * n}
    assert not low, low
    total = sum(n for _, n, _, _ in results.values())
    assert total >= 250  # the corpus is squawk's, not a sample of it


@pytest.mark.parametrize("row", _load()["lock-modes"]["rows"], ids=lambda r: r["sql"])
def test_lock_mode_matches_squawks_table(row: dict[str, Any]) -> None:
    import pglast

    node = pglast.parse_sql(row["sql"])[0].stmt
    lock = lock_of(node)
    expected = LOCK_DIFFERENCES.get(row["sql"], row["lock"])
    assert (lock.mode if lock else None) == expected


#: where dbopt's lock model differs from squawk's table, and PostgreSQL's documentation agrees
LOCK_DIFFERENCES = {
    # DETACH PARTITION CONCURRENTLY takes SHARE UPDATE EXCLUSIVE on the partitioned table
    # (ALTER TABLE documentation); squawk reports ACCESS EXCLUSIVE
    "ALTER TABLE t DETACH PARTITION p CONCURRENTLY;": "SHARE UPDATE EXCLUSIVE",
}


@pytest.mark.parametrize("row", _load()["lock-modes"]["rows"], ids=lambda r: r["sql"])
def test_every_write_blocking_statement_is_reported_with_its_lock(row: dict[str, Any]) -> None:
    import pglast

    sql = row["sql"]
    expected = LOCK_DIFFERENCES.get(sql, row["lock"])
    lock = lock_of(pglast.parse_sql(sql)[0].stmt)
    blocking = lock is not None and (lock.blocks_writes or lock.blocks_reads)
    # a materialized view takes no writes: CONCURRENTLY's EXCLUSIVE lets reads go on
    assert blocking == (
        expected in ("SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE")
        and "CONCURRENTLY mv" not in sql
    )
    # no lock_timeout: even an instant lock queues every query behind it (MIG011)
    bare = [f for f in check(sql) if f.metadata.get("lock") == expected]
    assert bool(bare) == blocking, [f.code for f in check(sql)]
    for f in bare:
        assert set(f.metadata["blocks"]) & {"reads", "writes"}
        assert f.metadata["lock_duration"] == lock.duration  # type: ignore[union-attr]
    # with lock_timeout set, a lock held longer than an instant is still reported
    held = check("SET lock_timeout = '1s';\n" + sql)
    long_held = blocking and (
        lock.duration != "instant"  # type: ignore[union-attr]
        or sql.startswith(("TRUNCATE", "LOCK", "DROP VIEW", "DROP INDEX", "DROP TABLE"))
    )
    if long_held:
        assert [f for f in held if f.metadata.get("lock") == expected], [f.code for f in held]
