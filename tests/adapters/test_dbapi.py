"""The DB-API proxy (``dbopt.wrap_dbapi``) on sqlite3 and on MariaDB through PyMySQL."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

import dbopt
from dbopt import QueryEvent
from dbopt.adapters.dbapi import ConnectionProxy, CursorProxy

NON_UTF8 = b"\xff\xfe\x00\x80 raw"


def next_line() -> int:
    """The line after the caller's: where the statement under test is."""
    return sys._getframe(1).f_lineno + 1


class Collect(list[QueryEvent]):
    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> None:
        with self.lock:
            self.append(event)


@pytest.fixture
def events() -> Collect:
    return Collect()


@pytest.fixture
def db(tmp_path: Path, events: Collect) -> Iterator[ConnectionProxy]:
    proxy = dbopt.wrap_dbapi(sqlite3.connect(tmp_path / "t.db"), events)
    proxy.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, data BLOB)")
    proxy.commit()
    events.clear()
    yield proxy
    proxy.detach()
    proxy.close()


@pytest.fixture
def sqlite_adapters() -> Iterator[None]:
    """Teach sqlite3 Decimal, UUID and datetime for one test, then forget them again."""
    added = {Decimal: str, uuid.UUID: str, dt.datetime: dt.datetime.isoformat}
    saved = {t: sqlite3.adapters.get((t, sqlite3.PrepareProtocol)) for t in added}
    for type_, adapt in added.items():
        sqlite3.register_adapter(type_, adapt)
    yield
    for type_, previous in saved.items():
        if previous is None:
            del sqlite3.adapters[(type_, sqlite3.PrepareProtocol)]
        else:
            sqlite3.adapters[(type_, sqlite3.PrepareProtocol)] = previous


def test_execute_event_fields(db: ConnectionProxy, events: Collect) -> None:
    cur = db.cursor()
    assert isinstance(cur, CursorProxy)
    line = next_line()
    assert cur.execute("INSERT INTO items (id, name) VALUES (?, ?)", (1, "a")) is cur
    cur.execute("SELECT name FROM items WHERE id = :id", {"id": 1})
    assert cur.fetchone() == ("a",)
    insert, select = events
    assert (insert.adapter, insert.dialect, insert.kind) == ("dbapi", "sqlite", "insert")
    assert insert.parameters == (1, "a")
    assert insert.rowcount == 1
    assert insert.executemany is False
    assert insert.error is None
    assert insert.callsite is not None
    assert (insert.callsite.file, insert.callsite.line) == (__file__, line)
    assert select.parameters == {"id": 1}
    assert select.rowcount is None  # sqlite3 reports -1 for SELECT


def test_executemany_with_a_generator(db: ConnectionProxy, events: Collect) -> None:
    cur = db.cursor()
    cur.executemany("INSERT INTO items (id, name) VALUES (?, ?)", ((i, f"n{i}") for i in range(4)))
    (e,) = events
    assert e.executemany is True
    assert e.parameters == [(i, f"n{i}") for i in range(4)]
    assert e.rowcount == 4
    assert db.execute("SELECT count(*) FROM items").fetchone() == (4,)


def test_iteration_and_fetch_methods_pass_through(db: ConnectionProxy) -> None:
    db.executemany("INSERT INTO items (id, name) VALUES (?, ?)", [(i, f"n{i}") for i in range(6)])
    cur = db.execute("SELECT id FROM items ORDER BY id")
    assert isinstance(cur, CursorProxy)
    assert cur.description[0][0] == "id"
    assert cur.fetchone() == (0,)
    assert next(cur) == (1,)
    assert cur.fetchmany(2) == [(2,), (3,)]
    assert list(cur) == [(4,), (5,)]
    assert cur.fetchall() == []
    names = [name for (name,) in db.execute("SELECT name FROM items WHERE id < 2 ORDER BY id")]
    assert names == ["n0", "n1"]
    cur.arraysize = 3
    assert cur.arraysize == 3
    assert db.execute("INSERT INTO items (id, name) VALUES (99, 'x')").lastrowid == 99


def test_context_managers(tmp_path: Path, events: Collect) -> None:
    path = tmp_path / "cm.db"
    proxy = dbopt.wrap_dbapi(sqlite3.connect(path), events)
    proxy.execute("CREATE TABLE t (x INTEGER)")
    with proxy as same:
        assert same is proxy
        proxy.execute("INSERT INTO t VALUES (1)")
    with sqlite3.connect(path) as other:  # committed by the proxy's context manager
        assert other.execute("SELECT x FROM t").fetchall() == [(1,)]
    other.close()
    with proxy.cursor() as cur:
        cur.execute("SELECT x FROM t")
    with pytest.raises(sqlite3.ProgrammingError, match="closed cursor"):
        cur.execute("SELECT 1")
    assert [(e.sql, e.failed) for e in events] == [
        ("CREATE TABLE t (x INTEGER)", False),
        ("INSERT INTO t VALUES (1)", False),
        ("SELECT x FROM t", False),
        ("SELECT 1", True),
    ]
    proxy.close()


def test_failing_statement_reaches_the_app_unchanged(db: ConnectionProxy, events: Collect) -> None:
    line = next_line()
    with pytest.raises(sqlite3.OperationalError, match="no such table") as info:
        db.execute("SELECT * FROM missing WHERE id = ?", (1,))
    (e,) = events
    assert e.error is info.value
    assert e.parameters == (1,)
    assert e.rowcount is None
    assert e.callsite is not None
    assert e.callsite.line == line + 1


def test_parameter_types_pass_through_unharmed(
    db: ConnectionProxy, events: Collect, sqlite_adapters: None
) -> None:
    when = dt.datetime(2024, 2, 29, 13, 45, 1, 123456)
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
    params = (1, None, NON_UTF8, Decimal("12.3400"), when, ident, "naïve ☃")
    db.execute("CREATE TABLE kinds (id INT, n, b BLOB, d TEXT, t TEXT, u TEXT, s TEXT)")
    db.execute("INSERT INTO kinds VALUES (?, ?, ?, ?, ?, ?, ?)", params)
    row = db.execute("SELECT * FROM kinds").fetchone()
    assert row == (1, None, NON_UTF8, "12.3400", when.isoformat(), str(ident), "naïve ☃")
    insert = events[1]
    assert insert.parameters is params
    json.dumps(insert.to_dict(params="keep"))
    assert insert.to_dict(params="redact")["parameters"][2] == "<bytes>"


def test_unsupported_parameter_reaches_the_driver_as_is(
    db: ConnectionProxy, events: Collect
) -> None:
    value = Decimal("1.5")
    with pytest.raises(sqlite3.ProgrammingError, match="not supported"):
        db.execute("SELECT ?", (value,))
    assert events[0].parameters == (value,)


def test_detach_and_reattach(db: ConnectionProxy, events: Collect) -> None:
    db.execute("SELECT 1")
    db.detach()
    with dbopt.capture_queries() as q:
        db.execute("SELECT 2")
    assert len(q) == 0
    assert [e.sql for e in events] == ["SELECT 1"]
    later = Collect()
    with dbopt.instrument(db, later), dbopt.instrument(db, later):
        db.execute("SELECT 3")
    db.execute("SELECT 4")
    assert [e.sql for e in later] == ["SELECT 3"]


def test_wrapping_a_proxy_again_is_refused(db: ConnectionProxy) -> None:
    with pytest.raises(dbopt.InstrumentationError, match="already wrapped"):
        dbopt.wrap_dbapi(db)


def test_raising_sink_never_breaks_the_statement(
    db: ConnectionProxy, events: Collect, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: QueryEvent) -> None:
        raise RuntimeError("sink bug")

    def strict(event: QueryEvent) -> None:
        raise dbopt.ReportedError("strict")

    with dbopt.instrument(db, broken):
        assert db.execute("SELECT 6 * 7").fetchone() == (42,)
    assert "sink bug" in caplog.text
    with dbopt.instrument(db, strict), pytest.raises(sqlite3.OperationalError):
        db.execute("SELEC 1")
    assert [e.sql for e in events] == ["SELECT 6 * 7", "SELEC 1"]


def test_scope_and_attribute_pass_through(db: ConnectionProxy, events: Collect) -> None:
    db.row_factory = sqlite3.Row
    assert db.wrapped.row_factory is sqlite3.Row
    with dbopt.scope("job") as job:
        row = db.execute("SELECT 1 AS one").fetchone()
    assert row["one"] == 1
    assert events[0].scope is job


@pytest.fixture
def mysql_conn(mysql_db_url: str) -> Iterator[Any]:
    pymysql = pytest.importorskip("pymysql")
    url = make_url(mysql_db_url)
    conn = pymysql.connect(
        host=url.host,
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        database=url.database,
        autocommit=True,
    )
    yield conn
    conn.close()


@pytest.mark.mysql
def test_mariadb_through_pymysql(mysql_conn: Any, events: Collect) -> None:
    import pymysql

    db = dbopt.wrap_dbapi(mysql_conn, events)
    with db.cursor() as cur:
        cur.execute(
            "CREATE TABLE dbapi_kinds (id INT PRIMARY KEY, n INT NULL, b BLOB, "
            "d DECIMAL(10, 4), t DATETIME(6), u CHAR(36))"
        )
        when = dt.datetime(2024, 2, 29, 13, 45, 1, 123456)
        ident = uuid.UUID("12345678-1234-5678-1234-567812345678")
        params = (1, None, NON_UTF8, Decimal("12.3400"), when, ident)
        line = next_line()
        cur.execute("INSERT INTO dbapi_kinds VALUES (%s, %s, %s, %s, %s, %s)", params)
        cur.executemany("INSERT INTO dbapi_kinds (id) VALUES (%s)", ((i,) for i in range(2, 5)))
        cur.execute("SELECT id, n, b, d, t, u FROM dbapi_kinds WHERE id = %s", (1,))
        assert cur.fetchone() == (1, None, NON_UTF8, Decimal("12.3400"), when, str(ident))
        with pytest.raises(pymysql.err.IntegrityError) as info:
            cur.execute("INSERT INTO dbapi_kinds (id) VALUES (%s)", (1,))
        cur.execute("DROP TABLE dbapi_kinds")
    insert, many, select, failed = events[1:5]
    assert {e.dialect for e in events} == {"mysql"}
    assert insert.parameters is params
    assert insert.rowcount == 1
    assert insert.callsite is not None
    assert (insert.callsite.file, insert.callsite.line) == (__file__, line)
    assert many.executemany is True
    assert many.parameters == [(2,), (3,), (4,)]
    assert many.rowcount == 3
    assert select.rowcount == 1
    assert failed.error is info.value
    db.detach()
