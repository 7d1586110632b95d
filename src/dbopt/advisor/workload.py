"""Workloads: the statements to advise on, each weighted by calls and time.

Sources: a :class:`dbopt.QueryStats` (the application's own statements with
real parameters and call sites), ``pg_stat_statements`` (normalized ``$n``
text, explained with generic plans), a list of SQL strings (or
:class:`WorkloadStatement`), or a ``.sql`` file (split on ``;``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pglast

from dbopt.core.fingerprint import fingerprint
from dbopt.core.stats import QueryStats
from dbopt.errors import ConfigurationError
from dbopt.postgres.render import ident

__all__ = ["PgStatStatements", "Workload", "WorkloadStatement", "load_workload"]

_DRIVER_PARAM = re.compile(r"%\((?P<name>[^)]+)\)[sbt]|%(?P<pos>[sbt])|%%")
_DOLLAR = re.compile(r"\$(\d+)")
_REDACTED = re.compile(r"<[A-Za-z_][\w.]*>\Z")


@dataclass(frozen=True)
class WorkloadStatement:
    """One statement of a workload.

    ``sql`` is the text as the driver ran it (``%(name)s``/``%s`` with
    ``params``) or PostgreSQL text with ``$n`` placeholders (explained with a
    generic plan when ``params`` is None). ``calls`` weights it;
    ``total_time`` is in seconds; ``callsites`` are ``file:line`` strings.
    """

    sql: str
    params: Any = None
    calls: int = 1
    total_time: float = 0.0
    callsites: tuple[str, ...] = ()
    source: str = "sql"

    @property
    def key(self) -> str:
        """Fingerprint shared by statements that differ only in values."""
        return fingerprint(self.sql)

    def parse_text(self) -> tuple[str, dict[int, Any]]:
        """The text with every placeholder as ``$n``, and the known ``$n`` values."""
        params = self.params
        if not _has_driver_placeholder(self.sql):
            if isinstance(params, (list, tuple)) and _DOLLAR.search(self.sql):
                known = dict(enumerate(params, start=1))
                return self.sql, {k: v for k, v in known.items() if not _redacted(v)}
            return self.sql, {}
        if isinstance(params, (list, tuple)) and params and isinstance(params[0], (dict, list)):
            params = params[0]
        names: dict[str, int] = {}
        values: dict[int, Any] = {}
        counter = [0]

        def repl(m: re.Match[str]) -> str:
            if m.group(0) == "%%":
                return "%"
            if m.group("name") is not None:
                name = m.group("name")
                if name not in names:
                    counter[0] += 1
                    names[name] = counter[0]
                    if isinstance(params, Mapping) and name in params:
                        values[counter[0]] = params[name]
                return f"${names[name]}"
            counter[0] += 1
            if isinstance(params, (list, tuple)) and counter[0] <= len(params):
                values[counter[0]] = params[counter[0] - 1]
            return f"${counter[0]}"

        text = _DRIVER_PARAM.sub(repl, self.sql)
        return text, {k: v for k, v in values.items() if not _redacted(v)}

    def explain_mode(self, dollar_params: int) -> str:
        """How to EXPLAIN it: ``plain``, ``params``, ``generic`` or ``prepared``.

        ``dollar_params`` is the highest ``$n`` in the parsed text.
        """
        usable = self.params is not None and not _all_redacted(self.params)
        if _has_driver_placeholder(self.sql):
            return "params" if usable else "generic"
        if dollar_params:
            return "prepared" if usable and isinstance(self.params, (list, tuple)) else "generic"
        return "plain"


def _has_driver_placeholder(sql: str) -> bool:
    return any(m.group(0) != "%%" for m in _DRIVER_PARAM.finditer(sql))


def _redacted(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(_REDACTED.match(value)))


def _all_redacted(params: Any) -> bool:
    if isinstance(params, Mapping):
        return bool(params) and all(_redacted(v) for v in params.values())
    if isinstance(params, (list, tuple)):
        if params and isinstance(params[0], (dict, list, tuple)):
            return _all_redacted(params[0])
        return bool(params) and all(_redacted(v) for v in params)
    return False


@dataclass(frozen=True)
class PgStatStatements:
    """Read the workload from ``pg_stat_statements`` of the advised database.

    The ``limit`` statements with the most total execution time and at
    least ``min_calls`` calls; utility statements are skipped.
    """

    limit: int = 500
    min_calls: int = 1


@dataclass
class Workload:
    """Statements to advise on, merged by fingerprint (calls and times add up)."""

    statements: list[WorkloadStatement] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def add(self, stmt: WorkloadStatement) -> None:
        """Add ``stmt``, merging it into an earlier statement with the same fingerprint."""
        key = stmt.key
        for i, old in enumerate(self.statements):
            if old.key == key:
                sites = tuple(dict.fromkeys(old.callsites + stmt.callsites))
                self.statements[i] = WorkloadStatement(
                    old.sql,
                    old.params,
                    old.calls + stmt.calls,
                    old.total_time + stmt.total_time,
                    sites,
                    old.source,
                )
                return
        self.statements.append(stmt)

    def __len__(self) -> int:
        return len(self.statements)

    def __iter__(self) -> Any:
        return iter(self.statements)


def load_workload(source: Any, conn: Any = None) -> Workload:
    """A :class:`Workload` from any supported source (see the module docstring).

    ``conn`` (psycopg) is needed for ``pg_stat_statements``. A missing
    pg_stat_statements extension becomes an error entry, not an exception.
    """
    workload = Workload()
    if isinstance(source, Workload):
        return source
    if isinstance(source, QueryStats):
        for st in source.statements():
            if st.dialect and st.dialect != "postgresql":
                continue
            workload.add(
                WorkloadStatement(
                    st.example_sql,
                    st.example_params,
                    max(1, st.calls),
                    st.total_time,
                    tuple(st.callsites),
                    "querystats",
                )
            )
        return workload
    if isinstance(source, PgStatStatements) or source == "pg_stat_statements":
        spec = source if isinstance(source, PgStatStatements) else PgStatStatements()
        return _from_pg_stat_statements(spec, conn)
    if isinstance(source, os.PathLike) or (
        isinstance(source, str) and source.endswith(".sql") and "\n" not in source
    ):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read workload file {path}: {exc}") from exc
        for sql in _split(text, workload):
            workload.add(WorkloadStatement(sql, source="file"))
        return workload
    if isinstance(source, str):
        source = [source]
    if isinstance(source, Iterable):
        for item in source:
            if isinstance(item, WorkloadStatement):
                workload.add(item)
            elif isinstance(item, str):
                workload.add(WorkloadStatement(item.strip().rstrip(";")))
            else:
                raise ConfigurationError(f"workload items must be SQL strings, got {item!r}")
        return workload
    raise ConfigurationError(
        "workload must be a QueryStats, 'pg_stat_statements', a PgStatStatements, "
        f"a list of SQL strings or a .sql file path; got {type(source).__name__}"
    )


def _split(text: str, workload: Workload) -> Sequence[str]:
    try:
        return [s for s in pglast.split(text) if s.strip()]
    except pglast.parser.ParseError as exc:
        workload.errors.append((text[:200], f"cannot split the file into statements: {exc}"))
        return []


def _from_pg_stat_statements(spec: PgStatStatements, conn: Any) -> Workload:
    workload = Workload()
    if conn is None:
        raise ConfigurationError("pg_stat_statements needs a database connection")
    row = conn.execute(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = 'pg_stat_statements'"
    ).fetchone()
    if row is None:
        workload.errors.append(
            (
                "pg_stat_statements",
                "pg_stat_statements is not installed in this database "
                "(CREATE EXTENSION pg_stat_statements, with it in shared_preload_libraries)",
            )
        )
        return workload
    schema = ident(row[0], force=True)
    rows = conn.execute(
        f"SELECT s.query, s.calls, s.total_exec_time FROM {schema}.pg_stat_statements s"
        " JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = current_database() AND s.calls >= %s"
        " ORDER BY s.total_exec_time DESC LIMIT %s",
        (spec.min_calls, spec.limit * 2),
    ).fetchall()
    for query, calls, total_ms in rows:
        head = query.lstrip().split(None, 1)[0].lower() if query.strip() else ""
        if head not in ("select", "with", "update", "delete", "insert", "table", "("):
            continue
        if "hypopg" in query or query.lstrip().lower().startswith("explain"):
            continue
        workload.add(
            WorkloadStatement(
                query, None, int(calls), float(total_ms) / 1000.0, (), "pg_stat_statements"
            )
        )
        if len(workload) >= spec.limit:
            break
    return workload
