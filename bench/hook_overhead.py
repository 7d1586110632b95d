"""Per-query cost of dbopt's SQLAlchemy hook, against a bare engine and a listener pair.

Configurations, all on one engine (listeners are attached before a block
and removed after it, so the others never pay for them):

* ``bare``: no listeners.
* ``noop``: ``before_cursor_execute``/``after_cursor_execute`` listeners whose
  bodies do nothing.
* ``timing``: the fairest pair, and the one the target is measured against:
  the before listener stores ``time.perf_counter()`` on the execution
  context, the after listener computes the difference.
* ``dbopt``: ``dbopt.instrument(engine, QueryLogger(), QueryStats())`` with
  call-site capture at its default depth (5); the ``dbopt.sql`` logger is at
  INFO with a handler whose ``emit()`` does nothing. QueryLogger's per-query
  records are DEBUG, so at INFO only slow queries and errors are emitted: the
  configuration an application runs in production.
* ``dbopt+log-all``: as ``dbopt``, but QueryLogger(level=INFO), so every
  statement becomes a log record (the logging machinery up to the I/O:
  record, lock, handler), as in development.

``--breakdown`` adds configurations that take dbopt apart (a sink that does
nothing, with and without call-site capture, each sink alone, and a handler
that formats every record); ``--profile`` prints a cProfile of dbopt blocks.

Workloads: ``core`` runs ``conn.execute(text("SELECT ... WHERE id = :id"),
{"id": n}).one()`` in a loop on one connection (the same text, so dbopt's
fingerprint cache is hot); ``orm`` runs ``session.get(Item, n,
populate_existing=True)`` (which always issues its SELECT). Databases:
SQLite in memory and PostgreSQL over loopback (``DBOPT_TEST_DSN``, else an
embedded server; ``--pg-url`` uses an existing database instead).

Targets from the issue, informational (nothing asserts timings): dbopt adds
at most 1.5x what the listener pair adds, and on PostgreSQL the whole stack
costs at most 5 % over bare. Run: ``python bench/hook_overhead.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import math
import pstats
import secrets
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, TextIO

from _common import (
    Samples,
    databases,
    describe_machine,
    interleave,
    mark,
    median,
    paired_delta,
    print_table,
    ratio,
)
from sqlalchemy import Engine, Integer, String, event, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import dbopt

ROWS = 1000
BASELINE = "bare"
PAIR = "timing"
FULL = "dbopt"
#: dbopt with every statement logged (development settings).
LOG_ALL = "dbopt+log-all"
#: dbopt added / listener pair added, at most.
PAIR_TARGET = 1.5
#: dbopt total / bare on PostgreSQL, at most.
PG_TARGET = 1.05

CONFIGS = ("bare", "noop", "timing", "dbopt", "dbopt,no-orm-ctx", "dbopt+log-all")
BREAKDOWN = (
    "null-sink,cs=0",
    "null-sink",
    "stats-only",
    "logger-only",
    "dbopt,log=WARNING",
    "dbopt+format",
)
#: Queries per block by (database, workload): blocks of roughly 30-60 ms.
QUERIES = {
    ("sqlite", "core"): 1500,
    ("sqlite", "orm"): 400,
    ("postgresql", "core"): 300,
    ("postgresql", "orm"): 150,
}
DESCRIPTIONS = {
    "bare": "no listeners",
    "noop": "no-op before/after listener pair",
    "timing": "pair storing perf_counter() on the context, after takes the difference",
    "dbopt": "QueryLogger (logger at INFO, handler discards) + QueryStats, call sites depth 5",
    "dbopt+log-all": "as dbopt, but every statement is logged at INFO (handler discards)",
    "dbopt,no-orm-ctx": "as dbopt, with instrument(..., orm_context=False)",
    "null-sink,cs=0": "dbopt with one sink that does nothing, call-site capture off",
    "null-sink": "dbopt with one sink that does nothing, call sites depth 5",
    "stats-only": "dbopt with QueryStats only",
    "logger-only": "dbopt with QueryLogger only",
    "dbopt,log=WARNING": "as dbopt, but dbopt.sql at WARNING (production: only slow queries log)",
    "dbopt+format": "as dbopt, but the handler formats every record (a real handler would)",
}


class DiscardHandler(logging.Handler):
    """Takes every record through ``Handler.handle`` (filters, lock) and writes nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


class FormattingHandler(logging.Handler):
    """Formats every record as a stream handler would, then drops the text."""

    def emit(self, record: logging.LogRecord) -> None:
        self.format(record)


# Listener pairs


def _noop_before(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
    pass


def _noop_after(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
    pass


def _timing_before(
    conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
) -> None:
    ctx._bench_started = time.perf_counter()


def _timing_after(
    conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool
) -> None:
    ctx._bench_elapsed = time.perf_counter() - ctx._bench_started


@contextmanager
def _listeners(
    engine: Engine, before: Callable[..., None], after: Callable[..., None]
) -> Iterator[None]:
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


# dbopt configurations


@dataclass
class DboptSetup:
    """Sinks reused by every block of one run, and the ``dbopt.sql`` logger's state."""

    stats: dbopt.QueryStats = field(default_factory=dbopt.QueryStats)
    logger: dbopt.QueryLogger = field(default_factory=dbopt.QueryLogger)
    logger_all: dbopt.QueryLogger = field(
        default_factory=lambda: dbopt.QueryLogger(level=logging.INFO)
    )
    stats_alone: dbopt.QueryStats = field(default_factory=dbopt.QueryStats)
    seen: list[int] = field(default_factory=lambda: [0])

    def null_sink(self, event: dbopt.QueryEvent) -> None:
        """A sink that only counts (so the run can check dbopt saw every statement)."""
        self.seen[0] += 1


@contextmanager
def _sql_logger(handler: logging.Handler, level: int = logging.INFO) -> Iterator[None]:
    log = logging.getLogger("dbopt.sql")
    saved = (log.level, log.propagate, list(log.handlers))
    log.setLevel(level)
    log.propagate = False
    log.handlers = [handler]
    try:
        yield
    finally:
        log.level, log.propagate, log.handlers = saved[0], saved[1], saved[2]


def _config(name: str, engine: Engine, setup: DboptSetup) -> AbstractContextManager[Any]:
    """The context manager that puts ``engine`` in configuration ``name``."""
    if name == "bare":
        return nullcontext()
    if name == "noop":
        return _listeners(engine, _noop_before, _noop_after)
    if name == "timing":
        return _listeners(engine, _timing_before, _timing_after)
    stack = ExitStack()
    if name in (
        "dbopt",
        "dbopt,no-orm-ctx",
        "dbopt+log-all",
        "dbopt+format",
        "logger-only",
        "dbopt,log=WARNING",
    ):
        handler = FormattingHandler() if name == "dbopt+format" else DiscardHandler()
        level = logging.WARNING if name == "dbopt,log=WARNING" else logging.INFO
        stack.enter_context(_sql_logger(handler, level))
    sinks: tuple[Any, ...] = {
        "dbopt": (setup.logger, setup.stats),
        "dbopt,no-orm-ctx": (setup.logger, setup.stats),
        "dbopt+log-all": (setup.logger_all, setup.stats),
        "dbopt,log=WARNING": (setup.logger, setup.stats),
        "dbopt+format": (setup.logger_all, setup.stats),
        "logger-only": (setup.logger_all,),
        "stats-only": (setup.stats_alone,),
        "null-sink": (setup.null_sink,),
        "null-sink,cs=0": (setup.null_sink,),
    }[name]
    depth = 0 if name == "null-sink,cs=0" else 5
    orm = name != "dbopt,no-orm-ctx"
    stack.enter_context(dbopt.instrument(engine, *sinks, callsite_depth=depth, orm_context=orm))
    return stack


def _events_seen(name: str, setup: DboptSetup) -> int:
    if name in ("dbopt", "dbopt,no-orm-ctx", "dbopt+log-all", "dbopt+format", "dbopt,log=WARNING"):
        return setup.stats.total_calls
    if name == "stats-only":
        return setup.stats_alone.total_calls
    if name.startswith("null-sink"):
        return setup.seen[0]
    return -1  # the logger keeps no count; the handler would need one


# Workloads


class Workload:
    """A table of ``ROWS`` rows and a loop that selects them by primary key."""

    def __init__(self, engine: Engine, kind: str) -> None:
        self.engine = engine
        self.kind = kind
        self.table = f"dbopt_bench_items_{secrets.token_hex(3)}"

        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = self.table
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            name: Mapped[str] = mapped_column(String(50))
            value: Mapped[int] = mapped_column(Integer)

        self.model = Item
        self.metadata = Base.metadata
        self.statement = text(f"SELECT id, name, value FROM {self.table} WHERE id = :id")

    def create(self) -> None:
        self.metadata.create_all(self.engine)
        rows = [{"id": i, "name": f"item {i}", "value": i * 7} for i in range(1, ROWS + 1)]
        with self.engine.begin() as conn:
            conn.execute(insert(self.model.__table__), rows)  # type: ignore[arg-type]

    def drop(self) -> None:
        self.metadata.drop_all(self.engine)

    def run(self, queries: int, clock: Callable[[], float] = time.perf_counter) -> float:
        """Run ``queries`` selects (plus one untimed); return seconds per query by ``clock``."""
        ids = [i % ROWS + 1 for i in range(queries)]
        if self.kind == "orm":
            model = self.model
            with Session(self.engine) as session:
                session.get(model, 1, populate_existing=True)
                started = clock()
                for pk in ids:
                    session.get(model, pk, populate_existing=True)
                return (clock() - started) / queries
        statement = self.statement
        with self.engine.connect() as conn:
            conn.execute(statement, {"id": 1}).one()
            started = clock()
            for pk in ids:
                conn.execute(statement, {"id": pk}).one()
            return (clock() - started) / queries


@dataclass
class Result:
    """Seconds per query of each configuration, one sample per repetition."""

    database: str
    workload: str
    queries: int
    repeats: int
    samples: Samples

    def us(self, name: str) -> float:
        """Median µs per query."""
        return median(self.samples[name]) * 1e6

    def added_us(self, name: str) -> float:
        """Median (paired by repetition) µs per query over bare."""
        return paired_delta(self.samples, name, BASELINE) * 1e6

    @property
    def pair_ratio(self) -> float:
        """dbopt added / listener pair added."""
        return ratio(self.added_us(FULL), self.added_us(PAIR))

    @property
    def total_ratio(self) -> float:
        """dbopt total / bare."""
        return ratio(self.us(FULL), self.us(BASELINE))


def measure(
    engine: Engine,
    database: str,
    workload: str,
    configs: Sequence[str],
    *,
    queries: int,
    repeats: int,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> Result:
    """Time ``configs`` on ``engine`` with ``workload``, interleaved."""
    work = Workload(engine, workload)
    work.create()
    setup = DboptSetup()
    try:

        def block(name: str) -> Callable[[], float]:
            def run() -> float:
                before = _events_seen(name, setup)
                with _config(name, engine, setup):
                    seconds = work.run(queries, clock)
                after = _events_seen(name, setup)
                if before >= 0 and after - before != queries + 1:
                    raise RuntimeError(
                        f"{name}: dbopt saw {after - before} of {queries + 1} statements; "
                        "the benchmark is not measuring what it claims"
                    )
                return seconds

            return run

        samples = interleave({name: block(name) for name in configs}, repeats, warmup=warmup)
    finally:
        setup.logger.close()
        setup.logger_all.close()
        work.drop()
    return Result(database, workload, queries, repeats, samples)


# Reporting


def report(result: Result, out: TextIO | None = None) -> None:
    """Print one result's table and its ratios against the targets."""
    stream = out or sys.stdout
    print(
        f"\n{result.database}, {result.workload}: SELECT by primary key "
        f"({result.queries} queries x {result.repeats} repetitions, medians)",
        file=stream,
    )
    rows = []
    for name in result.samples:
        base = name == BASELINE
        rows.append(
            [
                name,
                f"{result.us(name):.2f}",
                "-" if base else f"{result.added_us(name):+.2f}",
                f"{ratio(result.us(name), result.us(BASELINE)):.3f}",
            ]
        )
    print_table(["config", "us/query", "added us", "x bare"], rows, out=stream)
    against_noop = ratio(result.added_us(FULL), result.added_us("noop"))
    print(
        f"dbopt added / listener pair added: {_ratio_mark(result.pair_ratio, PAIR_TARGET)}"
        f"   [against the no-op pair: {_ratio_mark(against_noop, None)}]",
        file=stream,
    )
    target = (
        f"(target <= {PG_TARGET}) {mark(result.total_ratio, PG_TARGET)}"
        if result.database.startswith("PostgreSQL")
        else "(the 5 % target is for PostgreSQL)"
    )
    print(f"dbopt / bare: {result.total_ratio:.3f} {target}", file=stream)


def _ratio_mark(value: float, target: float | None, *, short: bool = False) -> str:
    """``3.2x MISS``; ``n/a`` when the baseline added nothing measurable."""
    if math.isnan(value) or value <= 0:
        return "n/a" if short else "n/a (baseline added nothing measurable)"
    return f"{value:.1f}x" + (f" {mark(value, target)}" if target is not None else "")


def summary(results: Sequence[Result], out: TextIO | None = None) -> None:
    """One line per result: the two figures the targets are about."""
    stream = out or sys.stdout
    print("\nSummary (targets informational; nothing asserts timings)", file=stream)
    rows = []
    for r in results:
        pg = r.database.startswith("PostgreSQL")
        rows.append(
            [
                f"{r.database.split(' ')[0]} {r.workload}",
                f"{r.us(BASELINE):.1f}",
                f"{r.added_us(PAIR):+.2f}",
                f"{r.added_us(FULL):+.2f}",
                _ratio_mark(r.pair_ratio, PAIR_TARGET, short=True),
                f"{r.total_ratio:.3f}" + (f" {mark(r.total_ratio, PG_TARGET)}" if pg else ""),
                f"{r.added_us(LOG_ALL):+.2f}" if LOG_ALL in r.samples else "-",
            ]
        )
    print_table(
        [
            "run",
            "bare us",
            "pair +us",
            "dbopt +us",
            "dbopt/pair <=1.5",
            "dbopt/bare <=1.05 (PG)",
            "log-all +us",
        ],
        rows,
        out=stream,
    )


def profile(engine: Engine, queries: int, out: TextIO | None = None) -> None:
    """cProfile dbopt blocks on ``engine`` and print where dbopt's time goes, per query.

    cProfile adds its own cost to every call, so small functions look
    heavier than they are: read it for proportions, the breakdown for costs.
    """
    stream = out or sys.stdout
    work = Workload(engine, "core")
    work.create()
    setup = DboptSetup()
    profiler = cProfile.Profile()
    try:
        with _config(FULL, engine, setup):
            work.run(queries)
            profiler.enable()
            work.run(queries)
            profiler.disable()
    finally:
        setup.logger.close()
        work.drop()
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in entries.items():
        where = _short(filename)
        if where is None:
            continue
        rows.append((tottime, cumtime, calls, f"{where}:{line}({function})"))
    rows.sort(reverse=True)
    print(
        f"\ncProfile of {queries} queries with dbopt on {engine.dialect.name}: "
        "dbopt and logging functions, µs per query under the profiler",
        file=stream,
    )
    print_table(
        ["function", "calls/q", "own us/q", "cum us/q"],
        [
            [
                name,
                f"{calls / queries:.1f}",
                f"{tot / queries * 1e6:.2f}",
                f"{cum / queries * 1e6:.2f}",
            ]
            for tot, cum, calls, name in rows[:20]
        ],
        out=stream,
    )


def _short(filename: str) -> str | None:
    """``dbopt/core/stats.py`` or ``logging/__init__.py`` style name, None for others."""
    path = filename.replace("\\", "/")
    for marker in ("/dbopt/", "/logging/"):
        if marker in path:
            return marker.strip("/") + "/" + path.rsplit(marker, 1)[1]
    return None


# Command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    parser.add_argument("--queries", type=int, help="queries per block")
    parser.add_argument("--repeats", type=int, help="interleaved repetitions per configuration")
    parser.add_argument(
        "--workload", default="core,orm", help="comma-separated: core, orm (default both)"
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: perf_counter (default); cpu: this thread's CPU time, immune to being "
        "descheduled on a busy machine but blind to time spent waiting on a server "
        "(applied to SQLite only)",
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", help="use this PostgreSQL database (SQLAlchemy URL)")
    parser.add_argument("--breakdown", action="store_true", help="take dbopt's cost apart")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of dbopt")
    args = parser.parse_args(argv)
    if args.quick:
        args.queries = args.queries or 20
        args.repeats = args.repeats or 2
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run the benchmark and print its tables; returns the results."""
    args = parse_args(argv)
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    configs = list(CONFIGS) + (list(BREAKDOWN) if args.breakdown else [])
    print(f"dbopt {dbopt.__version__} hook overhead; {describe_machine()}")
    for name in configs:
        print(f"  {name:<15} {DESCRIPTIONS[name]}")
    results: list[Result] = []
    for label, engine in databases(args):
        if engine is None:
            continue
        sqlite = label.startswith("SQLite")
        for workload in workloads:
            if workload not in ("core", "orm"):
                raise SystemExit(f"unknown workload {workload!r}")
            queries = args.queries or QUERIES["sqlite" if sqlite else "postgresql", workload]
            repeats = args.repeats or 25
            result = measure(engine, label, workload, configs, queries=queries, repeats=repeats)
            report(result)
            results.append(result)
        if args.profile and sqlite:
            profile(engine, args.queries or 5000)
    if results:
        summary(results)
    return results


if __name__ == "__main__":
    main()
