"""NPlusOneDetector: thresholds, actions, allowlist, scopes and bounds, on real databases."""

from __future__ import annotations

import asyncio
import contextvars
import importlib.util
import json
import logging
import sqlite3
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_allow import NPlusOneAllow, parse_allow
from dbopt.core.nplusone_findings import NPlusOneError, NPlusOneFinding, NPlusOneWarning

QUERY = "SELECT v FROM t WHERE id = ?"


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"v{i}") for i in range(50)])
    yield conn
    conn.close()


def collecting(**options: Any) -> tuple[NPlusOneDetector, list[NPlusOneFinding]]:
    found: list[NPlusOneFinding] = []
    return NPlusOneDetector(action=found.append, **options), found


def lookup(db: Any, key: int) -> None:
    db.execute(QUERY, (key,)).fetchall()


LOOKUP_LINE = lookup.__code__.co_firstlineno + 1


def checked(func: Callable[..., object], *args: Any, name: str = "s") -> None:
    """Run ``func(*args)`` in a scope of its own."""
    with dbopt.scope(name):
        func(*args)


def run_the_loop(db: Any) -> None:
    for key in range(3):
        lookup(db, key)


# Thresholds and kinds


@pytest.mark.parametrize(
    ("threshold", "distinct", "flagged"),
    [(2, 1, False), (2, 2, True), (3, 2, False), (3, 3, True), (5, 9, True)],
)
def test_threshold_counts_distinct_values(
    conn: sqlite3.Connection, threshold: int, distinct: int, flagged: bool
) -> None:
    det, found = collecting(threshold=threshold)
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for key in range(distinct):
            db.execute(QUERY, (key,)).fetchall()
    assert [f.kind for f in found] == (["n_plus_one"] if flagged else [])
    if flagged:
        assert found[0].count == distinct
        assert found[0].fingerprint == dbopt.fingerprint(QUERY)
        assert found[0].sql == QUERY


def test_same_values_are_a_repeated_query_not_an_n_plus_one(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for _ in range(4):
            db.execute(QUERY, (7,)).fetchall()
    (finding,) = found
    assert (finding.kind, finding.count) == ("repeated_query", 4)
    assert "keep the first result" in finding.suggestion


def test_repeat_threshold(conn: sqlite3.Connection) -> None:
    det, found = collecting(repeat_threshold=3)
    off, none = collecting(repeat_threshold=None)
    db = dbopt.wrap_dbapi(conn, det, off)
    with dbopt.scope("twice"):
        lookup(db, 1)
        lookup(db, 1)
    assert found == []
    assert none == []
    with dbopt.scope("thrice"):
        for _ in range(3):
            lookup(db, 1)
    assert [f.count for f in found] == [3]
    assert none == []


def test_a_write_separates_identical_reads(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("read, write, read"):
        lookup(db, 1)
        db.execute("UPDATE t SET v = 'new' WHERE id = 1")
        lookup(db, 1)
    assert found == []
    with dbopt.scope("read, read, write, read, read"):
        lookup(db, 2)
        lookup(db, 2)
        db.execute("UPDATE t SET v = 'new' WHERE id = 2")
        lookup(db, 2)
        lookup(db, 2)
    (finding,) = found
    assert (finding.kind, finding.count) == ("repeated_query", 4)


def test_inlined_literals_count_as_distinct_values(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for key in range(3):
            db.execute(f"SELECT v FROM t WHERE id = {key}").fetchall()
    assert [(f.kind, f.count) for f in found] == [("n_plus_one", 3)]


def test_not_counted_failed_executemany_and_volatile(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for key in range(3):
            with pytest.raises(sqlite3.OperationalError):
                db.execute("SELECT v FROM missing WHERE id = ?", (key,))
        db.executemany("INSERT INTO t (v) VALUES (?)", [(str(i),) for i in range(5)])
        for _ in range(3):
            db.execute("SELECT random()").fetchone()
            db.execute("SELECT last_insert_rowid()").fetchone()
    assert found == []


def test_key_depth_separates_callers(conn: sqlite3.Connection) -> None:
    deep, deep_found = collecting()
    shallow, shallow_found = collecting(key_depth=1)
    db = dbopt.wrap_dbapi(conn, deep, shallow)
    with dbopt.scope("two callers"):
        lookup(db, 1)
        lookup(db, 2)
    assert deep_found == []
    (finding,) = shallow_found
    assert finding.callsite is not None
    assert finding.callsite.function == "lookup"


def test_statements_outside_a_scope_are_counted_not_checked(
    conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with caplog.at_level(logging.INFO, logger="dbopt.nplusone"):
        for key in range(5):
            lookup(db, key)
    assert found == []
    assert det.unscoped == 5
    messages = [r.getMessage() for r in caplog.records if r.name == "dbopt.nplusone"]
    assert len(messages) == 1
    assert "dbopt.scope" in messages[0]


def test_scopes_are_separate_units(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("outer") as outer:
        lookup(db, 1)
        for key in range(2, 5):
            with dbopt.scope("inner"):
                lookup(db, key)
        with dbopt.scope("loop") as inner:
            for key in range(3):
                lookup(db, key)
        assert det.pending(inner) == []  # ended: reported already
        assert det.pending() == []
    assert [(f.scope, f.scope_path, f.count) for f in found] == [("loop", "outer/loop", 3)]
    assert outer.name == "outer"


# Actions


def test_raise_happens_at_scope_end_with_every_finding(conn: sqlite3.Connection) -> None:
    det = NPlusOneDetector(action="raise")
    db = dbopt.wrap_dbapi(conn, det)
    pending: list[NPlusOneFinding] = []

    def request() -> None:
        with dbopt.scope("request"):
            for key in range(3):
                lookup(db, key)
            for key in range(4):
                db.execute("SELECT id FROM t WHERE v = ?", (f"v{key}",)).fetchall()
            lookup(db, 40)
            pending.extend(det.pending())  # every statement ran: nothing raised yet

    with pytest.raises(NPlusOneError) as info:
        request()
    assert [f.kind for f in pending] == ["n_plus_one", "n_plus_one"]
    error = info.value
    assert isinstance(error, dbopt.ReportedError)
    assert [f.count for f in error.findings] == [3, 4]
    message = str(error)
    assert message.startswith("2 N+1 finding(s) in scope request:")
    assert QUERY in message
    assert "SELECT id FROM t WHERE v = ?" in message
    assert f"{__file__}:" in message
    assert det.findings == list(error.findings)


def test_raise_never_hides_the_applications_error(conn: sqlite3.Connection) -> None:
    det = NPlusOneDetector(action="raise")
    db = dbopt.wrap_dbapi(conn, det)

    def failing() -> None:
        with dbopt.scope("failing"):
            run_the_loop(db)
            raise KeyError("the application's own error")

    with pytest.raises(KeyError):
        failing()
    assert len(det.findings) == 1


def test_warn_points_at_the_call_site(conn: sqlite3.Connection) -> None:
    det = NPlusOneDetector()
    db = dbopt.wrap_dbapi(conn, det)
    with pytest.warns(NPlusOneWarning) as record, dbopt.scope("s"):
        run_the_loop(db)
    (warning,) = record
    assert warning.filename == __file__
    assert warning.lineno == LOOKUP_LINE
    assert "N+1: 3 queries" in str(warning.message)


def test_warnings_as_errors_fail_at_scope_end(conn: sqlite3.Connection) -> None:
    det = NPlusOneDetector(action="warn")
    db = dbopt.wrap_dbapi(conn, det)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NPlusOneWarning)
        with pytest.raises(NPlusOneWarning):
            checked(run_the_loop, db)


def test_log_action(conn: sqlite3.Connection, caplog: pytest.LogCaptureFixture) -> None:
    det = NPlusOneDetector(action="log", logger="app.queries")
    db = dbopt.wrap_dbapi(conn, det)
    with caplog.at_level(logging.WARNING, logger="app.queries"), dbopt.scope("job"):
        for key in range(3):
            lookup(db, key)
    (record,) = [r for r in caplog.records if r.name == "app.queries"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("N+1: 3 queries from")
    finding: dict[str, Any] = record.finding  # type: ignore[attr-defined]
    assert finding["kind"] == "n_plus_one"
    assert finding["scope"] == "job"


def test_finding_to_dict_is_json(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for key in range(3):
            lookup(db, key)
    data = json.loads(json.dumps(found[0].to_dict()))
    assert data["kind"] == "n_plus_one"
    assert data["count"] == 3
    assert data["callsite"].startswith(f"{__file__}:")
    assert data["callsite"].endswith(" in lookup")
    assert data["callsites"] == [data["callsite"]]
    assert data["stack"][0] == data["callsite"]
    assert data["relationship"] is None
    assert data["loader_option"] is None
    assert "IN (...)" in data["suggestion"]
    assert data["scope"] == data["scope_path"] == "s"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"threshold": 1}, "threshold"),
        ({"repeat_threshold": 1}, "repeat_threshold"),
        ({"action": "explode"}, "action"),
        ({"key_depth": 0}, "key_depth"),
        ({"allow": ["User.posts"]}, "relationship:User.posts"),
        ({"allow": ["colour:red"]}, "function"),
        ({"allow": ["function:"]}, "<field>:<pattern>"),
    ],
)
def test_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(dbopt.ConfigurationError, match=message.replace("(", r"\(")):
        NPlusOneDetector(**options)


def test_allow_rule_errors() -> None:
    with pytest.raises(dbopt.ConfigurationError, match="at least one of"):
        NPlusOneAllow(reason="nothing to match")
    with pytest.raises(dbopt.ConfigurationError, match="kind"):
        NPlusOneAllow(kind="slow")
    rule = NPlusOneAllow(function="f", reason="why")
    assert parse_allow(rule) is rule
    assert NPlusOneDetector(allow="function:f").allow == (NPlusOneAllow(function="f"),)
    assert NPlusOneDetector(allow=rule).allow == (rule,)
    assert parse_allow(" Function : paginate ") == NPlusOneAllow(function="paginate")


# Allowlist


def _allow_cases() -> list[Any]:
    here = __file__.rsplit("/", 1)[1]
    return [
        pytest.param("sql:select v from t where id = ?", id="sql normalized"),
        pytest.param("sql:SELECT v FROM t WHERE id = 5", id="sql with other literal"),
        pytest.param("sql:select * from t *", id="sql glob"),
        pytest.param("sql:*where i*", id="sql glob inside an identifier"),
        pytest.param("sql:*FROM t WHERE*", id="sql glob around a clause"),
        pytest.param(f"fingerprint:{dbopt.fingerprint(QUERY)}", id="fingerprint"),
        pytest.param(f"path:{here}", id="path suffix"),
        pytest.param(f"path:tests/{here}", id="longer path suffix"),
        pytest.param("path:*/test_nplus*.py", id="path glob"),
        pytest.param(f"path:{here}:{LOOKUP_LINE}", id="path and line"),
        pytest.param("function:lookup", id="function, innermost frame"),
        pytest.param("function:run_the_loop", id="function, outer frame"),
        pytest.param("function:run_*", id="function glob"),
        pytest.param("kind:n_plus_one", id="kind"),
        pytest.param(NPlusOneAllow(function="lookup", kind="n_plus_one"), id="two fields"),
    ]


@pytest.mark.parametrize("entry", _allow_cases())
def test_allow_entries_match(conn: sqlite3.Connection, entry: str | NPlusOneAllow) -> None:
    det, found = collecting(allow=[entry])
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        run_the_loop(db)
    assert found == []
    assert det.stale_allowlist() == []


@pytest.mark.parametrize(
    "entry",
    [
        "sql:select id from t *",
        "sql:*legs*",
        "sql:*where id*x*",
        "fingerprint:0000000000000000",
        "path:other.py",
        "path:nplusone.py",
        f"path:{__file__}:1",
        "function:lookup_*",
        "relationship:*",
        "kind:repeated_query",
        NPlusOneAllow(function="lookup", kind="repeated_query"),
    ],
)
def test_allow_entries_that_do_not_match_are_stale(
    conn: sqlite3.Connection, entry: str | NPlusOneAllow
) -> None:
    det, found = collecting(allow=[entry])
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        run_the_loop(db)
    assert len(found) == 1
    assert det.stale_allowlist() == [parse_allow(entry)]


def test_stale_allowlist_over_a_run(conn: sqlite3.Connection) -> None:
    det, found = collecting(allow=["function:run_the_loop", "relationship:User.posts"])
    db = dbopt.wrap_dbapi(conn, det)
    assert [r.function for r in det.stale_allowlist()] == ["run_the_loop", None]
    with dbopt.scope("s"):
        run_the_loop(db)
        assert det.pending() == []
        assert len(det.stale_allowlist()) == 2  # pending() does not use up rules
    assert det.stale_allowlist() == [NPlusOneAllow(relationship="User.posts")]
    det.clear()
    assert len(det.stale_allowlist()) == 2
    assert found == []
    assert det.findings == []


# Bounds


def test_memory_is_bounded_per_scope(conn: sqlite3.Connection) -> None:
    det, found = collecting(max_groups=2, max_values=3)
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        for column in ("id", "v", "rowid"):
            for key in range(3):
                db.execute(f"SELECT * FROM t WHERE {column} = ?", (key,)).fetchall()
        for key in range(10):
            lookup(db, 30 + key)
            lookup(db, 30 + key)
    assert [(f.kind, f.sql.split()[-3]) for f in found] == [
        ("n_plus_one", "id"),
        ("n_plus_one", "v"),
    ]


def test_values_past_max_values_are_not_tracked(conn: sqlite3.Connection) -> None:
    det, found = collecting(max_values=2, params="keep")
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s"):
        db.execute("SELECT 1")
        db.execute("SELECT 2")
        for _ in range(2):
            db.execute("SELECT 3")  # a third value: not tracked
        db.execute("SELECT 1")
    assert [(f.kind, f.sql, f.count) for f in found] == [("repeated_query", "SELECT 1", 2)]


def test_a_context_kept_after_its_scope_ended_is_ignored(conn: sqlite3.Connection) -> None:
    det, found = collecting()
    db = dbopt.wrap_dbapi(conn, det)
    with dbopt.scope("s") as ended:
        kept = contextvars.copy_context()  # as a background task would
    kept.run(run_the_loop, db)
    assert det.pending(ended) == []
    assert found == []
    assert det.unscoped == 0


# SQLAlchemy ORM


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "npu_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "npu_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("npu_authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")


@pytest.fixture
def orm_engine(sqlite_engine: Engine) -> Engine:
    Base.metadata.create_all(sqlite_engine)
    with Session(sqlite_engine) as s:
        s.add_all([Author(id=i, books=[Book(id=i * 10 + j) for j in range(2)]) for i in range(4)])
        s.commit()
    return sqlite_engine


def count_books(author: Author) -> int:
    return len(author.books)


def author_id(book: Book) -> int:
    return book.author.id


def test_lazy_loads_name_the_relationship_the_option_and_the_line(orm_engine: Engine) -> None:
    det = NPlusOneDetector(action="raise")

    def view(s: Session) -> None:
        for author in s.scalars(select(Author)):
            count_books(author)
        s.expunge_all()
        for book in s.scalars(select(Book)):
            author_id(book)

    with (
        dbopt.instrument(orm_engine, det),
        Session(orm_engine) as s,
        pytest.raises(NPlusOneError) as info,
    ):
        checked(view, s, name="GET /authors")
    books, author = info.value.findings
    assert (books.relationship, books.loader_option, books.count) == (
        "Author.books",
        "selectinload(Author.books)",
        4,
    )
    assert (author.relationship, author.loader_option, author.count) == (
        "Book.author",
        "joinedload(Book.author)",
        4,
    )
    books_line = count_books.__code__.co_firstlineno + 1
    assert books.callsite is not None
    assert books.callsite.line == books_line
    assert author.callsite is not None
    assert author.callsite.line == author_id.__code__.co_firstlineno + 1
    assert "add .options(selectinload(Author.books)) to the query that loads the Author" in str(
        books
    )
    message = str(info.value)
    assert "N+1: 4 queries of Author.books (lazy load)" in message
    assert f"{__file__}:{books_line}" in message
    assert "joinedload(Book.author)" in message


def test_allow_by_relationship(orm_engine: Engine) -> None:
    det, found = collecting(allow=["relationship:Author.*"])
    with dbopt.instrument(orm_engine, det), Session(orm_engine) as s, dbopt.scope("s"):
        for author in s.scalars(select(Author)):
            len(author.books)
    assert found == []
    assert det.stale_allowlist() == []


def test_is_a_scope_aware_sink() -> None:
    assert isinstance(NPlusOneDetector(), dbopt.ScopeAwareSink)
    assert "threshold=2" in repr(NPlusOneDetector())


# Concurrency on PostgreSQL: findings land in exactly the scopes that loop


def _request(engine: Engine, i: int, barrier: threading.Barrier) -> None:
    with dbopt.scope(f"request {i}"), engine.connect() as conn:
        barrier.wait()
        keys = range(3) if i % 3 == 0 else [i]
        for key in keys:
            conn.execute(text("SELECT CAST(:k AS int) + 1"), {"k": key}).scalar()


def test_threads_on_postgres(pg_engine: Engine) -> None:
    det, found = collecting()
    barrier = threading.Barrier(12)
    with dbopt.instrument(pg_engine, det), ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: _request(pg_engine, i, barrier), range(12)))
    assert sorted(f.scope or "" for f in found) == [f"request {i}" for i in (0, 3, 6, 9)]
    assert {f.count for f in found} == {3}


def test_async_tasks_on_postgres(pg_url: str) -> None:
    det, found = collecting()
    engine = create_async_engine(pg_url, pool_size=20)

    async def request(i: int) -> None:
        async with dbopt.scope(f"request {i}"), engine.connect() as conn:
            keys = range(3) if i % 4 == 1 else [i]
            for key in keys:
                await conn.execute(text("SELECT CAST(:k AS int) + 1"), {"k": key})
                await asyncio.sleep(0)

    async def main() -> None:
        try:
            await asyncio.gather(*(request(i) for i in range(20)))
        finally:
            await engine.dispose()

    with dbopt.instrument(engine, det):
        asyncio.run(main())
    assert sorted(f.scope or "" for f in found) == sorted(
        f"request {i}" for i in range(20) if i % 4 == 1
    )
    assert {f.count for f in found} == {3}


# The overhead benchmark still runs (tiny counts; it checks what each configuration saw)


def test_overhead_benchmark_runs_on_sqlite(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench_dir = Path(__file__).resolve().parent.parent / "bench"
    monkeypatch.syspath_prepend(str(bench_dir))
    spec = importlib.util.spec_from_file_location("dbopt_bench_nplusone", bench_dir / "nplusone.py")
    assert spec is not None
    assert spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)
    spec.loader.exec_module(bench)
    results = bench.main(["--quick", "--no-postgres"])
    assert [(r.database, r.workload) for r in results] == [
        ("SQLite in memory", "core"),
        ("SQLite in memory", "orm"),
    ]
    for result in results:
        assert list(result.samples) == ["bare", "noop-sink", "detector"]
        assert all(len(v) == 2 for v in result.samples.values())
    out = capsys.readouterr().out
    assert "detector / bare:" in out
    assert "detector / no-op sink:" in out
