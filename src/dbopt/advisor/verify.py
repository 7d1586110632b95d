"""``verify=True``: build the recommendations in a rolled-back transaction and measure.

Every statement runs under EXPLAIN ANALYZE ``repeat`` times without the
indexes and ``repeat`` times with them (the fastest run counts, so caches
are warm both times); each run is inside a savepoint that is rolled back,
so writes leave no trace, and the whole transaction, indexes included, is
rolled back at the end. Statements without parameter values (generic
``$n`` text) cannot be executed and are not measured.
"""

from __future__ import annotations

from typing import Any

import psycopg

from dbopt.advisor.ddl import qualified
from dbopt.advisor.evaluate import ExplainError, Target, explain
from dbopt.advisor.model import IndexSpec
from dbopt.advisor.report import AdvisorReport, Measurement
from dbopt.postgres.connect import connect, map_driver_errors
from dbopt.postgres.render import ident

__all__ = ["measure"]


def _run(conn: psycopg.Connection[Any], target: Target, repeat: int) -> float | None:
    best: float | None = None
    for _ in range(max(1, repeat)):
        conn.execute("SAVEPOINT dbopt_verify")
        try:
            plan = explain(conn, target, "ANALYZE, TIMING OFF, FORMAT JSON")
        except ExplainError:
            conn.execute("ROLLBACK TO SAVEPOINT dbopt_verify")
            return None
        conn.execute("ROLLBACK TO SAVEPOINT dbopt_verify")
        ms = float(plan[0].get("Execution Time", 0.0))
        best = ms if best is None else min(best, ms)
    return best


def measure(
    conninfo: str,
    report: AdvisorReport,
    targets: list[Target],
    repeat: int,
    notes: list[str],
) -> list[Measurement]:
    """Measured per-call times (ms) of ``targets`` without and with the recommendations."""
    runnable = [t for t in targets if t.mode != "generic"]
    if len(runnable) < len(targets):
        notes.append(
            f"verify: {len(targets) - len(runnable)} statement(s) without parameter values "
            "were not measured"
        )
    out: list[Measurement] = []
    with (
        connect(
            conninfo,
            "advisor-verify",
            read_only=False,  # builds the indexes, in a transaction that is rolled back
            statement_timeout_ms=None,
            lock_timeout_ms=None,
            connect_timeout_s=10,
        ) as conn,
        map_driver_errors("index advisor verify failed"),
    ):
        conn.execute("BEGIN")
        try:
            conn.execute("SET LOCAL lock_timeout = 5000")
            before = {t.index: _run(conn, t, repeat) for t in runnable}
            tables = set()
            for rec in report.recommendations:
                spec = IndexSpec(0, rec.method, rec.keys, rec.include, rec.predicate)
                conn.execute(
                    f"CREATE INDEX {ident(rec.name, force=True)} "
                    f"ON {qualified(rec.schema, rec.table)} {spec.body()}"
                )
                if any(not k.is_column for k in rec.keys):
                    tables.add(qualified(rec.schema, rec.table))
            for table in sorted(tables):
                conn.execute(f"ANALYZE {table}")
            names = [rec.name for rec in report.recommendations]
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indcheckxmin AND c.relname = ANY(%s)",
                (names,),
            ):
                notes.append(
                    f"verify: {name} is not usable inside the transaction that built it "
                    "(HOT update chains on its table); measured without it"
                )
            after = {t.index: _run(conn, t, repeat) for t in runnable}
        finally:
            conn.execute("ROLLBACK")
    for t in runnable:
        b, a = before.get(t.index), after.get(t.index)
        if b is not None and a is not None:
            out.append(Measurement(t.stmt.sql, t.stmt.calls, b, a))
    return out
