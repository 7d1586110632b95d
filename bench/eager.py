"""``dbopt.eager.auto`` against the naive loop and a hand-written ``selectinload``, on PostgreSQL.

For N = 10, 100 and 1000 users (3 posts each), each configuration opens a
session, loads the first N users and reads ``len(user.posts)`` for each:

* ``naive``: plain lazy loading (1 + N statements).
* ``selectinload``: ``select(User).options(selectinload(User.posts))``.
* ``eager.auto``: the naive loop, in a session from a ``sessionmaker`` that
  ``dbopt.eager.auto`` was installed on once, before the measurements.

Printed per N: statements run and median wall time over interleaved
repetitions, with ratios to ``selectinload``. A last table shows what
``auto`` costs when nothing is lazily loaded (its ``load`` listener runs for
every object): loading N users without reading a relationship. The
statements of every block are counted with a ``before_cursor_execute``
listener, and each block's result is checked against the naive loop's.
PostgreSQL over loopback: ``DBOPT_TEST_DSN``, else an embedded server;
``--pg-url`` uses an existing database (a table pair named
``dbopt_bench_eager_*`` is created and dropped). Run: ``python bench/eager.py``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from _common import describe_machine, interleave, median, postgres_url, print_table, ratio
from sqlalchemy import Engine, ForeignKey, create_engine, event, insert, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    mapped_column,
    relationship,
    selectinload,
    sessionmaker,
)

from dbopt import eager

SIZES = (10, 100, 1000)
POSTS_PER_USER = 3
CONFIGS = ("naive", "selectinload", "eager.auto")


def make_models(suffix: str) -> tuple[type[DeclarativeBase], type, type]:
    """Mapped classes on uniquely named tables (the database may be shared)."""

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = f"dbopt_bench_eager_users_{suffix}"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str]
        posts: Mapped[list[Post]] = relationship()

    class Post(Base):
        __tablename__ = f"dbopt_bench_eager_posts_{suffix}"
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[int] = mapped_column(ForeignKey(User.id))
        title: Mapped[str]

    return Base, User, Post


@dataclass
class Result:
    """Figures for one N: statements per configuration and seconds per block."""

    size: int
    queries: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[float]] = field(default_factory=dict)
    load_only: dict[str, list[float]] = field(default_factory=dict)


class Bench:
    """The tables, the counter and the blocks."""

    def __init__(self, engine: Engine, largest: int) -> None:
        self.engine = engine
        self.Base, self.User, self.Post = make_models(secrets.token_hex(3))
        self.statements = 0
        self.sessions = sessionmaker(engine)
        # Installed once, as an application would (on its sessionmaker), not per block.
        self.auto_sessions = sessionmaker(engine)
        self.auto = eager.auto(self.auto_sessions)
        event.listen(engine, "before_cursor_execute", self._count)
        self.Base.metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(
                insert(self.User), [{"id": i, "name": f"user {i}"} for i in range(1, largest + 1)]
            )
            conn.execute(
                insert(self.Post),
                [
                    {"user_id": i, "title": f"post {i}.{j}"}
                    for i in range(1, largest + 1)
                    for j in range(POSTS_PER_USER)
                ],
            )

    def _count(self, *args: object) -> None:
        self.statements += 1

    def close(self) -> None:
        self.auto.close()
        event.remove(self.engine, "before_cursor_execute", self._count)
        self.Base.metadata.drop_all(self.engine)

    def run(self, config: str, size: int, *, read: bool = True) -> tuple[int, int, float]:
        """(statements, posts read, seconds) for one block."""
        user = self.User
        stmt = select(user).order_by(user.id).limit(size)
        if config == "selectinload":
            stmt = stmt.options(selectinload(user.posts))
        factory = self.auto_sessions if config == "eager.auto" else self.sessions
        before = self.statements
        start = time.perf_counter()
        with factory() as session:
            users = session.scalars(stmt).all()
            total = sum(len(u.posts) for u in users) if read else len(users)
        return self.statements - before, total, time.perf_counter() - start

    def block(self, config: str, size: int, *, read: bool = True) -> Callable[[], float]:
        expected = size * POSTS_PER_USER if read else size

        def measure() -> float:
            _, total, seconds = self.run(config, size, read=read)
            if total != expected:
                raise AssertionError(f"{config} N={size}: read {total}, expected {expected}")
            return seconds

        return measure


def measure(bench: Bench, sizes: Sequence[int], repeats: int) -> list[Result]:
    results = []
    for size in sizes:
        result = Result(size)
        for config in CONFIGS:
            statements, total, _ = bench.run(config, size)
            if total != size * POSTS_PER_USER:
                raise AssertionError(f"{config} N={size}: read {total} posts")
            result.queries[config] = statements
        result.samples = interleave({c: bench.block(c, size) for c in CONFIGS}, repeats)
        result.load_only = interleave(
            {c: bench.block(c, size, read=False) for c in ("naive", "eager.auto")}, repeats
        )
        results.append(result)
    return results


def report(results: Sequence[Result], repeats: int) -> None:
    print(f"eager.auto vs naive vs selectinload on PostgreSQL; {describe_machine()}")
    print(f"{POSTS_PER_USER} posts per user; median of {repeats} interleaved repetitions\n")
    rows = []
    for result in results:
        base = median(result.samples["selectinload"])
        for config in CONFIGS:
            ms = median(result.samples[config]) * 1000
            rows.append(
                [
                    f"N={result.size}",
                    config,
                    result.queries[config],
                    f"{ms:.2f}",
                    f"{ratio(ms / 1000, base):.2f}",
                ]
            )
    print_table(["users", "configuration", "statements", "ms", "/ selectinload"], rows)
    print("\nLoading N users without reading a relationship (auto's per-object listener):")
    rows = []
    for result in results:
        bare = median(result.load_only["naive"])
        auto = median(result.load_only["eager.auto"])
        rows.append(
            [
                f"N={result.size}",
                f"{bare * 1000:.2f}",
                f"{auto * 1000:.2f}",
                f"{ratio(auto, bare):.2f}",
            ]
        )
    print_table(["users", "plain ms", "eager.auto ms", "ratio"], rows)


def main(argv: Sequence[str] | None = None) -> list[Result]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="N=10 and 100, one repetition")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--pg-url", default=None, help="an existing database (SQLAlchemy URL)")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES
    repeats = args.repeats or (1 if args.quick else 7)

    def run(url: str) -> list[Result]:
        engine = create_engine(url)
        bench = Bench(engine, max(sizes))
        try:
            results = measure(bench, sizes, repeats)
        finally:
            bench.close()
            engine.dispose()
        report(results, repeats)
        return results

    if args.pg_url:
        return run(args.pg_url)
    with postgres_url(prefix="dbopt_bench_eager") as url:
        return run(url)


if __name__ == "__main__":
    main()
    sys.exit(0)
