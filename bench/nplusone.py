"""Per-query cost of the N+1 detector, against a bare engine and a sink that does nothing.

Configurations, all on one engine (sinks are attached before a block and
detached after it, so the others never pay for them):

* ``bare``: not instrumented.
* ``noop-sink``: ``dbopt.instrument(engine, sink)`` with a sink that only
  counts: the cost of dbopt's hook and event (call sites at depth 5).
* ``detector``: ``dbopt.instrument(engine, NPlusOneDetector(action=...))``,
  defaults otherwise (threshold 2, repeated queries on, key depth 3); its
  action only counts findings.

Every configuration runs the same statements in the same scopes: a loop of
``SELECT ... WHERE id = :id`` with a new id each time, ``--scope-size``
statements (default 50) per ``dbopt.scope()``. Each scope is therefore an
N+1 the detector reports when the scope ends, so the figure includes
building and reporting findings, not only the per-statement bookkeeping.
Workloads: ``core`` (``conn.execute(text(...)).one()``) and ``orm``
(``session.get(Item, n, populate_existing=True)``, which always issues its
SELECT and carries ORM context). Databases: SQLite in memory and PostgreSQL
over loopback (``DBOPT_TEST_DSN``, else an embedded server; ``--pg-url``
uses an existing database). Medians over interleaved repetitions, one run;
nothing asserts a timing. Run: ``python bench/nplusone.py``.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from typing import Any

from _common import (
    Samples,
    databases,
    describe_machine,
    interleave,
    median,
    paired_delta,
    print_table,
    ratio,
)
from sqlalchemy import Engine, Integer, String, insert, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import dbopt
from dbopt.core.events import QueryEvent
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.core.scope import Scope

ROWS = 1000
CONFIGS = ("bare", "noop-sink", "detector")
DESCRIPTIONS = {
    "bare": "not instrumented",
    "noop-sink": "dbopt.instrument(engine, sink that only counts), call sites depth 5",
    "detector": "dbopt.instrument(engine, NPlusOneDetector(action=<count>)), defaults",
}


class Counters:
    """Events the no-op sink saw and findings the detector reported, across blocks."""

    def __init__(self) -> None:
        self.events = 0
        self.findings = 0

    def sink(self, event: dbopt.QueryEvent) -> None:
        self.events += 1

    def finding(self, finding: NPlusOneFinding) -> None:
        self.findings += 1


class Workload:
    """A table of ``ROWS`` rows and scopes of lookups by primary key."""

    def __init__(self, engine: Engine, kind: str, scope_size: int) -> None:
        self.engine = engine
        self.kind = kind
        self.scope_size = scope_size
        self.table = f"dbopt_bench_np_{secrets.token_hex(3)}"

        class Base(DeclarativeBase):
            pass

        class Item(Base):
            __tablename__ = self.table
            id: Mapped[int] = mapped_column(Integer, primary_key=True)
            name: Mapped[str] = mapped_column(String(50))

        self.model = Item
        self.metadata = Base.metadata
        self.statement = text(f"SELECT id, name FROM {self.table} WHERE id = :id")

    def create(self) -> None:
        self.metadata.create_all(self.engine)
        with self.engine.begin() as conn:
            conn.execute(
                insert(self.model.__table__),  # type: ignore[arg-type]
                [{"id": i, "name": f"item {i}"} for i in range(1, ROWS + 1)],
            )

    def drop(self) -> None:
        self.metadata.drop_all(self.engine)

    def scopes(self, queries: int) -> int:
        """How many scopes a block of ``queries`` statements opens."""
        return -(-queries // self.scope_size)

    def run(self, queries: int) -> float:
        """Run ``queries`` lookups (plus one untimed) in scopes; return seconds per query."""
        ids = [i % ROWS + 1 for i in range(queries)]
        size = self.scope_size
        if self.kind == "orm":
            model = self.model
            with Session(self.engine) as session:
                with dbopt.scope("warm-up"):
                    session.get(model, 1, populate_existing=True)
                started = time.perf_counter()
                for start in range(0, queries, size):
                    with dbopt.scope("unit of work"):
                        for pk in ids[start : start + size]:
                            session.get(model, pk, populate_existing=True)
                return (time.perf_counter() - started) / queries
        statement = self.statement
        with self.engine.connect() as conn:
            with dbopt.scope("warm-up"):
                conn.execute(statement, {"id": 1}).one()
            started = time.perf_counter()
            for start in range(0, queries, size):
                with dbopt.scope("unit of work"):
                    for pk in ids[start : start + size]:
                        conn.execute(statement, {"id": pk}).one()
            return (time.perf_counter() - started) / queries


def _config(
    name: str, engine: Engine, counters: Counters, detector: NPlusOneDetector
) -> AbstractContextManager[Any]:
    if name == "bare":
        return nullcontext()
    if name == "noop-sink":
        return dbopt.instrument(engine, counters.sink)
    return dbopt.instrument(engine, detector)


@dataclass
class Result:
    """Seconds per query of each configuration, one sample per repetition."""

    database: str
    workload: str
    queries: int
    repeats: int
    scope_size: int
    samples: Samples

    def us(self, name: str) -> float:
        """Median µs per query."""
        return median(self.samples[name]) * 1e6

    def added_us(self, name: str, baseline: str = "bare") -> float:
        """Median (paired by repetition) µs per query over ``baseline``."""
        return paired_delta(self.samples, name, baseline) * 1e6

    @property
    def over_bare(self) -> float:
        """detector total / bare total."""
        return ratio(self.us("detector"), self.us("bare"))

    @property
    def over_noop(self) -> float:
        """detector total / no-op sink total."""
        return ratio(self.us("detector"), self.us("noop-sink"))


def measure(
    engine: Engine,
    database: str,
    workload: str,
    *,
    queries: int,
    repeats: int,
    scope_size: int,
) -> Result:
    """Time the configurations on ``engine`` with ``workload``, interleaved."""
    work = Workload(engine, workload, scope_size)
    work.create()
    counters = Counters()
    detector = NPlusOneDetector(action=counters.finding, history=1)
    try:

        def block(name: str) -> Callable[[], float]:
            def run() -> float:
                events, findings = counters.events, counters.findings
                with _config(name, engine, counters, detector):
                    seconds = work.run(queries)
                _check(name, counters.events - events, counters.findings - findings, work, queries)
                return seconds

            return run

        samples = interleave({name: block(name) for name in CONFIGS}, repeats)
    finally:
        work.drop()
    return Result(database, workload, queries, repeats, scope_size, samples)


def _check(name: str, events: int, findings: int, work: Workload, queries: int) -> None:
    """Fail loudly when a configuration did not see what the benchmark claims."""
    wanted = {
        "bare": (0, 0),
        "noop-sink": (queries + 1, 0),
        "detector": (0, work.scopes(queries) if work.scope_size >= 2 else 0),
    }[name]
    if (events, findings) != wanted:
        raise RuntimeError(
            f"{name}: saw {events} events and {findings} findings, expected {wanted}; "
            "the benchmark is not measuring what it claims"
        )


def report(result: Result, out: Any = None) -> None:
    """Print one result's table and the two ratios."""
    stream = out or sys.stdout
    print(
        f"\n{result.database}, {result.workload}: SELECT by primary key, "
        f"{result.scope_size} per scope ({result.queries} queries x {result.repeats} "
        "repetitions, medians)",
        file=stream,
    )
    rows = [
        [
            name,
            f"{result.us(name):.2f}",
            "-" if name == "bare" else f"{result.added_us(name):+.2f}",
            f"{ratio(result.us(name), result.us('bare')):.3f}",
        ]
        for name in CONFIGS
    ]
    print_table(["config", "us/query", "added us", "x bare"], rows, out=stream)
    own = result.added_us("detector", "noop-sink")
    print(
        f"detector / bare: {result.over_bare:.3f}   detector / no-op sink: "
        f"{result.over_noop:.3f}   detector's own cost: {own:+.2f} us/query",
        file=stream,
    )


def summary(results: Sequence[Result], out: Any = None) -> None:
    """One line per result."""
    stream = out or sys.stdout
    print("\nSummary: N+1 detector overhead (medians; nothing asserts timings)", file=stream)
    print_table(
        ["run", "bare us", "no-op +us", "detector +us", "detector/bare", "detector/no-op"],
        [
            [
                f"{r.database.split(' ')[0]} {r.workload}",
                f"{r.us('bare'):.1f}",
                f"{r.added_us('noop-sink'):+.2f}",
                f"{r.added_us('detector'):+.2f}",
                f"{r.over_bare:.3f}",
                f"{r.over_noop:.3f}",
            ]
            for r in results
        ],
        out=stream,
    )


@dataclass
class Direct:
    """The detector called directly on recorded events: its own cost, without a database."""

    scope_size: int
    scopes: int
    samples: Samples
    workload: str = "SELECT loop"

    def ns(self, name: str) -> float:
        """Median ns per event."""
        return median(self.samples[name]) * 1e9

    @property
    def own_ns(self) -> float:
        """Median (paired) ns per event the detector costs over calling a no-op sink."""
        return paired_delta(self.samples, "detector", "noop-sink") * 1e9

    @property
    def checks_ns(self) -> float:
        """Median (paired) ns per event the opt-in checks add to the detector."""
        return paired_delta(self.samples, "detector+checks", "detector") * 1e9


def direct(engine: Engine, *, scope_size: int, scopes: int, repeats: int) -> Direct:
    """Feed recorded events to a detector (and to a no-op sink), ``scope_size`` per scope.

    The events are real ones (SQLite, a loop of lookups by primary key, call
    sites at depth 5), rebound to a fresh scope per unit of work outside the
    timed region; the detector's time includes its ``scope_end`` (building and
    reporting one N+1 finding per scope).
    """
    work = Workload(engine, "core", scope_size)
    work.create()
    try:
        with dbopt.capture_queries(engine) as captured, engine.connect() as conn:
            for pk in range(1, scope_size + 1):
                conn.execute(work.statement, {"id": pk}).one()
    finally:
        work.drop()
    recorded = list(captured)
    return _direct(recorded, scope_size=scope_size, scopes=scopes, repeats=repeats)


def direct_writes(engine: Engine, *, scope_size: int, scopes: int, repeats: int) -> Direct:
    """As :func:`direct`, on a loop of single-row INSERTs (what ``write_loops`` checks)."""
    work = Workload(engine, "core", scope_size)
    work.create()
    insert_one = text(f"INSERT INTO {work.table} (id, name) VALUES (:id, 'x')")
    try:
        with dbopt.capture_queries(engine) as captured, engine.connect() as conn:
            for pk in range(1, scope_size + 1):
                conn.execute(insert_one, {"id": ROWS + pk})
            conn.rollback()
    finally:
        work.drop()
    recorded = [event for event in captured if event.kind == "insert"]
    return _direct(recorded, scope_size=scope_size, scopes=scopes, repeats=repeats, writes=True)


def _direct(
    recorded: list[QueryEvent], *, scope_size: int, scopes: int, repeats: int, writes: bool = False
) -> Direct:
    counters = Counters()
    detector = NPlusOneDetector(action=counters.finding, history=1)
    checked = NPlusOneDetector(
        action=counters.finding, history=1, checks=("write_loops", "unbounded_queries")
    )

    def units() -> list[tuple[Scope, list[QueryEvent]]]:
        out = []
        for _ in range(scopes):
            unit = Scope("unit of work", {})
            out.append((unit, [replace(event, scope=unit) for event in recorded]))
        return out

    def runner(sink: NPlusOneDetector, expected: int) -> Callable[[], float]:
        def run() -> float:
            batches = units()
            before = counters.findings
            started = time.perf_counter()
            for unit, events in batches:
                for event in events:
                    sink(event)
                sink.scope_end(unit)
            elapsed = time.perf_counter() - started
            if counters.findings - before != (expected if scope_size >= 2 else 0):
                raise RuntimeError("the detector did not report one finding per scope")
            return elapsed / (scopes * scope_size)

        return run

    def run_noop() -> float:
        batches = units()
        sink = counters.sink
        started = time.perf_counter()
        for _, events in batches:
            for event in events:
                sink(event)
        return (time.perf_counter() - started) / (scopes * scope_size)

    samples = interleave(
        {
            "noop-sink": run_noop,
            "detector": runner(detector, 0 if writes else scopes),
            "detector+checks": runner(checked, scopes),
        },
        repeats,
    )
    return Direct(scope_size, scopes, samples, "INSERT loop" if writes else "SELECT loop")


def report_direct(result: Direct, out: Any = None) -> None:
    """Print the detector's own cost per event."""
    stream = out or sys.stdout
    print(
        f"\nDetector called directly on recorded events, {result.workload} "
        f"({result.scope_size} per scope, {result.scopes} scopes per block, medians): no-op sink "
        f"{result.ns('noop-sink'):.0f} ns/event, detector {result.ns('detector'):.0f} ns/event, "
        f"detector's own cost {result.own_ns:.0f} ns/event; with checks=(write_loops, "
        f"unbounded_queries) {result.ns('detector+checks'):.0f} ns/event, "
        f"checks add {result.checks_ns:+.0f} ns/event",
        file=stream,
    )


def peers(engine: Engine, *, scope_size: int, blocks: int, repeats: int) -> Samples | None:
    """Seconds per statement of an ORM lookup loop under dbopt and under the peers.

    Each block is one unit of work of ``scope_size`` ``session.get`` lookups
    (an N+1 every tool reports), checked when it ends: a ``dbopt.scope`` with
    the detector attached (default, and with every opt-in check), queryspy's
    ``no_n_plus_one()`` and pytest-queryguard's ``record_queries()`` +
    ``assert_no_nplusone()``, each catching its own N+1 error. None when the
    peers cannot be imported (put them on ``--peers-path``).
    """
    try:
        import queryspy
        from pytest_queryguard import api as queryguard
    except ImportError:
        return None
    work = Workload(engine, "orm", scope_size)
    work.create()
    model = work.model
    counters = Counters()
    detector = NPlusOneDetector(action=counters.finding, history=1)
    checked = NPlusOneDetector(
        action=counters.finding,
        history=1,
        checks=("write_loops", "unbounded_queries", "cartesian_products"),
    )

    def loop(session: Session, block: int) -> None:
        for pk in range(block * scope_size, (block + 1) * scope_size):
            session.get(model, pk % ROWS + 1, populate_existing=True)

    def timed(unit: Callable[[Session, int], None]) -> Callable[[], float]:
        def run() -> float:
            with Session(engine) as session:
                session.get(model, 1)
                started = time.perf_counter()
                for block in range(blocks):
                    unit(session, block)
                return (time.perf_counter() - started) / (blocks * scope_size)

        return run

    def bare(session: Session, block: int) -> None:
        loop(session, block)

    def dbopt_unit(session: Session, block: int) -> None:
        with dbopt.scope("unit"):
            loop(session, block)

    def queryspy_unit(session: Session, block: int) -> None:
        try:
            with queryspy.no_n_plus_one():
                loop(session, block)
        except queryspy.NPlusOneError:
            counters.findings += 1

    def queryguard_unit(session: Session, block: int) -> None:
        with queryguard.record_queries() as log:
            loop(session, block)
        try:
            log.assert_no_nplusone()
        except queryguard.NPlusOneDetected:
            counters.findings += 1

    def attached(sink: NPlusOneDetector) -> Callable[[], float]:
        inner = timed(dbopt_unit)

        def run() -> float:
            with dbopt.instrument(engine, sink):
                return inner()

        return run

    try:
        return interleave(
            {
                "bare": timed(bare),
                "dbopt detector": attached(detector),
                "dbopt detector + checks": attached(checked),
                "queryspy 0.6.0": timed(queryspy_unit),
                "pytest-queryguard 0.4.1": timed(queryguard_unit),
            },
            repeats,
        )
    finally:
        work.drop()


def report_peers(samples: Samples, out: Any = None) -> None:
    """Print µs per statement of each tool and its ratio to bare and to dbopt's detector."""
    stream = out or sys.stdout
    bare = median(samples["bare"])
    ours = median(samples["dbopt detector"])
    print("\nPeers, same run: ORM lookups by primary key in units of work (medians)", file=stream)
    print_table(
        ["tool", "us/statement", "added us", "x bare", "x dbopt detector"],
        [
            [
                name,
                f"{median(values) * 1e6:.1f}",
                "-" if name == "bare" else f"{(median(values) - bare) * 1e6:+.1f}",
                f"{ratio(median(values), bare):.3f}",
                f"{ratio(median(values), ours):.3f}",
            ]
            for name, values in samples.items()
        ],
        out=stream,
    )


def report_detectors(args: argparse.Namespace) -> None:
    """Each opt-in check and the unused eager load tracker, beside the peers (one run)."""
    import nplusone_detectors as checks

    engine = checks.make_engine()
    try:
        checks.report_wall(
            checks.wall(
                engine,
                units=5 if args.quick else 40,
                scope_size=args.scope_size,
                repeats=args.repeats or 11,
            )
        )
    finally:
        engine.dispose()
    if args.callgrind:
        per = checks.callgrind(
            checks.available(),
            units=2 if args.quick else args.units,
            scope_size=args.scope_size,
            peers_path=args.peers_path,
        )
        checks.report_callgrind(per, 2 if args.quick else args.units)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts (smoke test)")
    parser.add_argument("--queries", type=int, help="queries per block")
    parser.add_argument("--repeats", type=int, help="interleaved repetitions per configuration")
    parser.add_argument("--scope-size", type=int, default=50, help="statements per scope")
    parser.add_argument(
        "--workload", default="core,orm", help="comma-separated: core, orm (default both)"
    )
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--pg-url", help="use this PostgreSQL database (SQLAlchemy URL)")
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="also count instructions per statement of each check and peer under valgrind "
        "(slow: two processes per configuration)",
    )
    parser.add_argument(
        "--units", type=int, default=10, help="units of work per callgrind run (and 2x that)"
    )
    parser.add_argument(
        "--peers-path",
        help="a directory holding queryspy and pytest-queryguard (pip install --target), "
        "to measure them beside dbopt on SQLite",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.queries = args.queries or 20
        args.repeats = args.repeats or 2
        args.scope_size = min(args.scope_size, 10)
    return args


def main(argv: Sequence[str] | None = None) -> list[Result]:
    """Run the benchmark and print its tables; returns the results."""
    args = parse_args(argv)
    if args.peers_path:
        sys.path.append(args.peers_path)
    workloads = [w.strip() for w in args.workload.split(",") if w.strip()]
    for workload in workloads:
        if workload not in ("core", "orm"):
            raise SystemExit(f"unknown workload {workload!r}")
    print(f"dbopt {dbopt.__version__} N+1 detector overhead; {describe_machine()}")
    for name in CONFIGS:
        print(f"  {name:<10} {DESCRIPTIONS[name]}")
    results: list[Result] = []
    for label, engine in databases(args):
        sqlite = label.startswith("SQLite")
        if sqlite:
            compared = peers(
                engine,
                scope_size=args.scope_size,
                blocks=2 if args.quick else 20,
                repeats=args.repeats or 11,
            )
            if compared is not None:
                report_peers(compared)
            else:
                print("\nPeers not measured: queryspy / pytest-queryguard not importable")
            report_detectors(args)
            for measure_direct in (direct, direct_writes):
                report_direct(
                    measure_direct(
                        engine,
                        scope_size=args.scope_size,
                        scopes=10 if args.quick else 200,
                        repeats=args.repeats or 21,
                    )
                )
        for workload in workloads:
            result = measure(
                engine,
                label,
                workload,
                queries=args.queries or (2000 if sqlite else 1000),
                repeats=args.repeats or 21,
                scope_size=args.scope_size,
            )
            report(result)
            results.append(result)
    if results:
        summary(results)
    return results


if __name__ == "__main__":
    main()
