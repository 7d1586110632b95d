"""Cost of the two ORM trackers: ``checks=["potential"]`` and ``eager.unused_eager_loads()``.

One SQLite in-memory database (``--pg-url`` for PostgreSQL instead), 20
authors with 5 books each. Workloads, each inside one ``dbopt.scope`` per run:

* ``lazy``: load the authors, read ``author.books`` on each (1 + 20 SELECTs,
  an N+1 every run: the findings are built and reported too);
* ``eager``: ``select(Author).options(selectinload(Author.books))`` and read
  every ``books`` (2 SELECTs, 120 objects loaded).

Configurations: ``bare`` (not instrumented), ``detector``
(``NPlusOneDetector()``), ``potential`` (``NPlusOneDetector(checks=
["potential"])``), ``unused`` (``detector`` plus an enabled
``eager.unused_eager_loads()``). Medians of interleaved repetitions in one
run; figures are microseconds per statement and ratios to ``bare`` and to
``detector``. Nothing asserts a timing. Run: ``python bench/orm_trackers.py``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from _common import describe_machine, interleave, median, ratio
from sqlalchemy import Engine, ForeignKey, create_engine, insert, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    mapped_column,
    relationship,
    selectinload,
)

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.eager import unused_eager_loads

AUTHORS = 20
BOOKS = 5
CONFIGS = ("bare", "detector", "potential", "unused")


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "dbopt_bench_trk_authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list[Book]] = relationship()


class Book(Base):
    __tablename__ = "dbopt_bench_trk_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("dbopt_bench_trk_authors.id"))


def seed(engine: Engine, authors: int, books: int) -> None:
    """(Re)create the two tables on ``engine``: ``authors`` authors with ``books`` books each."""
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(Author), [{"id": i} for i in range(1, authors + 1)])
        conn.execute(
            insert(Book),
            [{"id": i, "author_id": 1 + i % authors} for i in range(1, authors * books + 1)],
        )


def lazy(session: Session) -> int:
    authors = session.scalars(select(Author)).all()
    return sum(len(a.books) for a in authors) and 1 + len(authors)


def eager(session: Session) -> int:
    authors = session.scalars(select(Author).options(selectinload(Author.books))).all()
    return sum(len(a.books) for a in authors) and 2


WORKLOADS: dict[str, Callable[[Session], int]] = {"lazy": lazy, "eager": eager}


def block(engine: Engine, config: str, work: Callable[[Session], int], runs: int) -> float:
    """Seconds per statement over ``runs`` runs of ``work`` under ``config``."""
    found: list[Any] = []
    detector = (
        None
        if config == "bare"
        else NPlusOneDetector(
            action=found.append,
            repeat_threshold=None,
            checks=("potential",) if config == "potential" else (),
        )
    )
    tracker = unused_eager_loads(action=found.append) if config == "unused" else None
    handle = dbopt.instrument(engine, detector) if detector is not None else None
    if tracker is not None:
        tracker.enable()
    try:
        statements = 0
        start = time.perf_counter()
        for _ in range(runs):
            with Session(engine) as session, dbopt.scope("bench"):
                statements += work(session)
        elapsed = time.perf_counter() - start
    finally:
        if tracker is not None:
            tracker.disable()
        if handle is not None:
            handle.close()
    return elapsed / statements


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", help="a PostgreSQL database (default: SQLite in memory)")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--runs", type=int, default=20, help="runs of a workload per block")
    args = parser.parse_args(argv)
    engine = create_engine(args.pg_url or "sqlite://")
    seed(engine, AUTHORS, BOOKS)
    print(describe_machine())
    print(f"{engine.dialect.name}; medians of {args.repeats} interleaved repetitions")
    print(f"{'workload':8} {'config':10} {'us/stmt':>8} {'/bare':>6} {'/detector':>9}")
    out: dict[str, dict[str, float]] = {}
    try:
        for name, work in WORKLOADS.items():
            samples = interleave(
                {c: (lambda c=c, w=work: block(engine, c, w, args.runs)) for c in CONFIGS},
                args.repeats,
            )
            us = {c: median(samples[c]) * 1e6 for c in CONFIGS}
            out[name] = us
            for c in CONFIGS:
                print(
                    f"{name:8} {c:10} {us[c]:8.1f} {ratio(us[c], us['bare']):6.2f} "
                    f"{ratio(us[c], us['detector']):9.2f}"
                )
    finally:
        Base.metadata.drop_all(engine)
        engine.dispose()
    return out


if __name__ == "__main__":
    main()
