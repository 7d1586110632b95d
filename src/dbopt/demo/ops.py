"""Demo steps 5-7: schema lint and health, partition maintenance, the pool preset."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import dbopt
from dbopt import pool
from dbopt._console import Progress
from dbopt.demo.console import Console
from dbopt.demo.setup import operations_spec
from dbopt.demo.workload import Request
from dbopt.findings import Finding

__all__ = [
    "lint_and_health",
    "maintain_partitions",
    "pool_preset",
    "preset_for_machine",
    "web_threads",
]


def _show_findings(console: Console, findings: list[Finding], limit: int = 8) -> None:
    counts = Counter(f.code for f in findings)
    shown: set[str] = set()
    for f in sorted(findings, key=lambda f: (-f.severity.rank, f.code, f.object)):
        if f.code in shown or len(shown) >= limit:
            continue
        shown.add(f.code)
        more = f" (+{counts[f.code] - 1} more)" if counts[f.code] > 1 else ""
        console.line(
            f"{f.severity.value:<7} {f.code} {f.object}: {f.message}{more}", f.severity.value
        )


def lint_and_health(db_url: str, console: Console) -> dict[str, list[dict[str, Any]]]:
    """Schema lint (after the advisor's indexes) and the health report's findings."""
    from dbopt.health import health
    from dbopt.lint import lint
    from dbopt.report.findings import summary_line

    console.heading("Schema lint and health (dbopt.lint, dbopt.health)")
    with Progress("linting"):
        report = lint(db_url, exclude=["LINT006", "LINT015"])
    console.line(f"lint: {summary_line(report.findings)} on {report.tables} tables")
    console.line(
        "(LINT006/LINT015, unused indexes and tables, need weeks of statistics: skipped on a "
        "database minutes old)",
        "dim",
    )
    _show_findings(console, report.findings)
    with Progress("checking health"):
        checked = health(db_url)
    found = checked.findings
    console.line(f"health: {checked.status.value}; {summary_line(found)}")
    _show_findings(console, found, limit=4)
    console.line(
        "(hit ratios of a database minutes old reflect a cold cache; HEALTH016 is what the "
        "partition maintenance below fixes)",
        "dim",
    )
    return {
        "Schema lint": [f.to_dict() for f in report.findings],
        "Health": [f.to_dict() for f in found],
    }


def maintain_partitions(db_url: str, console: Console) -> dict[str, Any]:
    """Plan the operators' spec against the launch layout, run maintenance, check."""
    from dbopt.partitions import DetachPartition, PartitionManager

    console.heading("Partitions of user_interactions (PartitionManager)")
    manager = PartitionManager(db_url)
    spec = operations_spec()
    before = manager.partitions("user_interactions")
    plan = manager.plan(spec)
    console.line(plan.describe())
    with Progress("maintaining partitions"):
        result = manager.apply(plan)
    console.line("")
    console.line(result.describe(), "ok" if result.ok else "error")
    after = manager.partitions("user_interactions")
    check = manager.check(spec)
    console.line("")
    console.line(check.describe(), "ok" if check.ok else "warning")
    detached = {
        r.operation.partition.name for r in result.done if isinstance(r.operation, DetachPartition)
    }
    known = {p.name for p in before}
    timeline = [
        {**p.to_dict(), "status": "detached" if p.name in detached else "existing"}
        for p in before
        if p.kind != "default"
    ]
    timeline += [
        {**p.to_dict(), "status": "created"}
        for p in after
        if p.name not in known and p.kind != "default"
    ]
    return {
        "table": spec.qualified,
        "now": datetime.now(timezone.utc).isoformat(),
        "partitions": sorted(timeline, key=lambda p: str(p.get("lower"))),
        "plan": plan.to_dict(),
        "maintenance": {
            "ok": result.ok,
            "results": [r.to_dict() for r in result.results],
        },
        "check": check.to_dict(),
        "spec": spec.to_dict(),
    }


def web_threads() -> int:
    """Threads of the demo's imagined web server: two per core."""
    return 2 * (os.cpu_count() or 2)


def preset_for_machine(db_url: str) -> Any:
    """The ``web`` preset for a threaded server on this machine, within the server's budget."""
    budget = pool.connection_budget(_conninfo(db_url))
    return pool.web(threads=web_threads(), budget=budget, db_cores=os.cpu_count() or 2)


def _conninfo(db_url: str) -> str:
    from dbopt.testing import libpq_url

    return libpq_url(db_url)


def pool_preset(
    engine: Engine, config: Any, requests: list[Request], console: Console, seconds: float
) -> dict[str, Any]:
    """Show the preset, then run requests from more threads than connections and watch."""
    from dbopt.eager import auto

    console.heading("Connection pool (dbopt.pool preset for this machine, PoolMonitor)")
    rows = []
    for name, reason in config.reasons.items():
        why = reason if len(reason) <= 80 else reason[:79] + "…"
        rows.append((name, getattr(config, name), why))
    console.table(("setting", "value", "why (in full in the HTML report)"), rows)
    threads = web_threads()
    cheap = [r for r in requests if not r.analytic]
    monitor = pool.PoolMonitor(engine)
    samples: list[list[float]] = []
    stop = threading.Event()

    def worker(offset: int) -> None:
        i = offset
        while not stop.is_set():
            request = cheap[i % len(cheap)]
            i += 1
            with dbopt.scope(request.name), Session(engine) as session, auto(session):
                request.call(session)
            stop.wait(0.005 + 0.002 * (i % 5))  # the rest of the request: templates, I/O

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    try:
        with Progress(f"{threads} threads, pool of {config.pool_size}"):
            for t in workers:
                t.start()
            while time.monotonic() - started < seconds:
                snap = monitor.snapshot()
                samples.append([round(time.monotonic() - started, 2), float(snap.in_use)])
                time.sleep(0.05)
    finally:
        stop.set()
        for t in workers:
            t.join()
    snapshot = monitor.snapshot()
    monitor.close()
    console.line("")
    console.line(f"{threads} threads for {seconds:g} s: {snapshot}")
    findings = snapshot.findings(pool.Thresholds())
    for f in findings:
        console.line(f"{f.severity.value} {f.code}: {f.message}", f.severity.value)
    if not findings:
        console.line("within the seeds' targets (utilization < 80 %, mean wait < 10 ms)", "ok")
    return {
        "preset": config.to_dict(),
        "samples": samples,
        "capacity": config.pool_size + config.max_overflow,
        "snapshot": snapshot.to_dict(),
        "findings": [f.to_dict() for f in findings],
    }
