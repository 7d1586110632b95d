"""How dbopt's fingerprint groups statements next to libpg_query's and pg_stat_statements'.

Corpus: libpg_query's own fingerprint tests (tests/data/libpg_query_fingerprint.json,
inputs and libpg_query's expected fingerprint of each; the source is noted in the
file). Two measures, over every pair of statements of the corpus:

* of the pairs the reference groups together, how many dbopt groups together
  (agreement; exact counts, so that a change that lowers it fails and a change
  that raises it updates the numbers here and in the docs);
* of the pairs the reference keeps apart, how many dbopt merges: must be none.

The reference is first libpg_query (its published fingerprints), then
PostgreSQL 15's own grouping: the ``queryid`` that pg_stat_statements records
when each statement runs on a real server. The numbers are stated in README.md,
docs/benchmarks/fingerprint.md and dbopt/core/fingerprint.py's docstring.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Sequence
from itertools import combinations
from pathlib import Path

import psycopg
import pytest

from dbopt.core.fingerprint import fingerprint
from dbopt.testing import libpq_url, postgres_url

CORPUS = json.loads((Path(__file__).parent / "data/libpg_query_fingerprint.json").read_text())
CASES: list[dict[str, str]] = CORPUS["cases"]

#: libpg_query: pairs it groups together that dbopt groups together, out of how many.
LIBPG_QUERY_TOGETHER = (9, 36)
#: pg_stat_statements (PostgreSQL 15): the same, over the statements that ran.
PGSS_TOGETHER = (1, 10)
#: Statements of the corpus that PostgreSQL 15 runs and pg_stat_statements records.
PGSS_RECORDED = 65
#: Pairs pg_stat_statements keeps apart and dbopt merges. Each is a pair that
#: libpg_query merges too: they differ only in values (a constant or a parameter,
#: the length of an IN-list, the number of equal VALUES rows, a LISTEN channel),
#: which PostgreSQL 15's queryid tells apart and dbopt, like libpg_query, does not.
PGSS_APART_DBOPT_MERGES = {
    ("SELECT 1", "SELECT $1"),
    ("SELECT 2", "SELECT $1"),
    ("SELECT * FROM x WHERE y IN ($1)", "SELECT * FROM x WHERE y IN ($1, $2, $3)"),
    (
        "SELECT * FROM x WHERE y IN ( $1::uuid )",
        "SELECT * FROM x WHERE y IN ( $1::uuid, $2::uuid, $3::uuid )",
    ),
    (
        "INSERT INTO films (code, title, did) VALUES ('UA502', 'Bananas', 105), "
        "('T_601', 'Yojimbo', DEFAULT)",
        "INSERT INTO films (code, title, did) VALUES ($1, $2, $3)",
    ),
    ("UNLISTEN virtual", "UNLISTEN *"),
}


def measure(
    reference: Sequence[Hashable | None],
) -> tuple[int, int, list[tuple[int, int]], int]:
    """(together in both, together in the reference, pairs merged by dbopt only, apart in both).

    A ``None`` reference is a statement the reference could not place: its pairs
    are left out.
    """
    ours = [fingerprint(case["input"]) for case in CASES]
    both = together = apart = 0
    merged: list[tuple[int, int]] = []
    for i, j in combinations(range(len(CASES)), 2):
        if reference[i] is None or reference[j] is None:
            continue
        if reference[i] == reference[j]:
            together += 1
            both += ours[i] == ours[j]
        elif ours[i] == ours[j]:
            merged.append((i, j))
        else:
            apart += 1
    return both, together, merged, apart


def test_corpus_is_libpg_query_s() -> None:
    assert len(CASES) == 77
    assert "libpg_query" in CORPUS["source"]
    assert {"SELECT 1", "SELECT $1", "SELECT * FROM x WHERE y IN ($1, $2, $3)"} <= {
        c["input"] for c in CASES
    }


def test_agreement_with_libpg_query() -> None:
    both, together, merged, apart = measure([case["libpg_query"] for case in CASES])
    assert merged == [], "dbopt merges statements that libpg_query keeps apart"
    assert (both, together) == LIBPG_QUERY_TOGETHER
    assert together + apart == 77 * 76 // 2


#: What a statement needs run before it (outside the measured window) to run at all.
PRELUDE = {
    "EXECUTE a123": ["PREPARE a123 AS SELECT 1"],
    "DEALLOCATE a123": ["PREPARE a123 AS SELECT 1"],
    "SAVEPOINT some_id": ["BEGIN"],
    "RELEASE some_id": ["BEGIN", "SAVEPOINT some_id"],
    "DECLARE cursor_123 CURSOR FOR SELECT * FROM test WHERE id = 123": ["BEGIN"],
    "FETCH 1000 FROM cursor_123": ["BEGIN", "DECLARE cursor_123 CURSOR FOR SELECT 1"],
    "CLOSE cursor_123": ["BEGIN", "DECLARE cursor_123 CURSOR FOR SELECT 1"],
    "SELECT * FROM t WHERE a && '[1,2]'": ["ALTER TABLE t ALTER a TYPE int4range USING NULL"],
    "CREATE PROCEDURE insert_data(a integer, b integer) LANGUAGE SQL AS $$ "
    "INSERT INTO tbl VALUES (a); INSERT INTO tbl VALUES (b); $$;": [
        "SET check_function_bodies = off"
    ],
}

#: Tables and objects the corpus statements read, so that they run.
SETUP = """
CREATE EXTENSION pg_stat_statements;
CREATE TABLE b (a int);
CREATE TABLE test (id int, a text[], b timestamptz);
CREATE TABLE z (a int, b int, x int, y int);
CREATE TABLE x (y uuid, z int, a int, b int, c int, uid int);
CREATE TABLE y (q int);
CREATE TABLE films (code text, title text, did int DEFAULT 1);
CREATE TABLE a (c int);
CREATE TABLE users (id int, one_thing text, second_thing text, something_else text);
CREATE TABLE my_table (i int);
CREATE TABLE t (a int, b int);
CREATE TABLE t_20210301_x (i int);
CREATE TABLE t_20210302_x (i int);
CREATE TABLE t_20210302_y (i int);
CREATE TABLE t_1 (i int);
CREATE TABLE t_2 (i int);
CREATE TABLE mytable (id int, mycolumn text);
CREATE TABLE tbl (doc jsonb);
CREATE TABLE vistest (i int);
CREATE TABLE measurement (city_id int, logdate date, peaktemp int, unitsales int);
CREATE TABLE new_measurement (city_id int, logdate date, peaktemp int, unitsales int);
CREATE TABLE customer_account (customer_id int, balance int);
CREATE FUNCTION a(int) RETURNS TABLE (a int, b int) LANGUAGE sql AS 'SELECT 1, 2';
CREATE FOREIGN DATA WRAPPER dbopt_fp_none;
CREATE SERVER no_server FOREIGN DATA WRAPPER dbopt_fp_none;
CREATE SCHEMA bar;
"""

_SNAPSHOT = (
    "SELECT queryid, calls FROM pg_stat_statements WHERE dbid = "
    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
    "AND query NOT LIKE 'SELECT queryid, calls FROM pg_stat_statements%%'"
)


def _queryids(url: str) -> list[tuple[int, ...] | None]:
    """Each statement's pg_stat_statements queryid(s), None when it did not run.

    A statement with ``$n`` parameters runs as ``PREPARE`` + ``EXECUTE`` with
    NULLs (pg_stat_statements records the prepared statement's own queryid).
    Another connection reads pg_stat_statements before and after: the entries
    whose calls grew are the statement's.
    """
    dsn = libpq_url(url)
    out: list[tuple[int, ...] | None] = []
    with (
        psycopg.connect(dsn, autocommit=True) as conn,
        psycopg.connect(dsn, autocommit=True) as watch,
    ):
        conn.prepare_threshold = watch.prepare_threshold = None  # no prepared statements of its own
        conn.execute(SETUP)

        def snapshot() -> dict[int, int]:
            return dict(watch.execute(_SNAPSHOT).fetchall())

        for case in CASES:
            text = case["input"]
            for statement in PRELUDE.get(text, []):
                conn.execute(statement)
            before = snapshot()
            try:
                count = max(map(int, re.findall(r"\$(\d+)", text.split("$$")[0])), default=0)
                if count and " AS $" not in text:
                    conn.execute(f"PREPARE dbopt_fp AS {text}")
                    args = ", ".join(["NULL"] * count)
                    try:
                        conn.execute(f"EXECUTE dbopt_fp({args})")
                    finally:
                        conn.execute("DEALLOCATE dbopt_fp")
                elif text.startswith("COPY"):
                    with conn.cursor().copy(text):
                        pass
                else:
                    conn.execute(text)
            except psycopg.Error:
                out.append(None)
            else:
                after = snapshot()
                grew = tuple(sorted(q for q, calls in after.items() if before.get(q, 0) < calls))
                out.append(grew or None)
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            conn.execute("DEALLOCATE ALL")
    return out


@pytest.mark.postgres
@pytest.mark.extensions("pg_stat_statements")
def test_agreement_with_pg_stat_statements() -> None:
    with postgres_url(prefix="dbopt_fp") as url:
        with psycopg.connect(libpq_url(url)) as conn:
            version = conn.info.server_version
        if version // 10_000 != 15:
            pytest.skip("the figures are PostgreSQL 15's; later versions merge IN-lists")
        ids = _queryids(url)
    recorded = {case["input"] for case, qid in zip(CASES, ids, strict=True) if qid}
    assert len(recorded) == PGSS_RECORDED
    assert {"SELECT 1", "SELECT $1", "SELECT * FROM a AS b", "EXECUTE a123"} <= recorded
    both, together, merged, apart = measure(ids)
    pairs = {(CASES[i]["input"], CASES[j]["input"]) for i, j in merged}
    assert pairs == PGSS_APART_DBOPT_MERGES
    groups = {c["input"]: c["libpg_query"] for c in CASES}
    assert all(groups[a] == groups[b] for a, b in pairs), "a merge neither reference makes"
    assert (both, together) == PGSS_TOGETHER
    assert together + len(merged) + apart == PGSS_RECORDED * (PGSS_RECORDED - 1) // 2
