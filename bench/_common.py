"""Timing helpers shared by the benchmarks: interleaved repetitions, medians, ratios.

Machines are shared and noisy, so every benchmark measures its baseline in
the same run, runs its configurations interleaved (one block of each per
repetition, in a rotating order, so a noisy second hits them all alike) and
quotes medians. Nothing here asserts a timing: figures are printed, with
PASS/MISS markers against targets for information only.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TextIO

__all__ = [
    "Samples",
    "describe_machine",
    "interleave",
    "mark",
    "median",
    "paired_delta",
    "postgres_url",
    "print_table",
    "ratio",
]

#: Per-configuration samples: name → one value per repetition.
Samples = dict[str, list[float]]


def median(values: Sequence[float]) -> float:
    """Median of ``values`` (NaN when empty)."""
    return statistics.median(values) if values else float("nan")


def ratio(value: float, baseline: float) -> float:
    """``value / baseline``, NaN when the baseline is not positive."""
    return value / baseline if baseline > 0 else float("nan")


def paired_delta(samples: Samples, name: str, baseline: str) -> float:
    """Median over repetitions of ``samples[name][i] - samples[baseline][i]``.

    Pairing each repetition with the baseline block run next to it cancels
    the slow drift of a shared machine better than a difference of medians.
    """
    pairs = zip(samples[name], samples[baseline], strict=True)
    return median([a - b for a, b in pairs])


def interleave(
    blocks: Mapping[str, Callable[[], float]],
    repeats: int,
    *,
    warmup: int = 1,
    collect: bool = True,
) -> Samples:
    """Run each block ``repeats`` times, interleaved; return its results per name.

    Each block returns one figure (e.g. seconds per query). Repetition ``i``
    runs the blocks starting at offset ``i`` of their order, so no
    configuration is always first or last. ``warmup`` rounds run first and
    are discarded. With ``collect``, the young generations are collected
    before each block (outside whatever the block times, and after one full
    collection up front), so one block's garbage is not collected on
    another's clock.
    """
    names = list(blocks)
    samples: Samples = {name: [] for name in names}
    if collect:
        gc.collect()
    for rep in range(-warmup, repeats):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            if collect:
                gc.collect(1)
            value = blocks[name]()
            if rep >= 0:
                samples[name].append(value)
    return samples


def mark(value: float, target: float) -> str:
    """``PASS`` when ``value <= target``, else ``MISS`` (informational only)."""
    return "PASS" if value <= target else "MISS"


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, out: TextIO | None = None
) -> None:
    """Print ``rows`` under ``headers``, columns right-aligned except the first."""
    stream = out if out is not None else sys.stdout
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    print(line(cells[0]), file=stream)
    print("  ".join("-" * w for w in widths), file=stream)
    for row in cells[1:]:
        print(line(row), file=stream)


def describe_machine() -> str:
    """One line naming the interpreter, platform, CPU count and load."""
    load = ""
    if hasattr(os, "getloadavg"):
        load = " load=" + "/".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.python_implementation()} {platform.python_version()} "
        f"on {platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{load}, "
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}"
    )


@contextmanager
def postgres_url(prefix: str = "dbopt_bench") -> Iterator[str]:
    """Yield the SQLAlchemy URL of a throwaway PostgreSQL database, dropped after.

    The server is ``DBOPT_TEST_DSN`` when set, else an embedded one
    (``dbopt.testing.postgres_url``, which needs ``pgserver``). Raises
    ``dbopt.ServerUnavailableError`` / ``dbopt.MissingDependencyError``
    when there is none.
    """
    from dbopt.testing import postgres_url as throwaway_database

    with throwaway_database(os.environ.get("DBOPT_TEST_DSN"), prefix=prefix) as url:
        yield url


def databases(args: Any) -> Iterator[tuple[str, Any]]:
    """Yield ``(label, engine)`` for SQLite in memory and PostgreSQL over loopback.

    ``args`` has ``no_sqlite``, ``no_postgres`` and ``pg_url`` (None: ``DBOPT_TEST_DSN``
    or an embedded server). PostgreSQL is skipped with a printed reason when
    it cannot be had. Engines are disposed after use.
    """
    from sqlalchemy import create_engine

    import dbopt

    if not args.no_sqlite:
        engine = create_engine("sqlite://")
        try:
            yield "SQLite in memory", engine
        finally:
            engine.dispose()
    if args.no_postgres:
        return
    with ExitStack() as stack:
        try:
            url = args.pg_url or stack.enter_context(postgres_url())
        except (dbopt.ServerUnavailableError, dbopt.MissingDependencyError) as exc:
            print(f"\nPostgreSQL skipped: {exc}")
            return
        engine = create_engine(url, pool_size=1, max_overflow=0)
        try:
            yield "PostgreSQL over loopback", engine
        finally:
            engine.dispose()
