"""The N+1 detector's opt-in checks and column loads, on PostgreSQL through SQLAlchemy 2.

* per-object loads of deferred columns (``deferred=True``, ``load_only``, also
  under ``joinedload(...).load_only(...)``) and of expired objects: N+1s with
  the ``undefer`` / ``expire_on_commit=False`` hint;
* ``checks=("write_loops",)``: INSERT/UPDATE/DELETE row by row from one line;
* ``checks=("unbounded_queries",)``: a SELECT with no LIMIT over ``max_rows`` rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, delete, insert, select, text, update
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    load_only,
    mapped_column,
    relationship,
    selectinload,
    undefer,
)

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.errors import ConfigurationError


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "npk_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    bio: Mapped[str] = mapped_column(deferred=True)
    books: Mapped[list[Book]] = relationship(back_populates="author", order_by="Book.id")
    awards: Mapped[list[Award]] = relationship(order_by="Award.id")


class Book(Base):
    __tablename__ = "npk_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("npk_authors.id"))
    title: Mapped[str]
    summary: Mapped[str]
    author: Mapped[Author] = relationship(back_populates="books")


class Award(Base):
    __tablename__ = "npk_awards"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("npk_authors.id"))


ROWS = 30


@pytest.fixture(scope="module")
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(insert(Author), [{"id": i, "name": f"a{i}", "bio": "b"} for i in (1, 2, 3)])
        conn.execute(
            insert(Book),
            [
                {"id": i, "author_id": 1 + i % 3, "title": f"t{i}", "summary": "s"}
                for i in range(1, ROWS + 1)
            ],
        )
        conn.execute(insert(Award), [{"id": i, "author_id": 1 + i % 3} for i in range(1, 7)])
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


def run(engine: Engine, body: Any, **options: Any) -> list[NPlusOneFinding]:
    found: list[NPlusOneFinding] = []
    detector = NPlusOneDetector(action=found.append, repeat_threshold=None, **options)
    with dbopt.instrument(engine, detector), Session(engine) as session:
        with dbopt.scope("test"):
            body(session)
        session.rollback()
    return found


# Deferred and expired columns


def test_deferred_column_read_per_object_is_an_n_plus_one_with_undefer(engine: Engine) -> None:
    found = run(engine, lambda s: [a.bio for a in s.scalars(select(Author))])
    assert [(f.kind, f.count, f.relationship, f.loader_option) for f in found] == [
        ("n_plus_one", 3, "Author.bio", "undefer(Author.bio)")
    ]
    assert "deferred" in found[0].suggestion
    assert "column load" in found[0].describe()


def test_load_only_column_read_per_object(engine: Engine) -> None:
    found = run(
        engine,
        lambda s: [b.summary for b in s.scalars(select(Book).options(load_only(Book.title)))],
    )
    assert [(f.count, f.loader_option) for f in found] == [(ROWS, "undefer(Book.summary)")]


def test_deferred_column_under_joinedload_load_only_is_not_exempted_as_an_eager_load(
    engine: Engine,
) -> None:
    """issue 19: the per-row SELECT of Author.bio under joinedload(...).load_only(...)."""

    def body(s: Session) -> None:
        stmt = select(Book).options(joinedload(Book.author).load_only(Author.name))
        for book in s.scalars(stmt):
            assert book.author.bio

    found = run(engine, body)
    assert [(f.count, f.relationship, f.loader_option) for f in found] == [
        (3, "Author.bio", "undefer(Author.bio)")
    ]


def test_the_undefer_hint_runs_and_removes_the_loads(engine: Engine) -> None:
    def body(s: Session) -> None:
        stmt = select(Book).options(joinedload(Book.author).undefer(Author.bio))
        assert all(book.author.bio for book in s.scalars(stmt))

    assert run(engine, body) == []
    assert (
        run(
            engine,
            lambda s: [a.bio for a in s.scalars(select(Author).options(undefer(Author.bio)))],
        )
        == []
    )


def test_expired_objects_reloaded_per_object_get_the_expire_on_commit_hint(engine: Engine) -> None:
    def body(s: Session) -> None:
        authors = s.scalars(select(Author)).all()
        s.commit()  # expire_on_commit=True (the default) expires every object
        assert [a.name for a in authors]

    found = run(engine, body)
    assert [(f.kind, f.count, f.relationship, f.loader_option) for f in found] == [
        ("n_plus_one", 3, None, None)
    ]
    assert "expire_on_commit=False" in found[0].suggestion

    def kept(s: Session) -> None:
        s.expire_on_commit = False
        authors = s.scalars(select(Author)).all()
        s.commit()
        assert [a.name for a in authors]

    assert run(engine, kept) == []


# Write loops


def test_insert_loop_from_one_line_is_a_write_loop(engine: Engine) -> None:
    def body(s: Session) -> None:
        for i in range(5):
            s.execute(insert(Author).values(id=100 + i, name="n", bio="b"))

    found = run(engine, body, checks=["write_loops"])
    assert [(f.kind, f.count) for f in found] == [("write_loop", 5)]
    assert "executemany" in found[0].suggestion
    assert "npk_authors" in found[0].suggestion
    assert found[0].callsite is not None
    assert found[0].callsite.function == "body"
    assert "write loop: 5 single-row writes" in found[0].describe()


def test_update_and_delete_loops(engine: Engine) -> None:
    def body(s: Session) -> None:
        for i in (1, 2, 3):
            s.execute(update(Book).where(Book.id == i).values(title="x"))
        for i in (4, 5):
            s.execute(delete(Book).where(Book.id == i))

    found = run(engine, body, checks="write_loops")
    assert sorted((f.sql.split()[0], f.count) for f in found) == [("DELETE", 2), ("UPDATE", 3)]
    by_verb = {f.sql.split()[0]: f.suggestion for f in found}
    assert "bulk UPDATE" in by_verb["UPDATE"]
    assert ".in_(keys)" in by_verb["DELETE"]


def test_batched_writes_are_not_write_loops(engine: Engine) -> None:
    def body(s: Session) -> None:
        s.execute(insert(Author), [{"id": 200 + i, "name": "n", "bio": "b"} for i in range(5)])
        s.add_all([Author(id=300 + i, name="n", bio="b") for i in range(5)])
        s.flush()
        s.execute(update(Book).where(Book.id.in_([1, 2, 3])).values(title="y"))
        s.execute(insert(Author).values(id=400, name="one", bio="b"))  # once: not a loop
        s.execute(insert(Author).values(id=401, name="two", bio="b"))  # another line

    assert run(engine, body, checks=["write_loops", "unbounded_queries"]) == []


def test_write_loops_are_off_by_default_and_allowlisted_by_kind(engine: Engine) -> None:
    def body(s: Session) -> None:
        for i in range(3):
            s.execute(insert(Author).values(id=500 + i, name="n", bio="b"))

    assert run(engine, body) == []
    assert run(engine, body, checks=["write_loops"], allow=["kind:write_loop"]) == []


# Unbounded queries


def test_select_without_limit_over_max_rows_is_unbounded(engine: Engine) -> None:
    found = run(
        engine, lambda s: s.scalars(select(Book)).all(), checks=["unbounded_queries"], max_rows=10
    )
    assert [(f.kind, f.count) for f in found] == [("unbounded_query", 1)]
    assert f"returned {ROWS} rows" in found[0].suggestion
    assert "dbopt.eager.paginate" in found[0].suggestion


@pytest.mark.parametrize(
    "stmt",
    [
        pytest.param(select(Book).limit(20), id="LIMIT"),
        pytest.param(select(Book).fetch(20), id="FETCH FIRST"),
        pytest.param(select(Book).where(Book.id <= 10), id="few rows"),
    ],
)
def test_bounded_or_small_selects_are_not_unbounded(engine: Engine, stmt: Any) -> None:
    assert (
        run(engine, lambda s: s.scalars(stmt).all(), checks=["unbounded_queries"], max_rows=10)
        == []
    )


def test_unbounded_threshold_default_and_raw_sql(engine: Engine) -> None:
    assert run(engine, lambda s: s.scalars(select(Book)).all(), checks=["unbounded_queries"]) == []
    found = run(
        engine,
        lambda s: s.execute(text("SELECT * FROM generate_series(1, 1500)")).all(),
        checks=["unbounded_queries"],
    )
    assert [f.kind for f in found] == ["unbounded_query"]


def test_bad_checks_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="unknown check"):
        NPlusOneDetector(checks=["write_loop"])
    with pytest.raises(ConfigurationError, match="max_rows"):
        NPlusOneDetector(checks=["unbounded_queries"], max_rows=0)


# Cartesian products


def test_two_joined_collections_are_a_cartesian_product(engine: Engine) -> None:
    def body(s: Session) -> None:
        stmt = select(Author).options(joinedload(Author.books), joinedload(Author.awards))
        authors = s.scalars(stmt).unique().all()
        assert sum(len(a.books) * len(a.awards) for a in authors) == 60  # rows it returned

    found = run(engine, body, checks=["cartesian_products"])
    assert [(f.kind, f.relationship, f.loader_option) for f in found] == [
        (
            "cartesian_product",
            "Author.awards, Author.books",
            "selectinload(Author.awards), selectinload(Author.books)",
        )
    ]
    assert "Cartesian product" in found[0].describe()


@pytest.mark.parametrize(
    "options",
    [
        pytest.param((joinedload(Author.books),), id="one collection"),
        pytest.param(
            (joinedload(Author.books).joinedload(Book.author),), id="collection, then many-to-one"
        ),
        pytest.param(
            (selectinload(Author.books), selectinload(Author.awards)), id="the fix: selectinload"
        ),
        pytest.param((selectinload(Author.books), joinedload(Author.awards)), id="one of each"),
    ],
)
def test_one_joined_collection_or_selectinloads_are_not(engine: Engine, options: Any) -> None:
    def body(s: Session) -> None:
        s.scalars(select(Author).options(*options)).unique().all()

    assert run(engine, body, checks=["cartesian_products"]) == []


def test_nested_joined_collections_are_not_siblings(engine: Engine) -> None:
    def body(s: Session) -> None:
        stmt = select(Book).options(joinedload(Book.author).joinedload(Author.books))
        s.scalars(stmt).unique().all()

    assert run(engine, body, checks=["cartesian_products"]) == []
