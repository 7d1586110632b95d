"""The pytest plugin, run with pytester on real databases (SQLite in memory, PostgreSQL)."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

import psycopg
import pytest

import dbopt
from dbopt.integrations.pytest_plugin import (
    NPlusOneAssertionError,
    NPlusOneGuard,
    QueryBudget,
    QueryBudgetError,
)
from dbopt.testing import libpq_url

pytest_plugins = ["pytester"]

PLUGIN = "dbopt.integrations.pytest_plugin"


def plugin_args() -> list[str]:
    """``-p`` the plugin unless its entry point already loads it (twice is an error)."""
    registered = any(ep.value == PLUGIN for ep in importlib.metadata.entry_points(group="pytest11"))
    return [] if registered else ["-p", PLUGIN]


SCHEMA = """
import pytest
from sqlalchemy import ForeignKey, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.orm import selectinload


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    posts: Mapped[list["Post"]] = relationship()


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


@pytest.fixture(scope="session")
def engine():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add_all([User(id=i, posts=[Post(), Post()]) for i in range(3)])
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def dbopt_targets(engine):
    return [engine]


def lazy_loop(engine):
    with Session(engine) as session:
        return [len(user.posts) for user in session.scalars(select(User))]


def eager_loop(engine):
    with Session(engine) as session:
        users = session.scalars(select(User).options(selectinload(User.posts)))
        return [len(user.posts) for user in users]
"""


@pytest.fixture
def inner(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        """
        [pytest]
        addopts = --strict-markers --strict-config
        filterwarnings = error
        """
    )
    pytester.makeconftest(SCHEMA)
    return pytester


def line_of(pytester: pytest.Pytester, marker: str) -> int:
    """The line of ``marker`` in the conftest pytester wrote."""
    source = (pytester.path / "conftest.py").read_text()
    for number, text in enumerate(source.splitlines(), start=1):
        if marker in text:
            return number
    raise AssertionError(marker)


def test_marker_fails_on_n_plus_one_with_fingerprint_count_and_line(
    inner: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With CI set, pytest repeats the full failure message in its short summary.
    monkeypatch.delenv("CI", raising=False)
    source = """
        import pytest
        from conftest import eager_loop, lazy_loop

        @pytest.mark.no_n_plus_one
        def test_lazy(engine):
            assert lazy_loop(engine) == [2, 2, 2]

        @pytest.mark.no_n_plus_one
        def test_eager(engine):
            assert eager_loop(engine) == [2, 2, 2]

        def test_unmarked_lazy(engine):
            assert lazy_loop(engine) == [2, 2, 2]

        @pytest.mark.no_n_plus_one(allow=["relationship:User.posts"])
        def test_allowed(engine):
            assert lazy_loop(engine) == [2, 2, 2]

        @pytest.mark.no_n_plus_one
        def test_own_failure_wins(engine):
            lazy_loop(engine)
            assert False, "the test's own failure"
    """
    inner.makepyfile(test_marked=source)
    result = inner.runpytest_subprocess(*plugin_args())
    result.assert_outcomes(passed=3, failed=2)
    out = result.stdout.str()
    conftest_line = line_of(inner, "for user in session.scalars(select(User))")
    found = re.search(
        r"N\+1: fingerprint (?P<fp>[0-9a-f]{16}) ran 3x \(User\.posts\) "
        rf"from conftest\.py:{conftest_line} in (lazy_loop|<listcomp>)\n\s+(?P<sql>SELECT .*)\n",
        out,
    )
    assert found, out
    assert found["fp"] == dbopt.fingerprint(found["sql"])  # the statement shown is the one counted
    assert "FROM posts WHERE ? = posts.user_id" in found["sql"]
    assert "fix: add .options(selectinload(User.posts))" in out
    assert "in scope test_marked.py::test_lazy" in out
    assert "AssertionError: the test's own failure" in out
    assert "test_own_failure_wins" in out
    assert out.count("N+1: fingerprint") == 1


def test_budget_fixture_and_marker(inner: pytest.Pytester) -> None:
    source = """
        import pytest
        from conftest import eager_loop, lazy_loop

        def test_over_budget(engine, assert_max_queries):
            with assert_max_queries(2):
                lazy_loop(engine)

        def test_within_budget(engine, assert_max_queries):
            with assert_max_queries(2) as budget:
                eager_loop(engine)
            assert len(budget.queries) == 2

        @pytest.mark.max_queries(1)
        def test_marker_over(engine):
            eager_loop(engine)

        @pytest.mark.max_queries(4)
        def test_marker_within(engine):
            lazy_loop(engine)

        def test_guard_fixture(engine, assert_no_n_plus_one):
            with assert_no_n_plus_one():
                eager_loop(engine)
            with assert_no_n_plus_one(threshold=5):
                lazy_loop(engine)
            with assert_no_n_plus_one():
                lazy_loop(engine)

        def test_queries_fixture(engine, dbopt_queries):
            eager_loop(engine)
            assert [e.orm.kind for e in dbopt_queries] == ["query", "eager_load"]
    """
    inner.makepyfile(test_budget=source)
    result = inner.runpytest_subprocess(*plugin_args())
    result.assert_outcomes(passed=3, failed=3)
    out = result.stdout.str()
    loop_line = line_of(inner, "for user in session.scalars(select(User))")
    assert "dbopt: 4 queries ran, the budget is 2 (2 over):" in out
    line = re.search(
        r"3x  (?P<sql>SELECT posts\.id.*FROM posts WHERE .*)  \[fingerprint (?P<fp>\w+)\]", out
    )
    assert line, out
    assert line["fp"] == dbopt.fingerprint(line["sql"])
    assert "lazy load of User.posts" in out
    assert re.search(rf"3x from conftest\.py:{loop_line} in (lazy_loop|<listcomp>)", out)
    assert "dbopt: 2 queries ran, the budget is 1 (1 over):" in out
    assert "test_guard_fixture" in out
    assert "N+1: fingerprint" in out


def test_ini_option_checks_every_test(inner: pytest.Pytester) -> None:
    inner.makeini(
        """
        [pytest]
        addopts = --strict-markers
        filterwarnings = error
        dbopt_no_n_plus_one = true
        """
    )
    inner.makepyfile(
        test_all="""
        from conftest import eager_loop, lazy_loop

        def test_lazy(engine):
            lazy_loop(engine)

        def test_eager(engine):
            eager_loop(engine)
        """
    )
    result = inner.runpytest_subprocess(*plugin_args())
    result.assert_outcomes(passed=1, failed=1)


def test_markers_are_registered(inner: pytest.Pytester) -> None:
    result = inner.runpytest_subprocess(*plugin_args(), "--markers")
    out = result.stdout.str()
    assert "@pytest.mark.no_n_plus_one(threshold=2, allow=(), repeated=False)" in out
    assert "@pytest.mark.max_queries(n)" in out


# The guards themselves, on PostgreSQL without any ORM


def lookups(conn: psycopg.Connection[Any], keys: list[int]) -> None:
    for key in keys:
        conn.execute("SELECT v FROM t WHERE id = %s", (key,)).fetchall()


def guarded(
    guard: NPlusOneGuard | QueryBudget, conn: psycopg.Connection[Any], keys: list[int]
) -> None:
    with guard:
        lookups(conn, keys)


def test_guards_on_raw_psycopg(pg_url: str) -> None:
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn, dbopt.instrument(conn):
        conn.execute("CREATE TEMP TABLE t (id int primary key, v text)")
        conn.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 5) g")
        with pytest.raises(NPlusOneAssertionError) as info:
            guarded(NPlusOneGuard("raw"), conn, [1, 2, 3])
        assert info.value.findings[0].count == 3
        assert isinstance(info.value, dbopt.NPlusOneError)
        with pytest.raises(NPlusOneAssertionError, match="repeated: fingerprint"):
            guarded(NPlusOneGuard("raw", repeated=True), conn, [1, 1])
        guarded(NPlusOneGuard("raw"), conn, [1, 1])  # the same key twice is not an N+1
        with NPlusOneGuard("set-based") as guard:
            conn.execute("SELECT v FROM t WHERE id = ANY(%s)", ([1, 2, 3],)).fetchall()
        assert guard.findings == []
        with pytest.raises(QueryBudgetError) as over:
            guarded(QueryBudget(1), conn, [4, 5])
        assert len(over.value.queries) == 2
        assert isinstance(over.value, dbopt.ReportedError)
    with pytest.raises(dbopt.ConfigurationError):
        QueryBudget(-1)
    with pytest.raises(dbopt.ConfigurationError):
        NPlusOneGuard(threshold=1)
