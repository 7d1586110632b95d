"""Demo step 4: index recommendations from the recorded workload, applied and measured."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import dbopt
from dbopt._console import Progress
from dbopt.demo.analysis import Workload
from dbopt.demo.console import Console
from dbopt.demo.workload import Request

__all__ = ["advise_and_apply"]


def _run(engine: Engine, requests: list[Request]) -> None:
    for request in requests:
        with dbopt.scope(request.name), Session(engine) as session:
            request.call(session)


def _measure(engine: Engine, requests: list[Request], repeat: int) -> dbopt.QueryStats:
    """One warm-up pass of the requests, then ``repeat`` recorded passes."""
    _run(engine, requests)
    stats = dbopt.QueryStats()
    with dbopt.instrument(engine, stats):
        for _ in range(repeat):
            _run(engine, requests)
    return stats


def _apply(db_url: str, recommendations: list[Any]) -> float:
    """Run every recommendation's DDL (autocommit: CONCURRENTLY); returns seconds taken."""
    import time

    from dbopt.postgres.connect import connect
    from dbopt.postgres.render import qualified

    started = time.perf_counter()
    with connect(
        db_url, "demo", read_only=False, statement_timeout_ms=None, lock_timeout_ms=None
    ) as conn:
        for rec in recommendations:
            for statement in rec.ddl:
                conn.execute(statement)
        # a plain index needs no new statistics; an expression index's are gathered by
        # ANALYZE of its table, so only the indexed tables are analyzed, not the database
        for table in dict.fromkeys(qualified(rec.schema, rec.table) for rec in recommendations):
            conn.execute(f"ANALYZE {table}")
    return time.perf_counter() - started


def advise_and_apply(
    engine: Engine,
    db_url: str,
    requests: list[Request],
    work: Workload,
    console: Console,
    *,
    has_hypopg: bool,
) -> dict[str, Any]:
    """Advise on ``work.stats``, apply the indexes, and time the statements before and after."""
    from dbopt.advisor import IndexAdvisor

    console.heading("Index recommendations (IndexAdvisor on the recorded QueryStats)")
    analytic = [r for r in requests if r.analytic]
    # hypopg prices hypothetical indexes in a second. Without it (the embedded server has
    # no hypopg) the advisor builds each candidate for real inside a transaction it rolls
    # back: exact, fine on the demo's own database, and slower, so the candidate space is
    # kept to two key columns without INCLUDE there.
    max_columns, max_include = (4, 3) if has_hypopg else (2, 0)
    if not has_hypopg:
        console.line(
            "no hypopg on this server: candidates are built for real in a transaction that "
            "is rolled back (up to 2 key columns, no INCLUDE)",
            "dim",
        )
    advisor = IndexAdvisor(
        db_url,
        max_indexes=8,
        install_hypopg=has_hypopg,
        real_indexes=True,
        real_index_max_table_bytes=2 * 1024**3,
        max_columns=max_columns,
        max_include=max_include,
    )
    with Progress("advising"):
        report = advisor.advise(work.stats)
    method = {
        "hypopg": "hypothetical indexes (hypopg)",
        "real": "real indexes built in a transaction that is rolled back (no hypopg here)",
        "heuristic": "heuristics from pg_stats (coarse)",
    }.get(report.method, report.method)
    console.line(f"priced with {method}; {report.elapsed_s:.1f} s")
    for note in report.notes:
        console.line(f"note: {note}", "dim")
    for rec in report.recommendations:
        console.line(
            f"{rec.label}  ~{rec.size_bytes / 1024 / 1024:.1f} MB, "
            f"{rec.saving_share:.0%} of the saving, helps {len(rec.statements)} statement(s)",
            "ok",
        )
        for impact in rec.statements[:2]:
            sql = " ".join(impact.sql.split())
            console.line(
                f"    cost {impact.cost_before:,.0f} -> {impact.cost_after:,.0f}: {sql[:90]}", "dim"
            )
    if not report.recommendations:
        console.line("no index would pay for itself on this workload")
    data: dict[str, Any] = report.to_dict()
    if not report.recommendations:
        data["applied"] = []
        return data
    with Progress("timing the statements before the indexes"):
        before = _measure(engine, analytic, repeat=2)
    with Progress("creating the indexes (CREATE INDEX CONCURRENTLY)"):
        seconds = _apply(db_url, report.recommendations)
    with Progress("timing the statements with the indexes"):
        after = _measure(engine, analytic, repeat=2)
    console.line("")
    console.line(
        f"applied {len(report.recommendations)} index(es) in {seconds:.1f} s; median time per "
        "statement, measured over 2 warm runs of each request before and after:"
    )
    rows: list[tuple[str, str, str, str]] = []
    applied: list[dict[str, Any]] = []
    after_by_print = {s.fingerprint: s for s in after.statements()}
    for s in sorted(before.statements(), key=lambda s: -s.p50_time)[:8]:
        later = after_by_print.get(s.fingerprint)
        if later is None or s.kind != "select":
            continue
        b, a = s.p50_time * 1000, later.p50_time * 1000
        sql = " ".join(s.normalized.split())
        rows.append((f"{b:.1f}", f"{a:.1f}", f"{b / a:.1f}x" if a > 0 else "-", sql[:80]))
        applied.append({"sql": sql, "before_ms": round(b, 3), "after_ms": round(a, 3)})
    console.table(("before ms", "after ms", "speed-up", "statement"), rows)
    total_b = sum(m["before_ms"] for m in applied)
    total_a = sum(m["after_ms"] for m in applied)
    if total_a > 0:
        console.line(
            f"these statements: {total_b:,.1f} ms -> {total_a:,.1f} ms ({total_b / total_a:.1f}x)",
            "ok",
        )
    for m in applied:
        if m["after_ms"] > 1.2 * m["before_ms"] and m["after_ms"] - m["before_ms"] > 1.0:
            console.line(
                f"slower with the indexes ({m['before_ms']:.1f} -> {m['after_ms']:.1f} ms): "
                f"{m['sql'][:70]}",
                "warning",
            )
            console.line(
                "  the planner now picks an index its estimate favours and the data does not "
                "(rows the filter wants are not spread evenly along the index order); this is "
                "why advice is measured before it ships: advise(..., verify=True)",
                "dim",
            )
    data["applied"] = applied
    data["applied_seconds"] = round(seconds, 2)
    return data
