from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

import dbopt
from dbopt.adapters.dbapi import ConnectionProxy
from dbopt.postgres import Explainer


@pytest.fixture
def sqlite_conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.create_function("sleep_ms", 1, lambda ms: __import__("time").sleep(ms / 1000) or ms)
    yield conn
    conn.close()


def _wrap(conn: sqlite3.Connection, logger: dbopt.QueryLogger) -> ConnectionProxy:
    return dbopt.wrap_dbapi(conn, logger)


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "dbopt.sql"]


def test_levels_and_extra_fields(
    sqlite_conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    proxy = _wrap(sqlite_conn, dbopt.QueryLogger(slow_ms=30))
    with dbopt.scope("report"):
        proxy.execute("SELECT ?", (1,))
        proxy.execute("SELECT sleep_ms(?)", (40,))
    with pytest.raises(sqlite3.OperationalError):
        proxy.execute("SELEC broken")
    proxy.detach()
    fast, slow, failed = records(caplog)
    assert fast.levelno == logging.DEBUG
    assert slow.levelno == logging.WARNING
    assert "slow query" in slow.getMessage()
    assert failed.levelno == logging.WARNING
    assert "failed" in failed.getMessage()
    for record in (fast, slow):
        assert record.fingerprint == dbopt.fingerprint(record.sql)  # type: ignore[attr-defined]
        assert record.scope == "report"  # type: ignore[attr-defined]
        assert record.callsite.startswith(__file__)  # type: ignore[attr-defined]
        # sqlite3 reports rowcount -1 for a SELECT; dbopt turns "unknown" into None
        assert record.rows is None  # type: ignore[attr-defined]
    assert slow.duration_ms >= 30  # type: ignore[attr-defined]
    assert fast.params == ["<int>"]  # type: ignore[attr-defined]


def test_extra_fields_work_with_a_json_formatter(
    sqlite_conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            keys = ("fingerprint", "duration_ms", "rows", "callsite", "scope", "params")
            return json.dumps({k: getattr(record, k) for k in keys})

    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    proxy = _wrap(sqlite_conn, dbopt.QueryLogger())
    proxy.execute("SELECT ?", (b"\xff\xfe not utf-8",))
    proxy.detach()
    data = json.loads(JsonFormatter().format(records(caplog)[0]))
    assert data["params"] == ["<bytes>"]
    assert data["fingerprint"] == dbopt.fingerprint("SELECT ?")


@pytest.mark.parametrize(
    ("policy", "expected"), [("keep", [7, "x"]), ("redact", ["<int>", "<str>"]), ("drop", None)]
)
def test_param_policies(
    sqlite_conn: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
    policy: str,
    expected: object,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    proxy = _wrap(sqlite_conn, dbopt.QueryLogger(params=policy))
    proxy.execute("SELECT ?, ?", (7, "x"))
    proxy.detach()
    (record,) = records(caplog)
    assert record.params == expected  # type: ignore[attr-defined]
    if policy != "keep":
        assert "'x'" not in record.getMessage()


def test_sampling_of_fast_queries(
    sqlite_conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    proxy = _wrap(sqlite_conn, dbopt.QueryLogger(sample=0.0, slow_ms=20))
    for _ in range(50):
        proxy.execute("SELECT 1")
    proxy.execute("SELECT sleep_ms(25)")
    proxy.detach()
    logged = records(caplog)
    assert len(logged) == 1  # only the slow one: slow queries are never sampled out
    assert logged[0].levelno == logging.WARNING
    half = dbopt.QueryLogger(sample=0.5)
    proxy = _wrap(sqlite_conn, half)
    caplog.clear()
    for _ in range(2000):
        proxy.execute("SELECT 1")
    proxy.detach()
    assert 800 < len(records(caplog)) < 1200


def test_disabled_level_costs_no_formatting(
    sqlite_conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dbopt.sql")
    proxy = _wrap(sqlite_conn, dbopt.QueryLogger(level=logging.DEBUG))
    proxy.execute("SELECT 1")
    proxy.detach()
    assert records(caplog) == []


def test_bad_arguments() -> None:
    with pytest.raises(dbopt.ConfigurationError):
        dbopt.QueryLogger(sample=2)
    with pytest.raises(dbopt.ConfigurationError):
        dbopt.QueryLogger(params="all")
    with pytest.raises(dbopt.ConfigurationError):
        dbopt.QueryLogger(explain="yes")  # type: ignore[arg-type]


def test_explain_slow_selects_on_their_own_connection(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    explainer = Explainer(pg_engine)
    logger = dbopt.QueryLogger(slow_ms=50, explain=explainer, explain_interval=3600)
    try:
        with dbopt.instrument(pg_engine, logger), pg_engine.begin() as c:
            c.execute(text("CREATE TEMP TABLE ex (id int)"))  # invisible to other sessions
            for _ in range(2):
                c.execute(
                    text("SELECT pg_sleep(0.06), count(*) FROM pg_class WHERE relname <> :n"),
                    {"n": "x"},
                )
            c.execute(text("SELECT pg_sleep(0.06), count(*) FROM ex"))
            app_pid = c.execute(text("SELECT pg_backend_pid()")).scalar()
        assert logger.flush()
    finally:
        logger.close()
    fp = dbopt.fingerprint("SELECT pg_sleep(?), count(*) FROM pg_class WHERE relname <> ?")
    assert fp in logger.plans
    plan = logger.plans[fp]
    assert plan[0]["Plan"]["Node Type"] == "Aggregate"
    plan_logs = [r for r in records(caplog) if r.getMessage().startswith("plan of slow query")]
    # rate limit: two slow runs of one fingerprint, one EXPLAIN; the temp table
    # exists only in the application's transaction, so its EXPLAIN fails cleanly
    assert len([r for r in plan_logs if r.fingerprint == fp]) == 1  # type: ignore[attr-defined]
    failed = [r for r in records(caplog) if r.getMessage().startswith("could not EXPLAIN")]
    assert len(failed) == 1
    assert explainer._conn is not None
    assert explainer._conn.info.backend_pid != app_pid
    explainer.close()


def test_explainer_refuses_non_postgres() -> None:
    with pytest.raises(dbopt.ConfigurationError):
        Explainer("sqlite:///x.db")


def test_explainer_refusals_are_logged_with_their_reason(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    explainer = Explainer(pg_engine)
    logger = dbopt.QueryLogger(slow_ms=50, explain=explainer)
    try:
        with dbopt.instrument(pg_engine, logger), pg_engine.begin() as c:
            c.execute(text("CREATE TEMP TABLE ex_lock AS SELECT 1 AS id"))
            c.execute(text("SELECT pg_sleep(0.06), id FROM ex_lock FOR UPDATE"))
        assert logger.flush()
    finally:
        logger.close()
        explainer.close()
    skipped = [r for r in records(caplog) if "not explained" in r.getMessage()]
    assert len(skipped) == 1
    assert skipped[0].explain_skipped == "it locks rows (FOR UPDATE/SHARE)"  # type: ignore[attr-defined]
    assert logger.plans == {}
    assert explainer._conn is None  # the text was never sent
