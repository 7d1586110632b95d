"""``NPlusOneDetector(checks=["potential"])``: lazy loads on objects of multi-row results.

A test fixture with one parent row runs a loop's lazy load once, which the
default detector cannot tell from a single lookup. In this mode, objects
loaded by a statement that can return many rows (no ``LIMIT 1``, no equality
filter on the primary key or a unique column) are marked through
SQLAlchemy's ORM ``load`` event, and a lazy load on one of them is an N+1
even when it ran once. On PostgreSQL, one author with one book.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, event, insert, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, Session, mapped_column, relationship

import dbopt
from dbopt.adapters import sqlalchemy as adapter
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_checks import MULTI_ROW
from dbopt.core.nplusone_findings import NPlusOneFinding


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "npo_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(unique=True)
    name: Mapped[str]
    books: Mapped[list[Book]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "npo_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("npo_authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")
    reviews: Mapped[list[Review]] = relationship()


class Review(Base):
    __tablename__ = "npo_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("npo_books.id"))


@pytest.fixture(scope="module")
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    with pg_engine.begin() as conn:
        conn.execute(insert(Author), [{"id": 1, "email": "a@x", "name": "a"}])
        conn.execute(insert(Book), [{"id": 1, "author_id": 1}])
        conn.execute(insert(Review), [{"id": 1, "book_id": 1}])
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


def run(engine: Engine, body: Callable[[Session], Any], *checks: str) -> list[NPlusOneFinding]:
    found: list[NPlusOneFinding] = []
    detector = NPlusOneDetector(action=found.append, repeat_threshold=None, checks=checks)
    with dbopt.instrument(engine, detector), Session(engine) as session, dbopt.scope("test"):
        body(session)
    return found


MULTI_ROW_LOADS = {
    "collection of all()": lambda s: s.scalars(select(Author)).all()[0].books,
    "many-to-one of all()": lambda s: s.scalars(select(Book)).all()[0].author,
    "filter on a non-unique column": lambda s: (
        s.scalars(select(Author).where(Author.name == "a")).one().books
    ),
    "first() sends no LIMIT on SQLAlchemy 2": lambda s: s.scalars(select(Book)).first().author,  # type: ignore[union-attr]
    "LIMIT 10": lambda s: s.scalars(select(Author).limit(10)).all()[0].books,
    "object of a lazy-loaded collection": lambda s: (
        s.get(Author, 1).books[0].reviews  # type: ignore[union-attr]
    ),
}


@pytest.mark.parametrize("body", MULTI_ROW_LOADS.values(), ids=list(MULTI_ROW_LOADS))
def test_lazy_load_on_an_object_of_a_multi_row_result_is_reported_once_run(
    engine: Engine, body: Callable[[Session], Any]
) -> None:
    assert run(engine, body) == []  # the default: one load is not a loop
    found = run(engine, body, "potential")
    assert [(f.kind, f.count) for f in found] == [("n_plus_one", 1)]
    assert found[0].suggestion.startswith("potential N+1")
    assert found[0].loader_option in {
        "selectinload(Author.books)",
        "joinedload(Book.author)",
        "selectinload(Book.reviews)",
    }
    assert found[0].callsite is not None
    assert found[0].callsite.file == __file__


SINGLE_ROW_LOADS = {
    "session.get": lambda s: s.get(Author, 1).books,  # type: ignore[union-attr]
    "primary key filter": lambda s: s.scalars(select(Author).where(Author.id == 1)).one().books,
    "unique column filter": lambda s: (
        s.scalars(select(Author).where(Author.email == "a@x", Author.name == "a")).one().books
    ),
    "LIMIT 1": lambda s: s.scalars(select(Author).limit(1)).one().books,
    "many-to-one of a single object": lambda s: s.get(Book, 1).author,  # type: ignore[union-attr]
}


@pytest.mark.parametrize("body", SINGLE_ROW_LOADS.values(), ids=list(SINGLE_ROW_LOADS))
def test_lazy_load_on_a_single_row_result_is_not(
    engine: Engine, body: Callable[[Session], Any]
) -> None:
    assert run(engine, body, "potential") == []


def test_a_real_loop_is_one_finding_not_two(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Author), [{"id": 2, "email": "b@x", "name": "b"}])
    try:
        found = run(engine, lambda s: [a.books for a in s.scalars(select(Author))], "potential")
    finally:
        with engine.begin() as conn:
            conn.execute(Author.__table__.delete().where(Author.id == 2))
    assert [(f.kind, f.count) for f in found] == [("n_plus_one", 2)]
    assert not found[0].suggestion.startswith("potential")


def test_the_load_listener_exists_only_while_a_potential_detector_is_attached(
    engine: Engine,
) -> None:
    listening = lambda: event.contains(Mapper, "load", adapter._on_load)  # noqa: E731
    # the listener lives until the last instrumented engine is detached: an engine
    # another test left instrumented in this process keeps it (and is counted here)
    others = adapter._orm_users[0]
    assert listening() is (others > 0 and adapter._load_listening[0])
    detector = NPlusOneDetector(action=lambda f: None, checks=["potential"])
    with dbopt.instrument(engine, detector), Session(engine) as session:
        with dbopt.scope("test"):
            session.scalars(select(Author)).all()
        assert listening()
    assert adapter._orm_users[0] == others
    assert listening() is (others > 0)


def test_tracking_stops_when_no_potential_detector_is_left() -> None:
    detector = NPlusOneDetector(checks=["potential"])
    assert MULTI_ROW.wanted
    del detector
    gc.collect()
    assert not MULTI_ROW.wanted
