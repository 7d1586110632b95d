"""The application's statements beside the server's: QueryStats joined to pg_stat_statements.

:func:`statements` reads pg_stat_statements (the query of the health
report's top-statements check, :func:`dbopt.health.workload.statements_sql`)
and joins its rows to a :class:`~dbopt.QueryStats`' entries by fingerprint:
pg_stat_statements keeps ``$1`` where the application sent ``%s`` or a
literal, and :func:`dbopt.fingerprint` reads both as ``?``, so the
application's call sites and timings land on the same row as the server's
buffer hits, reads and I/O time. Several ``queryid`` s with one fingerprint
(other users, other search paths) are summed into one row and all listed.
Private by default: the texts are masked with
:func:`~dbopt.core.fingerprint.mask_literals`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from dbopt.core.fingerprint import fingerprint, mask_literals
from dbopt.core.stats import QueryStats, StatementStats
from dbopt.health.workload import statements_sql
from dbopt.postgres.connect import map_driver_errors, read_only_connection

if TYPE_CHECKING:
    from dbopt.postgres.connect import Target

__all__ = ["JoinedStatement", "ServerStatement", "StatementsJoin", "join_statements", "statements"]

Matched = Literal["fingerprint", "app_only", "server_only"]


@dataclass(frozen=True)
class ServerStatement:
    """pg_stat_statements' totals for one fingerprint (summed over its ``queryids``).

    Times in milliseconds; ``hit_ratio`` is shared buffer hits over hits plus
    reads (None when no block was touched); ``query`` is masked.
    """

    fingerprint: str
    queryids: tuple[str, ...]
    query: str
    calls: int
    total_ms: float
    rows: int
    io_ms: float
    shared_blks_hit: int
    shared_blks_read: int

    @property
    def mean_ms(self) -> float:
        """Mean execution time per call (ms)."""
        return self.total_ms / self.calls if self.calls else 0.0

    @property
    def hit_ratio(self) -> float | None:
        """Shared buffer hit ratio (0..1), or None when no block was read or hit."""
        touched = self.shared_blks_hit + self.shared_blks_read
        return self.shared_blks_hit / touched if touched else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "fingerprint": self.fingerprint,
            "queryids": list(self.queryids),
            "query": self.query,
            "calls": self.calls,
            "total_ms": self.total_ms,
            "mean_ms": self.mean_ms,
            "rows": self.rows,
            "io_ms": self.io_ms,
            "shared_blks_hit": self.shared_blks_hit,
            "shared_blks_read": self.shared_blks_read,
            "hit_ratio": self.hit_ratio,
        }


@dataclass(frozen=True)
class JoinedStatement:
    """One statement as the application saw it (``app``) and as the server did (``server``).

    Either side is None when only the other knows the statement (the server
    also counts other clients' statements; the application's may have been
    evicted from pg_stat_statements or run before its last reset).
    """

    fingerprint: str
    text: str
    app: StatementStats | None
    server: ServerStatement | None

    @property
    def matched(self) -> Matched:
        """``fingerprint`` when both sides know it, else which side alone does."""
        if self.app is not None and self.server is not None:
            return "fingerprint"
        return "app_only" if self.app is not None else "server_only"

    @property
    def callsites(self) -> list[tuple[str, int]]:
        """The application's call sites (``file:line``, calls), most calls first."""
        if self.app is None:
            return []
        return sorted(self.app.callsites.items(), key=lambda kv: -kv[1])

    @property
    def total_ms(self) -> float:
        """Time to sort by: the application's total (ms) when it has one, else the server's."""
        if self.app is not None:
            return self.app.total_time * 1000.0
        return self.server.total_ms if self.server is not None else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the application side without example text or parameters."""
        app = None
        if self.app is not None:
            a = self.app
            app = {
                "calls": a.calls,
                "total_ms": a.total_time * 1000.0,
                "mean_ms": a.mean_time * 1000.0,
                "p95_ms": a.p95_time * 1000.0,
                "rows": a.rows,
                "errors": a.errors,
                "callsites": dict(self.callsites),
            }
        return {
            "fingerprint": self.fingerprint,
            "text": self.text,
            "matched": self.matched,
            "app": app,
            "server": self.server.to_dict() if self.server is not None else None,
        }


@dataclass
class StatementsJoin:
    """The joined rows (application total time first), and whether the server side was read.

    ``available`` is False when pg_stat_statements could not be read; ``note``
    says why (not installed, not preloaded, no privilege) and the rows are the
    application's alone.
    """

    rows: list[JoinedStatement] = field(default_factory=list)
    available: bool = True
    note: str | None = None
    extversion: str | None = None

    @property
    def matched(self) -> int:
        """Rows both sides know."""
        return sum(1 for r in self.rows if r.matched == "fingerprint")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "available": self.available,
            "note": self.note,
            "extversion": self.extversion,
            "matched": self.matched,
            "rows": [r.to_dict() for r in self.rows],
        }


def _server_rows(raw: Iterable[dict[str, Any]]) -> list[ServerStatement]:
    """pg_stat_statements rows summed by dbopt fingerprint."""
    groups: dict[str, dict[str, Any]] = {}
    for row in raw:
        text = str(row.get("query") or "")
        key = fingerprint(text)
        acc = groups.get(key)
        if acc is None:
            acc = groups[key] = {
                "query": mask_literals(text),
                "queryids": [],
                "calls": 0,
                "total_ms": 0.0,
                "rows": 0,
                "io_ms": 0.0,
                "hit": 0,
                "read": 0,
            }
        acc["queryids"].append(str(row.get("queryid")))
        acc["calls"] += int(row.get("calls") or 0)
        acc["total_ms"] += float(row.get("total_ms") or 0.0)
        acc["rows"] += int(row.get("rows") or 0)
        acc["io_ms"] += float(row.get("io_ms") or 0.0)
        acc["hit"] += int(row.get("shared_blks_hit") or 0)
        acc["read"] += int(row.get("shared_blks_read") or 0)
    return [
        ServerStatement(
            fingerprint=key,
            queryids=tuple(acc["queryids"]),
            query=acc["query"],
            calls=acc["calls"],
            total_ms=acc["total_ms"],
            rows=acc["rows"],
            io_ms=acc["io_ms"],
            shared_blks_hit=acc["hit"],
            shared_blks_read=acc["read"],
        )
        for key, acc in groups.items()
    ]


def join_statements(
    app: QueryStats | Iterable[StatementStats], server: Iterable[ServerStatement]
) -> list[JoinedStatement]:
    """Rows for every fingerprint either side knows, the application's total time first."""
    entries = app.statements() if isinstance(app, QueryStats) else list(app)
    by_print = {s.fingerprint: s for s in server}
    rows: list[JoinedStatement] = []
    for entry in entries:
        match = by_print.pop(entry.fingerprint, None)
        rows.append(
            JoinedStatement(entry.fingerprint, mask_literals(entry.normalized), entry, match)
        )
    rows.sort(key=lambda r: -r.total_ms)
    rest = sorted(by_print.values(), key=lambda s: -s.total_ms)
    rows.extend(JoinedStatement(s.fingerprint, s.query, None, s) for s in rest)
    return rows


def statements(
    target: Target,
    app: QueryStats | Iterable[StatementStats] = (),
    *,
    limit: int = 500,
    text_chars: int = 16_384,
    statement_timeout_ms: int = 5000,
) -> StatementsJoin:
    """Read the top ``limit`` pg_stat_statements rows of this database and join them to ``app``.

    Read-only, on a connection of its own under ``statement_timeout_ms``.
    Texts longer than ``text_chars`` are cut (and then match no application
    fingerprint). When pg_stat_statements is missing or cannot be read, the
    result has ``available=False``, a ``note`` saying why, and the
    application's rows alone. Raises :class:`~dbopt.ServerUnavailableError`
    when the server cannot be reached.
    """
    import psycopg

    with read_only_connection(
        target, tool="statements", statement_timeout_ms=statement_timeout_ms
    ) as conn:
        with map_driver_errors("could not read pg_stat_statements' version"):
            ext = conn.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements'"
            ).fetchone()
        if ext is None:
            return StatementsJoin(
                join_statements(app, ()),
                available=False,
                note="pg_stat_statements is not installed in this database "
                "(CREATE EXTENSION pg_stat_statements; it needs shared_preload_libraries)",
            )
        version = str(ext["extversion"])
        try:
            raw = conn.execute(statements_sql(version, text_chars), {"limit": limit}).fetchall()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
            return StatementsJoin(
                join_statements(app, ()),
                available=False,
                note=f"pg_stat_statements could not be read: {first}",
                extversion=version,
            )
    return StatementsJoin(join_statements(app, _server_rows(raw)), extversion=version)
