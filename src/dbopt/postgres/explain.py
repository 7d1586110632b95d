"""``Explainer``: EXPLAIN one captured statement on a connection of its own, safely."""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import socket
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dbopt.errors import ConfigurationError, DatabaseError
from dbopt.postgres.connect import connect, conninfo, translate

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL, Engine

    from dbopt.core.events import QueryEvent

__all__ = ["Explainer"]

_DOLLAR_PARAM = re.compile(r"\$(\d+)")
# psycopg's placeholders: %s, %b, %t, %(name)s, and %% for a literal percent sign
_PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?(?P<fmt>[sbt%])")
# Statement kinds and sub-clauses that write, lock rows or end the transaction.
_REFUSED_NODES = {
    "InsertStmt": "it contains an INSERT",
    "UpdateStmt": "it contains an UPDATE",
    "DeleteStmt": "it contains a DELETE",
    "MergeStmt": "it contains a MERGE",
    "LockingClause": "it locks rows (FOR UPDATE/SHARE)",
    "IntoClause": "it is SELECT INTO (creates a table)",
}
# Plan fields that hold expressions, in which literal values may appear.
_EXPR_KEY = re.compile(r"Cond|Filter|Key|Output|Call|Expr|Condition")
# A plan expression's tokens: quoted identifiers (kept), string literals and numbers (redacted).
_EXPR_TOKEN = re.compile(
    r"""(?P<ident>"(?:[^"]|"")*")"""
    r"""|(?P<string>[Ee]?'(?:[^'\\]|''|\\.)*')"""
    r"""|(?P<number>(?<![\w$.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.]))"""
)
_PARAMS = ("redact", "keep")
_NAMES = itertools.count(1)


class Explainer:
    """Run ``EXPLAIN (FORMAT JSON)`` for events, never in the application's transaction.

    ``target`` is a SQLAlchemy ``Engine``/URL or a libpq connection string of
    the same database. The Explainer opens one psycopg connection of its own
    (lazily, reopened after a failure). EXPLAIN without ANALYZE does not run
    the statement; on top of that:

    * **Exactly one plain query.** The text is split with pglast (PostgreSQL's
      own parser); it is explained only when it is one ``SELECT``, ``VALUES``
      or ``TABLE`` statement without data-modifying CTEs (``WITH d AS (DELETE
      ...)``), ``FOR UPDATE/SHARE`` or ``INTO``. Anything else, e.g. a text
      with a ``COMMIT`` or a second statement, is not sent: :meth:`explain`
      returns None and :meth:`why_not` says why.
    * **Read-only and reset.** Each EXPLAIN runs inside ``BEGIN READ ONLY``
      that is rolled back, under ``statement_timeout_ms``; afterwards the
      session is reset with ``DISCARD ALL`` (no advisory lock taken by a
      function folded at plan time, no prepared statement, no temporary
      table, no open transaction survives).
    * **Bounded.** Every wait has a client-side deadline (``deadline_s``,
      default the statement timeout plus 2 s): past it the query is
      cancelled and then the socket shut. :meth:`close` returns within its
      ``timeout`` even while the backend is stalled (e.g. waiting on a lock).
    * **Private plans by default** (``params="redact"``): literals in the text
      are normalised to ``$n`` (pglast) and parameters are never sent; the
      statement is planned as a generic plan (``PREPARE`` +
      ``plan_cache_mode = force_generic_plan`` + ``EXPLAIN EXECUTE`` before
      PostgreSQL 16, ``EXPLAIN (GENERIC_PLAN)`` from 16), so conditions show
      ``$1`` instead of values. When the normalised text cannot be prepared
      (a parameter's type cannot be inferred), the original text is planned
      instead and string and number literals in the plan's expression
      fields are replaced by ``'?'`` and ``?``. ``params="keep"`` binds the
      captured parameters (``%s``/``%(name)s``) and keeps literals, so the
      plan is the one for those values and shows them.

    ``$n`` text (pg_stat_statements) is always planned generically.
    Thread-safe; call :meth:`close` when done.
    """

    def __init__(
        self,
        target: Engine | URL | str,
        *,
        statement_timeout_ms: int = 5000,
        connect_timeout_s: int = 5,
        params: str = "redact",
        deadline_s: float | None = None,
    ) -> None:
        if params not in _PARAMS:
            raise ConfigurationError(f"params must be one of {_PARAMS}, got {params!r}")
        self.conninfo = conninfo(target, "Explainer")
        self.statement_timeout_ms = int(statement_timeout_ms)
        self.connect_timeout_s = int(connect_timeout_s)
        self.params = params
        self.deadline_s = (
            float(deadline_s) if deadline_s is not None else self.statement_timeout_ms / 1000 + 2
        )
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self._closing = False

    def __call__(self, event: QueryEvent) -> Any:
        """Plan of ``event`` (the JSON EXPLAIN output), or None if not explainable."""
        if event.dialect != "postgresql":
            return None
        return self.explain(event.sql, event.parameters)

    # -- what is explained ----------------------------------------------------------------

    def why_not(self, sql: str, parameters: Any = None) -> str | None:
        """Why ``sql`` would not be explained, or None when it would be.

        Works on the text alone (no database): the text must be exactly one
        plain ``SELECT``/``VALUES``/``TABLE`` statement.
        """
        try:
            text, _ = _to_dollar(sql, _first_set(parameters))
        except _RefusedError as exc:
            return str(exc)
        return _refusal(text)

    def explain(self, sql: str, parameters: Any = None) -> Any:
        """``EXPLAIN (FORMAT JSON)`` of ``sql``, or None when it is not one plain query.

        None means the text was not sent (see :meth:`why_not` for the reason).
        Raises :class:`DatabaseError` when the server fails or the deadline
        passes.
        """
        parameters = _first_set(parameters)
        try:
            text, values = _to_dollar(sql, parameters)
        except _RefusedError:
            return None
        if _refusal(text) is not None:
            return None
        import psycopg

        with self._lock:
            if self._closing:
                raise DatabaseError("EXPLAIN failed: the Explainer is closed")
            conn = self._connect()
            timer = threading.Timer(self.deadline_s, self._interrupt, args=(conn,))
            timer.daemon = True
            timer.start()
            try:
                try:
                    plan = self._run(conn, sql, text, parameters, values)
                finally:
                    self._reset(conn)
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError):
                    self._drop()
                raise translate(exc, "EXPLAIN failed") from exc
            finally:
                timer.cancel()
        return plan

    def _run(
        self,
        conn: psycopg.Connection[Any],
        sql: str,
        text: str,
        parameters: Any,
        values: list[Any] | None,
    ) -> Any:
        import psycopg

        if self.params == "keep" and (values or not _DOLLAR_PARAM.search(text)):
            # today's behaviour: the plan for the captured values, literals as written
            return self._explain_bound(conn, sql, parameters)
        # private: literals normalised to $n, no value ever sent, a generic plan
        try:
            from pglast.parser import normalize

            normal = normalize(text)
        except Exception:  # noqa: BLE001 - pglast raises several kinds; fall back to redaction
            normal = text
        if normal != text:
            try:
                return self._explain_generic(conn, normal)
            except psycopg.OperationalError:
                raise
            except psycopg.Error:
                pass  # e.g. a literal's type cannot be inferred as a parameter
        plan = self._explain_generic(conn, text)
        return _redact_plan(plan) if self.params == "redact" else plan

    def _begin(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute("BEGIN READ ONLY")
        conn.execute(f"SET LOCAL statement_timeout = {self.statement_timeout_ms}")
        conn.execute(f"SET LOCAL lock_timeout = {self.statement_timeout_ms}")

    def _explain_bound(self, conn: psycopg.Connection[Any], sql: str, parameters: Any) -> Any:
        self._begin(conn)
        cur = conn.cursor()
        cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", parameters or None)
        row = cur.fetchone()
        return row[0] if row else None

    def _explain_generic(self, conn: psycopg.Connection[Any], text: str) -> Any:
        """Generic plan of ``text`` (``$n`` parameters, no values)."""
        self._rollback(conn)
        self._begin(conn)
        if not _DOLLAR_PARAM.search(text):
            row = conn.execute(f"EXPLAIN (FORMAT JSON) {text}").fetchone()
        elif conn.info.server_version >= 160000:
            row = conn.execute(f"EXPLAIN (FORMAT JSON, GENERIC_PLAN) {text}").fetchone()
        else:
            name = f"dbopt_explain_{next(_NAMES)}"
            conn.execute(f"PREPARE {name} AS {text}")
            conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")
            count = conn.execute(
                "SELECT cardinality(parameter_types) FROM pg_prepared_statements WHERE name = %s",
                (name,),
            ).fetchone()
            n = int(count[0]) if count else 0
            args = f"({', '.join(['NULL'] * n)})" if n else ""
            row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}{args}").fetchone()
        return row[0] if row else None

    # -- the session ----------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(
                self.conninfo,
                "explain",
                statement_timeout_ms=None,  # set per EXPLAIN (SET LOCAL)
                lock_timeout_ms=None,
                connect_timeout_s=self.connect_timeout_s,
            )
        return self._conn

    @staticmethod
    def _rollback(conn: psycopg.Connection[Any]) -> None:
        from psycopg.pq import TransactionStatus

        if conn.info.transaction_status != TransactionStatus.IDLE:
            conn.execute("ROLLBACK")

    def _reset(self, conn: psycopg.Connection[Any]) -> None:
        """End the transaction and drop session state the statement may have left."""
        import psycopg

        if conn.closed:
            return
        try:
            self._rollback(conn)
            # advisory locks, prepared statements, temp tables, settings, LISTEN
            conn.execute("DISCARD ALL")
        except psycopg.Error:
            # a session that cannot be reset is not reused
            self._drop()

    def _interrupt(self, conn: psycopg.Connection[Any], grace_s: float = 1.0) -> None:
        """Cancel ``conn``'s query; if it is still busy after ``grace_s``, shut its socket."""
        from psycopg.pq import TransactionStatus

        if conn.closed:
            return
        with contextlib.suppress(Exception):  # the cancel itself may fail or time out
            conn.cancel_safe(timeout=grace_s)
        end = time.monotonic() + grace_s
        while time.monotonic() < end:
            if conn.closed or conn.info.transaction_status != TransactionStatus.ACTIVE:
                return
            time.sleep(0.01)
        _shut(conn)

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self, timeout: float = 5.0) -> None:
        """Close the Explainer's connection, within ``timeout`` seconds.

        When an EXPLAIN is running, it is cancelled, and if the backend does
        not answer its socket is shut; ``close()`` returns by its deadline.
        """
        end = time.monotonic() + max(timeout, 0.0)
        self._closing = True
        try:
            if self._lock.acquire(timeout=min(0.05, timeout)):
                try:
                    self._drop()
                finally:
                    self._lock.release()
                return
            conn = self._conn
            if conn is not None:  # an EXPLAIN holds the lock: interrupt it
                with contextlib.suppress(Exception):  # the cancel may fail or time out
                    conn.cancel_safe(timeout=max(0.01, (end - time.monotonic()) / 3))
                if not self._lock.acquire(timeout=max(0.0, (end - time.monotonic()) / 2)):
                    _shut(conn)
                    if not self._lock.acquire(timeout=max(0.0, end - time.monotonic())):
                        return  # the running EXPLAIN drops the dead connection itself
                try:
                    self._drop()
                finally:
                    self._lock.release()
        finally:
            self._closing = False

    def __enter__(self) -> Explainer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RefusedError(Exception):
    """The text is not explained (internal; the message is the reason)."""


def _shut(conn: psycopg.Connection[Any]) -> None:
    """Shut ``conn``'s socket so a thread waiting on it wakes up with an error."""
    try:
        fd = os.dup(conn.fileno())
    except Exception:  # noqa: BLE001 - already closed
        return
    try:
        with socket.socket(fileno=fd) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _first_set(parameters: Any) -> Any:
    if (
        isinstance(parameters, (list, tuple))
        and parameters
        and isinstance(parameters[0], (list, tuple, dict))
    ):
        return parameters[0]  # executemany: explain the first set
    return parameters


def _to_dollar(sql: str, parameters: Any) -> tuple[str, list[Any] | None]:
    """``sql`` with psycopg placeholders as ``$n``, and the values in ``$n`` order.

    Without parameters psycopg sends the text as it is, so it is returned as it is.
    """
    if parameters is None or (not parameters and not _PLACEHOLDER.search(sql)):
        return sql, None
    values: list[Any] = []
    names: dict[str, int] = {}
    position = 0
    out: list[str] = []
    last = 0
    for m in _PLACEHOLDER.finditer(sql):
        out.append(sql[last : m.start()])
        last = m.end()
        if m.group("fmt") == "%":
            out.append("%")
            continue
        name = m.group("name")
        if name is not None:
            if not isinstance(parameters, Mapping) or name not in parameters:
                raise _RefusedError(f"placeholder %({name})s has no parameter")
            if name not in names:
                values.append(parameters[name])
                names[name] = len(values)
            out.append(f"${names[name]}")
        else:
            if isinstance(parameters, Mapping) or not isinstance(parameters, Sequence):
                raise _RefusedError("positional placeholder with named parameters")
            if position >= len(parameters):
                raise _RefusedError("more placeholders than parameters")
            values.append(parameters[position])
            position += 1
            out.append(f"${position}")
    out.append(sql[last:])
    return "".join(out), values


def _refusal(text: str) -> str | None:
    """Why ``text`` is not one plain query, or None when it is."""
    from pglast import parse_sql
    from pglast.parser import ParseError
    from pglast.visitors import Visitor

    try:
        statements = parse_sql(text)
    except ParseError:  # the parser's message may quote the text: not repeated here
        return "does not parse as PostgreSQL"
    if not statements:
        return "no statement"
    if len(statements) > 1:
        return f"{len(statements)} statements (only one SELECT is explained)"
    node = statements[0].stmt
    if type(node).__name__ != "SelectStmt":
        return f"not a SELECT/VALUES/TABLE statement ({type(node).__name__})"
    found: list[str] = []

    class _Find(Visitor):
        def visit(self, ancestors: Any, node: Any) -> None:
            reason = _REFUSED_NODES.get(type(node).__name__)
            if reason is not None and reason not in found:
                found.append(reason)

    _Find()(statements[0])
    return "; ".join(found) if found else None


def _redact_text(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group("ident"):
            return m.group(0)
        return "'?'" if m.group("string") else "?"

    return _EXPR_TOKEN.sub(sub, text)


def _redact_plan(plan: Any, key: str = "") -> Any:
    """``plan`` with string and number literals in its expression fields replaced."""
    if isinstance(plan, dict):
        return {k: _redact_plan(v, k) for k, v in plan.items()}
    if isinstance(plan, list):
        return [_redact_plan(v, key) for v in plan]
    if isinstance(plan, str) and _EXPR_KEY.search(key):
        return _redact_text(plan)
    return plan
