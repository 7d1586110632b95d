"""Per-statement cost of each N+1 check dbopt added for issue 19, beside the peers, one run.

Workload (SQLite in memory): units of work of ``scope_size`` statements
(default 50), each one ORM SELECT of ``scope_size - 1`` authors followed by a
lazy load of ``author.books`` on each (2 books per author): the classic N+1,
which every tool here reports once per unit. The session is cleared between
units so that every unit loads again.

Configurations:

* ``bare``: nothing attached;
* ``dbopt detector``: ``NPlusOneDetector()`` attached with
  ``dbopt.instrument``, one ``dbopt.scope`` per unit;
* ``+ write_loops``, ``+ unbounded_queries``, ``+ cartesian_products``,
  ``+ potential``: the detector with that one opt-in check;
* ``+ unused_eager_loads``: the detector plus an enabled
  ``dbopt.eager.unused_eager_loads()`` tracker;
* ``+ all``: every check and the tracker;
* ``queryspy 0.6.0`` (``no_n_plus_one()`` per unit) and
  ``pytest-queryguard 0.4.1`` (``record_queries()`` then
  ``assert_no_nplusone()`` per unit), when importable (``--peers-path``).

Two measures. Wall time: medians of interleaved repetitions, µs per
statement and what each adds over dbopt's plain detector. Instructions
(``--callgrind``): each configuration runs in its own ``valgrind
--tool=callgrind`` process, twice, with ``units`` and ``2 x units`` units
of work; the difference of the two instruction counts divided by the
statements in between is the configuration's instructions per statement,
free of start-up and import costs and repeatable on a loaded machine (the
garbage collector is off in those processes, so that where a collection
falls does not move the figure; the counts repeat exactly).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from typing import Any

from _common import Samples, interleave, median, print_table, ratio
from orm_trackers import Author, seed
from sqlalchemy import Engine, create_engine, select
from sqlalchemy.orm import Session

import dbopt
from dbopt.core.nplusone import NPlusOneDetector

AUTHORS = 1000
BOOKS = 2
CHECKS = ("write_loops", "unbounded_queries", "cartesian_products", "potential")
CONFIGS = (
    "bare",
    "dbopt detector",
    *(f"+ {check}" for check in CHECKS),
    "+ unused_eager_loads",
    "+ all",
    "queryspy 0.6.0",
    "pytest-queryguard 0.4.1",
)


def make_engine() -> Engine:
    engine = create_engine("sqlite://")
    seed(engine, AUTHORS, BOOKS)
    return engine


def lazy_loop(session: Session, unit: int, scope_size: int) -> None:
    """One SELECT of ``scope_size - 1`` authors, then ``author.books`` on each."""
    per = scope_size - 1
    first = (unit * per) % (AUTHORS - per) + 1
    authors = session.scalars(
        select(Author).where(Author.id >= first).order_by(Author.id).limit(per)
    ).all()
    for author in authors:
        len(author.books)
    session.expunge_all()


class Found:
    def __init__(self) -> None:
        self.count = 0

    def add(self, finding: object) -> None:
        self.count += 1


def available() -> list[str]:
    """The configurations that can run here (the peers only when importable)."""
    names = list(CONFIGS)
    try:
        import queryspy  # noqa: F401
    except ImportError:
        names.remove("queryspy 0.6.0")
    try:
        from pytest_queryguard import api  # noqa: F401
    except ImportError:
        names.remove("pytest-queryguard 0.4.1")
    return names


@contextmanager
def configured(name: str, engine: Engine, found: Found) -> Iterator[Callable[[Any], Any]]:
    """Attach what ``name`` needs; yield the wrapper of one unit of work."""
    if name in ("bare",) or name.startswith(("queryspy", "pytest-queryguard")):
        yield _peer_unit(name, found)
        return
    checks: tuple[str, ...] = ()
    tracker = False
    if name == "+ all":
        checks, tracker = CHECKS, True
    elif name == "+ unused_eager_loads":
        tracker = True
    elif name.startswith("+ "):
        checks = (name[2:],)
    detector = NPlusOneDetector(action=found.add, history=1, checks=checks)
    with ExitStack() as stack:
        stack.enter_context(dbopt.instrument(engine, detector))
        if tracker:
            from dbopt.eager import unused_eager_loads

            stack.enter_context(unused_eager_loads(action=found.add))
        yield lambda: dbopt.scope("unit")


def _peer_unit(name: str, found: Found) -> Callable[[], AbstractContextManager[Any]]:
    if name == "bare":
        return nullcontext
    if name.startswith("queryspy"):
        import queryspy

        @contextmanager
        def spy() -> Iterator[None]:
            try:
                with queryspy.no_n_plus_one():
                    yield
            except queryspy.NPlusOneError:
                found.add(None)

        return spy
    from pytest_queryguard import api as queryguard

    @contextmanager
    def guard() -> Iterator[None]:
        with queryguard.record_queries() as log:
            yield
        try:
            log.assert_no_nplusone()
        except queryguard.NPlusOneDetected:
            found.add(None)

    return guard


def run_units(engine: Engine, name: str, units: int, scope_size: int) -> float:
    """Run ``units`` units of work under ``name`` after one untimed; seconds per statement."""
    found = Found()
    with configured(name, engine, found) as unit, Session(engine) as session:
        with unit():
            lazy_loop(session, 0, scope_size)
        before = found.count
        started = time.perf_counter()
        for index in range(1, units + 1):
            with unit():
                lazy_loop(session, index, scope_size)
        elapsed = time.perf_counter() - started
    wanted = 0 if name == "bare" else units
    if found.count - before < wanted:
        raise RuntimeError(f"{name}: {found.count - before} findings for {units} N+1 units")
    return elapsed / (units * scope_size)


def wall(engine: Engine, *, units: int, scope_size: int, repeats: int) -> Samples:
    names = available()
    return interleave(
        {name: (lambda n=name: run_units(engine, n, units, scope_size)) for name in names},
        repeats,
    )


def report_wall(samples: Samples, out: Any = None) -> None:
    stream = out or sys.stdout
    bare = median(samples["bare"])
    ours = median(samples["dbopt detector"])
    print(
        "\nEach check, beside the peers, same run: lazy-load N+1 in units of work "
        "(SQLite in memory, medians of interleaved repetitions)",
        file=stream,
    )
    print_table(
        ["config", "us/statement", "added us vs bare", "added us vs detector", "x detector"],
        [
            [
                name,
                f"{median(values) * 1e6:.1f}",
                "-" if name == "bare" else f"{(median(values) - bare) * 1e6:+.1f}",
                "-"
                if name in ("bare", "dbopt detector")
                else f"{(median(values) - ours) * 1e6:+.1f}",
                f"{ratio(median(values), ours):.3f}",
            ]
            for name, values in samples.items()
        ],
        out=stream,
    )


_COLLECTED = re.compile(r"Collected : (\d+)")


def instructions(name: str, units: int, scope_size: int, peers_path: str | None) -> int:
    """Instructions one process runs for ``units`` units of ``name`` (under callgrind)."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    if peers_path:
        env["PYTHONPATH"] = os.pathsep.join([p for p in (env.get("PYTHONPATH"), peers_path) if p])
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        name,
        str(units),
        str(scope_size),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    match = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"callgrind run of {name!r} failed:\n{done.stderr[-2000:]}")
    return int(match.group(1))


def callgrind(
    names: Sequence[str], *, units: int, scope_size: int, peers_path: str | None
) -> dict[str, float]:
    """Instructions per statement of each configuration: the slope between two unit counts."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:  # each run is a process of its own
        runs = {
            (name, count): pool.submit(instructions, name, count, scope_size, peers_path)
            for name in names
            for count in (units, 2 * units)
        }
        return {
            name: (runs[name, 2 * units].result() - runs[name, units].result())
            / (units * scope_size)
            for name in names
        }


def report_callgrind(per: dict[str, float], units: int, out: Any = None) -> None:
    stream = out or sys.stdout
    bare, ours = per["bare"], per["dbopt detector"]
    print(
        f"\nInstructions per statement (callgrind; slope between {units} and {2 * units} "
        "units of work, PYTHONHASHSEED=0, garbage collector off)",
        file=stream,
    )
    print_table(
        ["config", "instr/statement", "added vs bare", "added vs detector", "x detector"],
        [
            [
                name,
                f"{value:,.0f}",
                "-" if name == "bare" else f"{value - bare:+,.0f}",
                "-" if name in ("bare", "dbopt detector") else f"{value - ours:+,.0f}",
                f"{ratio(value, ours):.3f}",
            ]
            for name, value in per.items()
        ],
        out=stream,
    )


if __name__ == "__main__":
    # One configuration, for callgrind: NAME UNITS SCOPE_SIZE. The garbage
    # collector is off: when a full collection falls inside one run of a pair
    # and not the other depends on every allocation before it, and it would
    # move the slope by tens of thousands of instructions per statement.
    import gc

    config, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    bench_engine = make_engine()
    gc.collect()
    gc.freeze()
    gc.disable()
    run_units(bench_engine, config, count, size)
