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

``--isolated`` (issue 16) runs each configuration in a fresh process per
round, in a rotated order, beside the peers: OpenTelemetry's SQLAlchemy
instrumentation, queryspy and pytest-queryguard (imported from
``--peers-path`` or the environment; a peer that is not installed is
reported as such), and dbopt as stats+logger, N+1 alone, stats+logger+N+1,
with no sink, and detached. ``--callgrind`` adds valgrind instruction
counts per statement for each (two runs of different lengths, subtracted, so
start-up cancels out). See :data:`ISOLATED`.
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


# Isolated processes and peers (issue 16)

#: Configurations of ``--isolated``, each run in its own process.
ISOLATED = {
    "bare": "no listeners",
    "noop": "no-op before/after listener pair",
    "otel": "opentelemetry-instrumentation-sqlalchemy, TracerProvider with no exporter",
    "queryspy": "queryspy.record() around the loop (call-site capture on, its default)",
    "queryguard": "pytest_queryguard.record_queries() around the loop",
    "dbopt-sl": "QueryStats + QueryLogger (INFO, handler discards)",
    "dbopt-n1": "NPlusOneDetector, loop in a dbopt.scope",
    "dbopt-full": "QueryStats + QueryLogger + NPlusOneDetector, loop in a dbopt.scope",
    "dbopt-nosink": "dbopt.instrument(engine) with no sink",
    "dbopt-detached": "dbopt.instrument(engine, stats, logger) then close()",
}
FULL_ISOLATED = "dbopt-full"
#: ``--compiled-path DIR``: each dbopt configuration again, as ``<name>+mypyc``, in a
#: child that imports dbopt from DIR (a mypyc build of dbopt's per-statement modules; how
#: it was made, and why it is not shipped: docs/benchmarks/hook_overhead.md).
COMPILED_SUFFIX = "+mypyc"


def _peer_context(name: str, engine: Engine) -> AbstractContextManager[Any]:
    """Put ``engine`` in isolated configuration ``name`` (raises ImportError for a missing peer)."""
    stack = ExitStack()
    if name == "noop":
        stack.enter_context(_listeners(engine, _noop_before, _noop_after))
    elif name == "otel":
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
        from opentelemetry.sdk.trace import TracerProvider

        instrumentor = SQLAlchemyInstrumentor()
        instrumentor.instrument(engine=engine, tracer_provider=TracerProvider())
    elif name == "queryspy":
        import queryspy

        stack.enter_context(queryspy.record())
    elif name == "queryguard":
        import pytest_queryguard

        stack.enter_context(pytest_queryguard.record_queries())
    elif name.startswith("dbopt"):
        stack.enter_context(_sql_logger(DiscardHandler()))
        sinks: list[Any] = []
        if name in ("dbopt-sl", "dbopt-full", "dbopt-detached"):
            sinks += [dbopt.QueryStats(), dbopt.QueryLogger()]
        if name in ("dbopt-n1", "dbopt-full"):
            sinks.append(dbopt.NPlusOneDetector(action=lambda finding: None))
        handle = dbopt.instrument(engine, *sinks)
        if name == "dbopt-detached":
            handle.close()
        else:
            stack.callback(handle.close)
        if name in ("dbopt-n1", "dbopt-full"):
            stack.enter_context(dbopt.scope("bench"))
    return stack


def child(args: argparse.Namespace) -> None:
    """One configuration in this process: print seconds per statement (median of blocks)."""
    from sqlalchemy import create_engine

    if args.peers_path:
        sys.path[:0] = args.peers_path.split(":")
    if args.child.startswith("dbopt") and args.expect_compiled != _compiled():
        raise SystemExit(f"dbopt compiled: {_compiled()}, wanted {args.expect_compiled}")
    url = "sqlite://" if args.db == "sqlite" else _sa_url(args.pg_url)
    engine = (
        create_engine(url, pool_size=1, max_overflow=0)
        if args.db != "sqlite"
        else (create_engine(url))
    )
    work = Workload(engine, args.workload)
    work.create()
    try:
        try:
            context = _peer_context(args.child, engine)
        except ImportError as exc:
            print(f"missing {exc}")
            return
        with context:
            work.run(max(10, args.queries // 10))  # warm caches
            clock = time.process_time if args.clock == "cpu" else time.perf_counter
            samples = [work.run(args.queries, clock) for _ in range(args.blocks)]
        print(f"{median(samples):.9f}")
    finally:
        work.drop()
        engine.dispose()


def _compiled() -> bool:
    """Whether the dbopt this process imports runs its per-statement pipeline compiled."""
    import importlib.machinery

    import dbopt.core.pipeline

    return dbopt.core.pipeline.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def _sa_url(url: str | None) -> str:
    import os

    raw = url or os.environ.get("DBOPT_TEST_DSN") or ""
    if not raw:
        raise SystemExit("--isolated on PostgreSQL needs --pg-url or DBOPT_TEST_DSN")
    return raw.replace("postgresql://", "postgresql+psycopg://", 1)


def _spawn(
    args: argparse.Namespace,
    name: str,
    db: str,
    workload: str,
    queries: int,
    valgrind: bool = False,
    layout: int = 0,
) -> str:
    import subprocess

    command = [
        sys.executable,
        __file__,
        "--child",
        name,
        "--db",
        db,
        "--workload",
        workload,
        "--queries",
        str(queries),
        "--blocks",
        str(1 if valgrind else args.blocks),
        "--clock",
        args.clock,
    ]
    if args.pg_url:
        command += ["--pg-url", args.pg_url]
    if args.peers_path:
        command += ["--peers-path", args.peers_path]
    import os

    env = dict(os.environ)
    if name.endswith(COMPILED_SUFFIX):
        # the same configuration, importing dbopt from a mypyc build
        command[command.index(name)] = name.removesuffix(COMPILED_SUFFIX)
        command += ["--expect-compiled"]
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (args.compiled_path, env.get("PYTHONPATH")) if p
        )
    if valgrind:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "cg.out")
            # one hash seed for every child: dict and set layouts (and so the
            # instructions spent probing them) then repeat from process to process
            done = subprocess.run(  # noqa: S603 - our own command line
                ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command],  # noqa: S607
                capture_output=True,
                text=True,
                check=False,
                env={**env, "PYTHONHASHSEED": "0", LAYOUT_VAR: "x" * layout},
            )
        for line in done.stderr.splitlines():
            if "Collected" in line:
                return line.split()[-1]
        return "nan"
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{name} on {db} failed: {done.stderr[-2000:]}")
    return lines[-1]


def isolated_main(args: argparse.Namespace) -> dict[tuple[str, str], Samples]:
    """Every configuration of :data:`ISOLATED` in fresh processes, rounds in rotated order."""
    dbs = [
        d
        for d in ("sqlite", "postgresql")
        if not getattr(args, f"no_{d.replace('postgresql', 'postgres')}")
    ]
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    names = [n.strip() for n in args.configs.split(",")] if args.configs else list(ISOLATED)
    if args.compiled_path:
        names += [f"{n}{COMPILED_SUFFIX}" for n in names if n.startswith("dbopt")]
    print(f"dbopt {dbopt.__version__} hook overhead, isolated processes; {describe_machine()}")
    for name in names:
        base = name.removesuffix(COMPILED_SUFFIX)
        what = ISOLATED[base] if base == name else f"as {base}, dbopt compiled by mypyc"
        print(f"  {name:<21} {what}")
    results: dict[tuple[str, str], Samples] = {}
    for db in dbs:
        for workload in workloads:
            queries = args.queries or (2000 if db == "sqlite" else 500) // (
                1 if workload == "core" else 2
            )
            samples: Samples = {name: [] for name in names}
            missing: dict[str, str] = {}
            for rnd in range(args.rounds):
                shift = rnd % len(names)
                for name in names[shift:] + names[:shift]:
                    if name in missing:
                        continue
                    value = _spawn(args, name, db, workload, queries)
                    if value.startswith("missing"):
                        missing[name] = value
                        continue
                    samples[name].append(float(value))
            for name in missing:
                del samples[name]
            results[db, workload] = samples
            if args.rounds > 0:
                _isolated_report(db, workload, queries, args.rounds, samples, missing, args.clock)
            if args.callgrind:
                _callgrind_report(args, db, workload, [n for n in names if n not in missing])
    return results


def _isolated_report(
    db: str,
    workload: str,
    queries: int,
    rounds: int,
    samples: Samples,
    missing: dict[str, str],
    clock: str = "wall",
) -> None:
    bare = median(samples["bare"]) * 1e6
    print(
        f"\n{db}, {workload}: SELECT by primary key, {rounds} rounds x fresh process per "
        f"config, {queries} statements x blocks, medians; bare {bare:.2f} us ({clock} clock)"
    )
    rows = []
    for name, values in samples.items():
        us = median(values) * 1e6
        rows.append(
            [
                name,
                f"{us:.2f}",
                "-" if name == "bare" else f"{us - bare:+.2f}",
                f"{ratio(us, bare):.3f}",
            ]
        )
    print_table(["config", "us/stmt", "added us", "x bare"], rows)
    for name, why in missing.items():
        print(f"  {name}: not measured ({why})")
    if FULL_ISOLATED not in samples:
        return
    full = median(samples[FULL_ISOLATED]) * 1e6 - bare
    peer = "queryspy" if workload == "core" else "queryguard"
    if peer in samples:
        added = median(samples[peer]) * 1e6 - bare
        verdict = "PASS" if full <= added else "MISS"
        print(f"dbopt full added {full:+.2f} us vs {peer} {added:+.2f} us: {verdict}")
    if db == "postgresql" and clock == "cpu":
        print("(client CPU time: the server's share of a statement is not in 'bare')")
    elif db == "postgresql":
        total = ratio(median(samples[FULL_ISOLATED]) * 1e6, bare)
        print(f"dbopt full / bare: {total:.3f} (target <= {PG_TARGET}) {mark(total, PG_TARGET)}")
    noop = median(samples["noop"]) * 1e6 - bare if "noop" in samples else math.nan
    for name in ("dbopt-nosink", "dbopt-detached"):
        if name in samples:
            print(
                f"{name} added {median(samples[name]) * 1e6 - bare:+.2f} us "
                f"(no-op pair {noop:+.2f} us)"
            )


#: An environment variable whose length moves the child's heap (see _callgrind_report).
LAYOUT_VAR = "DBOPT_BENCH_LAYOUT"
#: Its lengths, one per memory layout measured (``--layouts`` takes the first N).
LAYOUT_PADS = (0, 100, 900, 300, 500, 700, 50)


def _callgrind_report(args: argparse.Namespace, db: str, workload: str, names: list[str]) -> None:
    # 1,000 statements apart: a one-off cost (a garbage collection, a cache fill) in one
    # child is spread over enough statements not to move the per-statement figure.
    # The count of one child still depends on where its objects landed in memory:
    # CPython's method cache is indexed by the attribute name's address, and
    # id()-hashed dicts probe by address, so the same configuration measured with
    # 100 bytes more of environment moves by thousands of instructions per statement
    # (bare SQLite Core: 178.0k and 184.4k). Each configuration is therefore counted
    # under several layouts (the same ones for every configuration) and the median
    # is reported, with the spread.
    small, large = 200, 1200
    pads = LAYOUT_PADS[: max(1, args.layouts)]
    rows = []
    from concurrent.futures import ThreadPoolExecutor

    def count(job: tuple[str, int]) -> tuple[str, int, float]:
        name, pad = job
        a = _spawn(args, name, db, workload, small, valgrind=True, layout=pad)
        b = _spawn(args, name, db, workload, large, valgrind=True, layout=pad)
        if a.startswith("missing") or b.startswith("missing"):
            return name, pad, float("nan")
        # each child runs a warm-up of queries // 10 and one block of ``queries``
        return (
            name,
            pad,
            (float(b.replace(",", "")) - float(a.replace(",", ""))) / ((large - small) * 1.1),
        )

    with ThreadPoolExecutor(args.jobs) as pool:
        measured = list(pool.map(count, [(n, p) for n in names for p in pads]))
    per: dict[str, dict[int, float]] = {name: {} for name in names}
    for name, pad, ir in measured:
        per[name][pad] = ir
    counts = {name: median(list(v.values())) for name, v in per.items()}
    base = counts.get("bare", float("nan"))
    bare_by_pad = per.get("bare", {})
    for name, ir in counts.items():
        # added count paired by layout, then the median: the layout moves bare too
        added = median([v - bare_by_pad.get(p, math.nan) for p, v in per[name].items()])
        spread = max(per[name].values()) - min(per[name].values())
        rows.append(
            [
                name,
                f"{ir:,.0f}",
                "-" if name == "bare" else f"{added:+,.0f}",
                f"{ratio(ir, base):.3f}",
                f"{spread:,.0f}",
            ]
        )
    print(
        f"\ncallgrind, {db} {workload}: instructions per statement, median of "
        f"{len(pads)} memory layouts (repeatable)"
    )
    print_table(["config", "Ir/stmt", "added Ir", "x bare", "layout spread"], rows)


if __name__ == "__main__":
    if "--child" in sys.argv or "--isolated" in sys.argv:
        iso = argparse.ArgumentParser()
        iso.add_argument("--child")
        iso.add_argument("--isolated", action="store_true")
        iso.add_argument("--callgrind", action="store_true")
        iso.add_argument("--db", default="sqlite")
        iso.add_argument("--workload", default="core,orm")
        iso.add_argument("--queries", type=int)
        iso.add_argument("--blocks", type=int, default=3)
        iso.add_argument(
            "--clock",
            choices=("wall", "cpu"),
            default="wall",
            help="cpu: this process's CPU time (the client's cost, immune to a busy machine)",
        )
        iso.add_argument("--rounds", type=int, default=5, help="0: callgrind only")
        iso.add_argument("--configs", help="comma-separated subset of ISOLATED (bare first)")
        iso.add_argument("--jobs", type=int, default=2, help="callgrind runs at once")
        iso.add_argument(
            "--layouts",
            type=int,
            default=3,
            help="callgrind: memory layouts counted per config (median; 1 = the old single run)",
        )
        iso.add_argument("--pg-url")
        iso.add_argument("--peers-path", default=__import__("os").environ.get("DBOPT_BENCH_PEERS"))
        iso.add_argument(
            "--compiled-path",
            help="also run each dbopt config (as NAME+mypyc) importing dbopt from this mypyc build",
        )
        iso.add_argument("--expect-compiled", action="store_true", help=argparse.SUPPRESS)
        iso.add_argument("--no-sqlite", action="store_true")
        iso.add_argument("--no-postgres", action="store_true")
        parsed = iso.parse_args()
        if parsed.child:
            child(parsed)
        else:
            isolated_main(parsed)
    else:
        main()
