"""Demo steps 2-3: run the application's workload, then show its N+1s and its slow queries."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import dbopt
from dbopt._console import Progress
from dbopt.demo.console import Console
from dbopt.demo.workload import Request
from dbopt.report.html_plan import plan_text

__all__ = ["Workload", "fix_n_plus_one", "run_workload", "short_site", "show_slow_queries"]


def short_site(site: object) -> str:
    """``file.py:42 in function`` for a CallSite (or its text), without the directories."""
    if isinstance(site, dbopt.CallSite):
        return (
            f"{site.file.replace(chr(92), '/').rsplit('/', 1)[-1]}:{site.line} in {site.function}"
        )
    text = str(site or "")
    return text.replace("\\", "/").rsplit("/", 1)[-1]


@dataclass
class Workload:
    """What one pass of the workload left: statistics, N+1 findings, slow statements, plans."""

    stats: dbopt.QueryStats
    findings: list[dbopt.NPlusOneFinding] = field(default_factory=list)
    queries: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    slow: list[dict[str, Any]] = field(default_factory=list)
    plans: dict[str, Any] = field(default_factory=dict)


class _SlowRecords(logging.Handler):
    def __init__(self, into: list[dict[str, Any]]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(
            {
                "fingerprint": getattr(record, "fingerprint", ""),
                "duration_ms": float(getattr(record, "duration_ms", 0.0)),
                "callsite": str(getattr(record, "callsite", "") or ""),
                "sql": str(getattr(record, "sql", "")),
                "scope": str(getattr(record, "scope", "") or ""),
            }
        )


def run_workload(
    engine: Engine, db_url: str, requests: list[Request], console: Console, slow_ms: float
) -> Workload:
    """Run every request in its own scope with QueryStats, NPlusOneDetector and QueryLogger."""
    from dbopt.postgres import Explainer

    result = Workload(stats=dbopt.QueryStats(params="keep"))
    detector = dbopt.NPlusOneDetector(action=result.findings.append)
    log = logging.getLogger("dbopt.demo.sql")
    log.propagate = False
    log.setLevel(logging.WARNING)
    handler = _SlowRecords(result.slow)
    log.addHandler(handler)
    explainer = Explainer(db_url)
    qlog = dbopt.QueryLogger(log, slow_ms=slow_ms, explain=explainer, params="redact")
    console.heading("The application's workload (SQLAlchemy ORM, one scope per request)")
    try:
        with (
            dbopt.instrument(engine, result.stats, detector, qlog),
            Progress("running requests", total=len(requests)) as progress,
        ):
            for i, request in enumerate(requests):
                progress.update(i, request.name)
                with (
                    dbopt.scope(request.name),
                    Session(engine) as session,
                    dbopt.capture_queries() as captured,
                ):
                    request.call(session)
                result.queries[request.name].append(len(captured))
        qlog.flush()
        result.plans = dict(qlog.plans)
    finally:
        qlog.close()
        explainer.close()
        log.removeHandler(handler)
    total = result.stats.total_calls
    console.line(
        f"{len(requests)} requests ran {total:,} statements "
        f"({len(result.stats.statements())} distinct); instrumented with "
        "dbopt.instrument(engine, QueryStats(), NPlusOneDetector(), QueryLogger(...))"
    )
    return result


def _finding_lines(findings: list[dbopt.NPlusOneFinding]) -> list[dbopt.NPlusOneFinding]:
    """One finding per (relationship or statement, call site): the largest."""
    best: dict[tuple[str, str], dbopt.NPlusOneFinding] = {}
    for f in findings:
        if f.kind != "n_plus_one":
            continue
        key = (f.relationship or f.fingerprint, str(f.callsite))
        if key not in best or f.count > best[key].count:
            best[key] = f
    return sorted(best.values(), key=lambda f: -f.count)


def fix_n_plus_one(
    engine: Engine, requests: list[Request], work: Workload, console: Console
) -> dict[str, Any]:
    """Show the N+1 findings, then rerun those requests under ``dbopt.eager.auto``."""
    from dbopt.eager import auto

    console.heading("N+1 queries (NPlusOneDetector), and the fix")
    findings = _finding_lines(work.findings)
    for f in findings:
        what = f.relationship or "one query per row"
        console.line(
            f"{f.count:>3} queries of {what} from {short_site(f.callsite)} [{f.scope}]", "warning"
        )
        console.line(f"      fix: {f.loader_option or f.suggestion}", "dim")
    if not findings:
        console.line("no N+1 found")
    rows: list[tuple[str, int, int]] = []
    after_findings: list[dbopt.NPlusOneFinding] = []
    detector = dbopt.NPlusOneDetector(action=after_findings.append)
    seen: set[str] = set()
    before_total = after_total = 0
    with dbopt.instrument(engine, detector):
        for request in requests:
            if not request.n_plus_one and request.name != "GET /me/activity":
                continue
            if request.name in seen:
                continue
            seen.add(request.name)
            with (
                dbopt.scope(f"{request.name} (eager.auto)"),
                Session(engine) as session,
                auto(session),
                dbopt.capture_queries() as captured,
            ):
                request.call(session)
            before = work.queries[request.name][0]
            before_total += before
            after_total += len(captured)
            rows.append((request.name, before, len(captured)))
    console.line("")
    console.line("queries per request as written, and with dbopt.eager.auto(session):")
    console.table(("request", "as written", "eager.auto"), rows)
    console.line(
        f"N+1 findings with eager.auto: {len(after_findings)}; the lasting fix is the loader "
        "option above (selectinload / joinedload) on the query",
        "ok" if not after_findings else "warning",
    )
    return {
        "findings": [f.to_dict() for f in findings],
        "before": before_total,
        "after": after_total,
        "requests": [{"request": r, "before": b, "after": a} for r, b, a in rows],
        "fix": "Rerun of the same requests with dbopt.eager.auto(session): lazy loads "
        "are batched across the objects of each result. The findings name the loader "
        "option to add to the query for good.",
    }


def show_slow_queries(work: Workload, console: Console, slow_ms: float) -> list[dict[str, Any]]:
    """The slowest distinct statements QueryLogger logged, with their EXPLAIN plans."""
    console.heading(f"Slow queries (QueryLogger, >= {slow_ms:g} ms) and their plans (Explainer)")
    by_print: dict[str, dict[str, Any]] = {}
    for record in work.slow:
        key = record["fingerprint"]
        if key not in by_print or record["duration_ms"] > by_print[key]["duration_ms"]:
            by_print[key] = record
    slowest = sorted(by_print.values(), key=lambda r: -r["duration_ms"])[:5]
    console.line(f"{len(work.slow)} slow statements logged, {len(by_print)} distinct; the slowest:")
    out = []
    for record in slowest:
        plan = work.plans.get(record["fingerprint"])
        sql = " ".join(record["sql"].split())
        console.line(f"{record['duration_ms']:8.1f} ms  {sql[:110]}", "warning")
        console.line(f"             at {short_site(record['callsite'])}", "dim")
        if plan is not None:
            for text in plan_text(plan).splitlines()[:6]:
                console.line("             " + text[:120], "dim")
        out.append({**record, "plan": plan})
    return out
