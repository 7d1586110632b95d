"""``run_demo``: start or reach a server, make a database, run every step, write the report.

Everything the demo starts is stopped and removed on the way out, also on
Ctrl-C or SIGTERM: the database it created (dropped ``WITH (FORCE)``) and the
embedded server with its temporary directory. While cleaning up, further
Ctrl-Cs are ignored so the cleanup itself is not cut short.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from dbopt.demo.console import Console
from dbopt.demo.data import Sizes

__all__ = ["DemoOptions", "run_demo"]


@dataclass(frozen=True)
class DemoOptions:
    """What ``dbopt demo`` was asked to do."""

    dsn: str | None = None  # a server URL; None starts an embedded server
    small: bool = False
    interactions: int | None = None
    output: str = "dbopt-demo-report.html"
    keep: bool = False  # keep the demo database (only with dsn)
    slow_ms: float | None = None
    pool_seconds: float = 3.0


@contextmanager
def _shielded() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM inside the block (main thread only), so cleanup completes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt in the block, so it cleans up like Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _server(options: DemoOptions, stack: ExitStack, console: Console) -> str:
    if options.dsn:
        from dbopt.cli._db import connect_check, display_url

        server = connect_check(options.dsn)
        console.line(f"server: {display_url(server.url)} (PostgreSQL {server.version})")
        return server.url
    from dbopt.testing import embedded_postgres

    started = time.monotonic()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs.*")
        url = stack.enter_context(embedded_postgres())
    console.line(
        f"no --dsn: started an embedded PostgreSQL (pgserver) in a temporary directory "
        f"in {time.monotonic() - started:.1f} s; it is removed at the end"
    )
    return url


def _database(server_url: str, options: DemoOptions, stack: ExitStack, console: Console) -> str:
    from dbopt.testing import postgres_url

    if options.keep and options.dsn:
        import secrets

        from psycopg import sql
        from sqlalchemy.engine import make_url

        from dbopt.postgres.connect import connect

        name = f"dbopt_demo_{secrets.token_hex(4)}"
        with connect(
            server_url, "demo", read_only=False, statement_timeout_ms=None, lock_timeout_ms=None
        ) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        console.line(f"database {name} (kept after the demo: --keep)")
        return make_url(server_url).set(database=name).render_as_string(hide_password=False)
    url = stack.enter_context(postgres_url(server_url, prefix="dbopt_demo"))
    from sqlalchemy.engine import make_url

    console.line(f"database {make_url(url).database} (dropped at the end)")
    return url


def _has_extension(db_url: str, name: str) -> bool:
    from dbopt.postgres.connect import connect

    with connect(db_url, "demo") as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = %s", (name,)
        ).fetchone()
    return bool(row and row[0])


def _summary(data: dict[str, Any]) -> list[list[Any]]:
    n1 = data.get("nplusone", {})
    advisor = data.get("advisor", {})
    applied = advisor.get("applied") or []
    b = sum(m["before_ms"] for m in applied)
    a = sum(m["after_ms"] for m in applied)
    plan = data.get("partitions", {}).get("plan", {})
    return [
        ["interactions", f"{data['setup']['rows']['user_interactions']:,}"],
        ["statements run", f"{data['statements_run']:,}"],
        ["N+1 patterns", len(n1.get("findings", []))],
        ["queries, N+1 pages", f"{n1.get('before', 0)} → {n1.get('after', 0)}"],
        ["indexes applied", len(advisor.get("recommendations", []))],
        ["measured speed-up", f"{b / a:.1f}x" if a > 0 else "-"],
        ["lint findings", len(data.get("findings", {}).get("Schema lint", []))],
        ["partition operations", len(plan.get("operations", []))],
        ["pool size", data.get("pool", {}).get("preset", {}).get("pool_size", "-")],
    ]


def run_demo(options: DemoOptions, stream: TextIO) -> dict[str, Any]:
    """Run the whole demo, printing to ``stream``; returns the report data (also saved)."""
    from sqlalchemy import create_engine

    from dbopt.demo import analysis, indexes, ops, setup
    from dbopt.demo.workload import requests
    from dbopt.report.html import write_html

    console = Console(stream)
    sizes = Sizes.small() if options.small else Sizes()
    if options.interactions:
        sizes = replace(sizes, interactions=options.interactions)
    slow_ms = options.slow_ms if options.slow_ms is not None else (2.0 if options.small else 25.0)
    console.write(
        console.style("dbopt demo: what dbopt finds and fixes in a learning platform", "bold")
    )
    data: dict[str, Any] = {
        "title": "dbopt demo: the learning platform",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    stack = ExitStack()
    try:
        with _sigterm_interrupts():
            server_url = _server(options, stack, console)
            db_url = _database(server_url, options, stack, console)
            data["setup"] = setup.build(db_url, sizes, console)
            config = ops.preset_for_machine(db_url)
            engine = create_engine(db_url, **config.sqlalchemy(db_url))
            stack.callback(engine.dispose)
            work_requests = requests(sizes.users, sizes.courses)
            work = analysis.run_workload(engine, db_url, work_requests, console, slow_ms)
            data["statements_run"] = work.stats.total_calls
            data["statements"] = [s.to_dict() for s in work.stats.top(25)]
            data["nplusone"] = analysis.fix_n_plus_one(engine, work_requests, work, console)
            data["slow_queries"] = analysis.show_slow_queries(work, console, slow_ms)
            data["advisor"] = indexes.advise_and_apply(
                engine,
                db_url,
                work_requests,
                work,
                console,
                has_hypopg=_has_extension(db_url, "hypopg"),
            )
            data["findings"] = ops.lint_and_health(db_url, console)
            data["partitions"] = ops.maintain_partitions(db_url, console)
            data["pool"] = ops.pool_preset(
                engine, config, work_requests, console, options.pool_seconds
            )
            data["summary"] = _summary(data)
            data["subtitle"] = (
                f"{data['setup']['rows']['user_interactions']:,} interactions, "
                f"{data['statements_run']:,} statements, generated by `dbopt demo`"
            )
            target = Path(options.output)
            write_html(data, target)
            target.with_suffix(".json").write_text(
                json.dumps(data, indent=1, default=str), encoding="utf-8"
            )
            elapsed = time.monotonic() - console.started
            console.heading("Report")
            console.line(f"HTML report: {target.resolve()}", "ok")
            console.line(
                f"its data:    {target.with_suffix('.json').resolve()}"
                f"  (dbopt report --from FILE re-renders it)",
                "dim",
            )
            console.line(f"demo finished in {elapsed:.0f} s; cleaning up", "dim")
    finally:
        with _shielded():
            stack.close()
    return data
