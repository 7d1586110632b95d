"""Workloads: the statements to advise on, each weighted by calls and time.

Sources: a :class:`dbopt.QueryStats` (the application's own statements with
real parameters and call sites), ``pg_stat_statements`` (normalized ``$n``
text, explained with generic plans), a list of SQL strings (or
:class:`WorkloadStatement`), or a ``.sql`` file (split on ``;`` outside
literals and comments; each statement keeps its line, and one that does not
parse is an error of its own, not of the file).

A ``CREATE VIEW`` in a file or in a multi-statement item (``CREATE VIEW v
...; SELECT ... FROM v; DROP VIEW v``, as TPC-H's Q15) is inlined into the
statements that follow it as a ``NOT MATERIALIZED`` CTE, which the planner
plans as it plans the view: the advisor stays read-only. ``%`` inside string
literals is never taken for a driver placeholder.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pglast
from pglast import ast, enums
from pglast.stream import RawStream

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
    ``total_time`` is in seconds; ``callsites`` are ``file:line`` strings;
    ``rows`` is the number of rows it returned or wrote over all calls when
    the source knows it (pg_stat_statements, QueryStats; 0 otherwise);
    ``line`` is its first line in a ``.sql`` file; ``varying_literals`` is
    set when texts with other literals were merged into it (same fingerprint).
    """

    sql: str
    params: Any = None
    calls: int = 1
    total_time: float = 0.0
    callsites: tuple[str, ...] = ()
    source: str = "sql"
    rows: int = 0
    line: int | None = None
    varying_literals: bool = False

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
    """True if a ``%s``/``%(name)s`` placeholder is in code, not in a literal or comment."""
    if "%" not in sql:
        return False
    spans = code_spans(sql)
    return any(
        m.group(0) != "%%" and any(a <= m.start() < b for a, b in spans)
        for m in _DRIVER_PARAM.finditer(sql)
    )


def _scan(sql: str) -> tuple[list[tuple[int, int]], list[int]]:
    """Code spans (outside literals, quoted names and comments) and the ``;`` positions."""
    spans: list[tuple[int, int]] = []
    semis: list[int] = []
    i, n, start = 0, len(sql), 0
    while i < n:
        c = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        end = -1
        if c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _word(sql[i - 2]))
            end = _quoted(sql, i, "'", escapes)
        elif c == '"':
            end = _quoted(sql, i, '"', False)
        elif c == "-" and nxt == "-":
            nl = sql.find("\n", i)
            end = n if nl < 0 else nl
        elif c == "/" and nxt == "*":
            end = _block_comment(sql, i)
        elif c == "$" and (i == 0 or not _word(sql[i - 1])):
            m = _DOLLAR_TAG.match(sql, i)
            if m is not None:
                close = sql.find(m.group(0), m.end())
                end = n if close < 0 else close + len(m.group(0))
        elif c == ";":
            semis.append(i)
        if end >= 0:
            if i > start:
                spans.append((start, i))
            i = start = end
            continue
        i += 1
    if start < n:
        spans.append((start, n))
    return spans, semis


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)?\$")


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def _quoted(sql: str, i: int, quote: str, escapes: bool) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        if escapes and sql[j] == "\\":
            j += 2
            continue
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return n


def _block_comment(sql: str, i: int) -> int:
    depth, j, n = 0, i, len(sql)
    while j < n:
        if sql.startswith("/*", j):
            depth += 1
            j += 2
        elif sql.startswith("*/", j):
            depth -= 1
            j += 2
            if depth == 0:
                return j
        else:
            j += 1
    return n


def code_spans(sql: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the parts of ``sql`` that are code: not literals or comments."""
    return _scan(sql)[0]


def split_statements(text: str) -> list[tuple[int, str]]:
    """``(first line, statement)`` for each statement of ``text``, split on ``;`` in code.

    Never raises: a statement that does not parse is returned as it is, for
    the caller to report. Pieces with nothing but comments are dropped.
    """
    spans, semis = _scan(text)
    out: list[tuple[int, str]] = []
    start = 0
    for end in [*semis, len(text)]:
        code = "".join(text[max(a, start) : min(b, end)] for a, b in spans if a < end and b > start)
        if code.strip():
            piece = text[start:end]
            line = text.count("\n", 0, _first_code(text, spans, start, end)) + 1
            out.append((line, piece.strip()))
        start = end + 1
    return out


def _first_code(text: str, spans: list[tuple[int, int]], start: int, end: int) -> int:
    for a, b in spans:
        lo, hi = max(a, start), min(b, end)
        if lo < hi:
            chunk = text[lo:hi]
            stripped = len(chunk) - len(chunk.lstrip())
            if stripped < len(chunk):
                return lo + stripped
    return start


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
    """Statements to advise on, merged by fingerprint (calls and times add up).

    ``source`` names where it came from (``sql``, ``file``, ``querystats``,
    ``pg_stat_statements``); ``window_s`` is the time it covers when known
    (a QueryStats' recorded duration, pg_stat_statements since its reset),
    ``since`` when that window started. ``errors`` are ``(sql, message)``
    pairs of what could not be read; ``notes`` say what was rewritten.
    """

    statements: list[WorkloadStatement] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)
    source: str = "sql"
    window_s: float | None = None
    since: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, stmt: WorkloadStatement) -> None:
        """Add ``stmt``, merging it into an earlier statement with the same fingerprint."""
        key = stmt.key
        for i, old in enumerate(self.statements):
            if old.key == key:
                sites = tuple(dict.fromkeys(old.callsites + stmt.callsites))
                self.statements[i] = replace(
                    old,
                    calls=old.calls + stmt.calls,
                    total_time=old.total_time + stmt.total_time,
                    callsites=sites,
                    rows=old.rows + stmt.rows,
                    # merged texts that differ differ in their literals
                    varying_literals=(
                        old.varying_literals or stmt.varying_literals or old.sql != stmt.sql
                    ),
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
        workload.source = "querystats"
        if source.started_at > 0:  # 0: a snapshot saved without its window
            workload.window_s = source.duration_s
            workload.since = dt.datetime.fromtimestamp(source.started_at, dt.timezone.utc)
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
                    rows=st.rows,
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
        workload.source = "file"
        _add_sequence(workload, split_statements(text), "file", lines=True)
        return workload
    if isinstance(source, str):
        source = [source]
    if isinstance(source, Iterable):
        for item in source:
            if isinstance(item, WorkloadStatement):
                workload.add(item)
            elif isinstance(item, str):
                if _scan(item.strip().rstrip(";"))[1]:
                    _add_sequence(workload, split_statements(item), "sql", lines=False)
                else:
                    workload.add(WorkloadStatement(item.strip().rstrip(";")))
            else:
                raise ConfigurationError(f"workload items must be SQL strings, got {item!r}")
        return workload
    raise ConfigurationError(
        "workload must be a QueryStats, 'pg_stat_statements', a PgStatStatements, "
        f"a list of SQL strings or a .sql file path; got {type(source).__name__}"
    )


def _add_sequence(
    workload: Workload, pieces: list[tuple[int, str]], source: str, *, lines: bool
) -> None:
    """Add statements run in order; ``CREATE VIEW`` is inlined into the ones after it."""
    views: dict[str, ast.CommonTableExpr] = {}
    for line, piece in pieces:
        sql = piece
        where = f"line {line}" if lines else "the item"
        try:
            parsed = pglast.parse_sql(sql)
        except pglast.parser.ParseError:
            # reported by the analysis, with its line
            workload.add(WorkloadStatement(sql, source=source, line=line if lines else None))
            continue
        stmt = parsed[0].stmt if len(parsed) == 1 else None
        if isinstance(stmt, ast.ViewStmt) and stmt.view is not None and stmt.view.relname:
            name = str(stmt.view.relname)
            if not stmt.replace and name in views:
                workload.errors.append((sql, f"{where}: view {name} already exists"))
                continue
            views[name] = ast.CommonTableExpr(
                ctename=name,
                aliascolnames=stmt.aliases,
                ctequery=stmt.query,
                ctematerialized=enums.CTEMaterialize.CTEMaterializeNever,
            )
            continue
        if (
            isinstance(stmt, ast.DropStmt)
            and stmt.removeType == enums.ObjectType.OBJECT_VIEW
            and all(obj[-1].sval in views for obj in stmt.objects or ())
        ):
            for obj in stmt.objects or ():
                views.pop(obj[-1].sval, None)
            continue
        used = {n: c for n, c in views.items() if stmt is not None and _uses(stmt, n)}
        if used:
            inlined = _inline(stmt, views)
            if inlined is not None:
                note = f"view(s) {', '.join(sorted(used))} created by the workload inlined as CTEs"
                if note not in workload.notes:
                    workload.notes.append(note)
                sql = inlined
        workload.add(WorkloadStatement(sql, source=source, line=line if lines else None))


def _uses(stmt: Any, view: str) -> bool:
    """True if ``stmt`` names ``view`` without a schema."""
    stack: list[Any] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.RangeVar) and node.schemaname is None and node.relname == view:
            return True
        if isinstance(node, ast.Node):
            stack.extend(getattr(node, name) for name in getattr(node, "__slots__", ()))
        elif isinstance(node, tuple):
            stack.extend(node)
    return False


def _inline(stmt: Any, views: dict[str, ast.CommonTableExpr]) -> str | None:
    """``stmt`` with ``views`` as leading NOT MATERIALIZED CTEs (None: cannot)."""
    if not hasattr(stmt, "withClause"):
        return None
    ctes: list[Any] = list(views.values())
    recursive = False
    if stmt.withClause is not None:
        ctes.extend(stmt.withClause.ctes or ())
        recursive = bool(stmt.withClause.recursive)
    stmt.withClause = ast.WithClause(ctes=tuple(ctes), recursive=recursive)
    try:
        return str(RawStream()(stmt))
    except Exception:  # noqa: BLE001 - a statement pglast cannot print is kept as written
        return None


def _from_pg_stat_statements(spec: PgStatStatements, conn: Any) -> Workload:
    workload = Workload(source="pg_stat_statements")
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
    try:  # pg_stat_statements 1.9+ (PostgreSQL 14+) records when it was last reset
        info = conn.execute(
            f"SELECT stats_reset, extract(epoch FROM now() - stats_reset)::float8"
            f" FROM {schema}.pg_stat_statements_info"
        ).fetchone()
    except Exception:  # noqa: BLE001 - older versions have no pg_stat_statements_info
        conn.rollback()
        info = None
    if info is not None:
        workload.since, workload.window_s = info[0], info[1]
    rows = conn.execute(
        f"SELECT s.query, s.calls, s.total_exec_time, s.rows FROM {schema}.pg_stat_statements s"
        " JOIN pg_database d ON d.oid = s.dbid"
        " WHERE d.datname = current_database() AND s.calls >= %s"
        " ORDER BY s.total_exec_time DESC LIMIT %s",
        (spec.min_calls, spec.limit * 2),
    ).fetchall()
    for query, calls, total_ms, nrows in rows:
        head = query.lstrip().split(None, 1)[0].lower() if query.strip() else ""
        if head not in ("select", "with", "update", "delete", "insert", "table", "("):
            continue
        if "hypopg" in query or query.lstrip().lower().startswith("explain"):
            continue
        workload.add(
            WorkloadStatement(
                query,
                None,
                int(calls),
                float(total_ms) / 1000.0,
                (),
                "pg_stat_statements",
                rows=int(nrows or 0),
            )
        )
        if len(workload) >= spec.limit:
            break
    return workload
