"""The Explainer on hostile texts, on the real server: it explains exactly one plain query,
leaves the database, sequences and pg_locks as they were, keeps values out of plans by
default, and every wait (close() included) has a deadline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from dbopt.errors import ConfigurationError, DatabaseError
from dbopt.postgres import Explainer
from dbopt.postgres.connect import conninfo

SETUP = """
DROP TABLE IF EXISTS xs_canary, xs_stall CASCADE;
DROP SEQUENCE IF EXISTS xs_seq;
CREATE TABLE xs_canary (id int PRIMARY KEY, email text, n int);
INSERT INTO xs_canary SELECT g, 'user' || g || '@example.org', g FROM generate_series(1, 500) g;
ANALYZE xs_canary;
CREATE TABLE xs_stall (id int);
CREATE SEQUENCE xs_seq;
SELECT nextval('xs_seq');
-- a volatile function that writes: EXPLAIN does not run it
CREATE OR REPLACE FUNCTION xs_writes() RETURNS int LANGUAGE plpgsql VOLATILE AS
  $$BEGIN INSERT INTO xs_canary VALUES (-1, 'volatile', 0); RETURN 1; END$$;
-- functions that lie about being immutable: the planner folds (runs) them at plan time
CREATE OR REPLACE FUNCTION xs_writes_folded() RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  $$BEGIN INSERT INTO xs_canary VALUES (-2, 'folded', 0); RETURN 1; END$$;
CREATE OR REPLACE FUNCTION xs_nextval_folded() RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS
  $$BEGIN RETURN nextval('xs_seq'); END$$;
CREATE OR REPLACE FUNCTION xs_lock_folded() RETURNS int LANGUAGE plpgsql IMMUTABLE AS
  $$BEGIN PERFORM pg_advisory_lock(4242); RETURN 1; END$$;
"""


@pytest.fixture(scope="module")
def dsn(pg_url: str) -> str:
    info = conninfo(pg_url, "test")
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(SETUP)
    return info


def state(dsn: str) -> dict[str, Any]:
    """What the application could observe: rows, sequence, locks of the explain session."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT id, email, n FROM xs_canary ORDER BY id").fetchall()
        seq = conn.execute("SELECT last_value, is_called FROM xs_seq").fetchone()
        advisory = conn.execute(
            "SELECT objid, pid FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
        explain_locks = conn.execute(
            "SELECT l.locktype, l.mode FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE a.application_name = 'dbopt-explain' AND a.datname = current_database()"
        ).fetchall()
        sessions = conn.execute(
            "SELECT state FROM pg_stat_activity"
            " WHERE application_name = 'dbopt-explain' AND datname = current_database()"
        ).fetchall()
    return {
        "rows": rows,
        "seq": seq,
        "advisory": advisory,
        "explain_locks": explain_locks,
        "explain_sessions_busy": [s for (s,) in sessions if s != "idle"],
    }


REFUSED = [
    ("SELECT pg_sleep(0); COMMIT; INSERT INTO xs_canary VALUES (900, 'x', 0)", "3 statements"),
    ("SELECT 1; SELECT nextval('xs_seq')", "2 statements"),
    ("COMMIT", "not a SELECT"),
    ("INSERT INTO xs_canary VALUES (901, 'x', 0)", "not a SELECT"),
    ("WITH d AS (DELETE FROM xs_canary WHERE id < 10 RETURNING *) SELECT * FROM d", "DELETE"),
    ("WITH u AS (UPDATE xs_canary SET n = 0 RETURNING *) SELECT count(*) FROM u", "UPDATE"),
    ("SELECT * FROM xs_canary WHERE id = 1 FOR UPDATE", "FOR UPDATE/SHARE"),
    ("SELECT * FROM (SELECT * FROM xs_canary FOR SHARE) s", "FOR UPDATE/SHARE"),
    ("SELECT * INTO xs_copy FROM xs_canary", "SELECT INTO"),
    ("SELECT 1 /* unterminated", "does not parse"),
    ("", "no statement"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_refused_texts_are_not_sent(dsn: str, sql: str, reason: str) -> None:
    before = state(dsn)
    with Explainer(dsn) as explainer:
        assert reason in (explainer.why_not(sql) or "")
        assert explainer.explain(sql) is None
        assert explainer._conn is None  # nothing was sent: no connection was even opened
    assert state(dsn) == before


def test_a_second_statement_after_a_placeholder_is_refused(dsn: str) -> None:
    with Explainer(dsn, params="keep") as explainer:
        sql = "SELECT * FROM xs_canary WHERE id = %s; DELETE FROM xs_canary"
        assert explainer.why_not(sql, (1,)) == "2 statements (only one SELECT is explained)"
        assert explainer.explain(sql, (1,)) is None


def test_premise_folded_functions_run_at_plan_time(dsn: str) -> None:
    """Without the reset, EXPLAIN alone leaves a session advisory lock behind."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        conn.execute("EXPLAIN SELECT xs_lock_folded()")
        conn.execute("ROLLBACK")
        pid = conn.info.backend_pid
        held = state(dsn)["advisory"]
        assert (4242, pid) in held
        conn.execute("SELECT pg_advisory_unlock_all()")


EXPLAINED = [
    "SELECT pg_advisory_lock(4242)",
    "SELECT pg_advisory_lock(n) FROM xs_canary",
    "SELECT xs_lock_folded()",
    "SELECT xs_writes()",
    "SELECT nextval('xs_seq')",
    "VALUES (1), (2)",
    "TABLE xs_canary",
]


@pytest.mark.parametrize("params", ["redact", "keep"])
def test_explained_texts_leave_no_trace(dsn: str, params: str) -> None:
    before = state(dsn)
    assert before["advisory"] == []
    with Explainer(dsn, params=params) as explainer:
        for sql in EXPLAINED:
            assert explainer.why_not(sql) is None
            plan = explainer.explain(sql)
            assert plan[0]["Plan"]["Node Type"], sql
            assert state(dsn) == before, sql
            conn = explainer._conn
            assert conn is not None
            assert conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone() == (0,)
        # functions folded at plan time that write fail in the read-only transaction
        for sql in ("SELECT xs_writes_folded()", "SELECT xs_nextval_folded()"):
            with pytest.raises(DatabaseError, match=r"read-only transaction|non-volatile"):
                explainer.explain(sql)
            assert state(dsn) == before, sql
        assert explainer.explain("SELECT count(*) FROM xs_canary") is not None
    assert state(dsn) == before


def test_generic_plan_keeps_values_private(dsn: str) -> None:
    sql = "SELECT * FROM xs_canary WHERE email = 'literal-secret@x' AND n > 424242 AND id = %s"
    with Explainer(dsn) as explainer:
        plan = explainer.explain(sql, (313373,))
        text = json.dumps(plan)
        assert "Plan" in plan[0]
        for value in ("literal-secret", "424242", "313373"):
            assert value not in text
        assert "$1" in text
        # a literal whose type the server cannot infer as a parameter: redacted in the plan
        plan = explainer.explain(
            "SELECT n FROM xs_canary WHERE 'lit-secret' IS NOT NULL AND n = 987654"
        )
        text = json.dumps(plan)
        assert "987654" not in text
        assert "lit-secret" not in text
        assert plan[0]["Plan"]["Filter"] == "(n = ?)"
        # named parameters, and executemany's first set
        plan = explainer.explain(
            "SELECT * FROM xs_canary WHERE id = %(id)s AND email = %(e)s",
            [{"id": 271828, "e": "named-secret"}, {"id": 2, "e": "b"}],
        )
        text = json.dumps(plan)
        assert "271828" not in text
        assert "named-secret" not in text
        # pg_stat_statements text
        plan = explainer.explain("SELECT * FROM xs_canary WHERE id = $1")
        assert plan[0]["Plan"]["Index Cond"] == "(id = $1)"
    with Explainer(dsn, params="keep") as explainer:
        text = json.dumps(explainer.explain(sql, (313373,)))
        for value in ("literal-secret", "424242", "313373"):
            assert value in text


def test_params_policy_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        Explainer("postgresql://localhost/x", params="all")


def _blocked(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    holder = psycopg.connect(dsn)
    holder.execute("LOCK TABLE xs_stall IN ACCESS EXCLUSIVE MODE")
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()


def _wait_for_lock_wait(dsn: str, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < end:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'dbopt-explain'"
                " AND datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.02)
    raise AssertionError("the explain session never waited on the lock")


@pytest.mark.parametrize("lost_cancel", [False, True])
def test_close_returns_within_its_deadline_while_the_backend_is_blocked(
    dsn: str, lost_cancel: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    explainer = Explainer(dsn, statement_timeout_ms=120_000, deadline_s=120)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            explainer.explain("SELECT count(*) FROM xs_stall")
        except BaseException as exc:
            errors.append(exc)

    for _holder in _blocked(dsn):
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        _wait_for_lock_wait(dsn)
        if lost_cancel:  # a cancel request that never arrives: the socket is shut instead
            conn = explainer._conn
            assert conn is not None
            monkeypatch.setattr(conn, "cancel_safe", lambda timeout=0: None)
        start = time.monotonic()
        explainer.close(timeout=2.0)
        elapsed = time.monotonic() - start
        worker.join(timeout=5)
        assert elapsed < 2.5
        assert not worker.is_alive()
        assert len(errors) == 1
        assert isinstance(errors[0], DatabaseError)
        assert explainer._conn is None
        if not lost_cancel:
            time.sleep(0.2)
            assert state(dsn)["explain_sessions_busy"] == []
    # a backend whose client is gone ends once it gets the lock and finds the socket shut
    end = time.monotonic() + 10
    while state(dsn)["explain_sessions_busy"] and time.monotonic() < end:
        time.sleep(0.05)
    assert state(dsn)["explain_sessions_busy"] == []
    # usable again afterwards
    with explainer:
        assert explainer.explain("SELECT count(*) FROM xs_stall") is not None


def test_explain_has_a_client_side_deadline(dsn: str) -> None:
    explainer = Explainer(dsn, statement_timeout_ms=120_000, deadline_s=1.0)
    for _holder in _blocked(dsn):
        start = time.monotonic()
        with pytest.raises(DatabaseError):
            explainer.explain("SELECT count(*) FROM xs_stall")
        assert time.monotonic() - start < 3.5
    explainer.close()


def test_statement_timeout_bounds_lock_waits(dsn: str) -> None:
    with Explainer(dsn, statement_timeout_ms=300, deadline_s=30) as explainer:
        for _holder in _blocked(dsn):
            start = time.monotonic()
            with pytest.raises(DatabaseError, match="timeout"):
                explainer.explain("SELECT count(*) FROM xs_stall")
            assert time.monotonic() - start < 3
        # the session survived and is reset
        assert explainer.explain("SELECT count(*) FROM xs_stall") is not None
