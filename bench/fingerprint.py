"""Fingerprint speed: medians per call, each beside a baseline measured in the same run.

Run: ``python bench/fingerprint.py``. Prints, never asserts. The issue's targets:
at most 0.5 µs for a text seen before, at most 30 µs for a new statement of 300
characters. Baselines: a plain ``dict.get`` for a text seen before, and
``pglast.parser.fingerprint`` (libpg_query, in C) on the same statements for new
ones. Each median is shown as wall-clock time and as this thread's CPU time:
on a shared machine the second is what the code costs, the first what it got.
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable

from pglast.parser import fingerprint as pg_fingerprint

from dbopt.core import fingerprint as fp

# What SQLAlchemy 2's ORM sends through psycopg, and a hand-written query (seed 001).
ORM_SELECT = (
    "SELECT users.id, users.email, users.full_name, users.user_role \nFROM users \n"
    "WHERE users.user_role = %(user_role_1)s::VARCHAR AND users.created_at > "
    "%(created_at_1)s::TIMESTAMP WITH TIME ZONE AND users.id IN (%(id_1_1)s::INTEGER, "
    "%(id_1_2)s::INTEGER) ORDER BY users.created_at DESC \n LIMIT %(param_{n})s::INTEGER"
)
LITERAL_SELECT = (
    "SELECT u.full_name, c.title AS course_title, up.completion_percentage FROM user_progress"
    " up JOIN users u ON up.user_id = u.id JOIN courses c ON up.course_id = c.id WHERE "
    "up.completion_percentage < 100 AND up.last_activity_at < NOW() - INTERVAL '7 days' AND "
    "c.status = 'published' ORDER BY up.last_activity_at LIMIT {n}"
)
Timing = tuple[float, float]  # (wall, cpu) seconds


def batched(call: Callable[[], object], batch: int = 5000, rounds: int = 41) -> Timing:
    """Median seconds per call of a fast call, timed in batches."""
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(batch):
            call()
        cpus.append((time.thread_time() - cpu) / batch)
        walls.append((time.perf_counter() - wall) / batch)
    return statistics.median(walls), statistics.median(cpus)


def each(call: Callable[[str], object], texts: list[str], batch: int = 100) -> Timing:
    """Median seconds per call over batches of texts, each text new to ``call``."""
    walls, cpus = [], []
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        wall, cpu = time.perf_counter(), time.thread_time()
        for sql in chunk:
            call(sql)
        cpus.append((time.thread_time() - cpu) / len(chunk))
        walls.append((time.perf_counter() - wall) / len(chunk))
    return statistics.median(walls), statistics.median(cpus)


def numbered(sql: str) -> str:
    """``%(name)s`` placeholders as ``$1``, ``$2``, ...: the text pglast parses."""
    counter = iter(range(1, 1_000_000))
    return re.sub(r"%\(\w+\)s", lambda _: f"${next(counter)}", sql)


def row(case: str, chars: int, ours: Timing, baseline: str, theirs: Timing) -> None:
    print(
        f"{case:<34} {chars:>8} {ours[0] * 1e6:>10.3f} {ours[1] * 1e6:>9.3f}   "
        f"{baseline:<18} {theirs[0] * 1e6:>10.3f} {theirs[1] * 1e6:>9.3f}"
        f" {ours[1] / theirs[1]:>7.2f}"
    )


def main() -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"CPUs: {os.cpu_count()}, load average: {load}")
    print(
        f"{'median per call':<34} {'chars':>8} {'wall µs':>10} {'cpu µs':>9}   "
        f"{'baseline':<18} {'wall µs':>10} {'cpu µs':>9} {'ratio':>7}"
    )
    fp._cache.clear()
    seen = ORM_SELECT.format(n=1)
    plain = {seen: fp.fingerprint_info(seen)}
    base = batched(lambda: plain.get(seen))
    row(
        "seen before: fingerprint_info",
        len(seen),
        batched(lambda: fp.fingerprint_info(seen)),
        "dict.get",
        base,
    )
    row(
        "seen before: fingerprint",
        len(seen),
        batched(lambda: fp.fingerprint(seen)),
        "dict.get",
        base,
    )

    for case, template in (
        ("new: ORM select (pyformat)", ORM_SELECT),
        ("new: select with literals", LITERAL_SELECT),
    ):
        texts = [template.format(n=1000 + i) for i in range(4000)]
        for sql in texts[:200]:  # warm up the interpreter, not the cache
            fp._compute(sql)
        fp._cache.clear()
        chars = round(statistics.mean(len(t) for t in texts))
        row(
            case,
            chars,
            each(fp.fingerprint_info, texts),
            "pglast fingerprint",
            each(pg_fingerprint, [numbered(t) for t in texts]),
        )

    values = ", ".join(f"(%(term__{i})s::VARCHAR, %(level__{i})s::INTEGER, {i})" for i in range(50))
    batch = "INSERT INTO words (term, level) SELECT p0, p1 FROM (VALUES {rows}) AS s(p0, p1, n)"
    batch += " LIMIT {n}"
    texts = [batch.replace("{rows}", values).format(n=i) for i in range(300)]
    row(
        "new: 50-row insertmanyvalues",
        len(texts[0]),
        each(fp.fingerprint_info, texts),
        "pglast fingerprint",
        each(pg_fingerprint, [numbered(t) for t in texts]),
    )

    rows = ", ".join(
        f"({i}, 'word {i}, with its translation', {i}.5, now())" for i in range(20_000)
    )
    big = f"INSERT INTO words (id, term, score, created_at) VALUES {rows}"
    row(
        "new: 20,000-row VALUES insert",
        len(big),
        each(fp._compute, [big] * 5, 1),
        "pglast fingerprint",
        each(pg_fingerprint, [big] * 5, 1),
    )


if __name__ == "__main__":
    main()
