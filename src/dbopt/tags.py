"""Opt-in sqlcommenter tags: the application's route and line, visible to the database server.

:class:`SQLCommenter` appends a comment in the sqlcommenter format
(``/*callsite='app%2Fviews.py%3A42',route='GET%20%2Fusers'*/``) to each
statement a SQLAlchemy engine runs, so ``pg_stat_activity``, the slow-query
log and auto_explain say where a statement came from. Nothing is tagged
until :meth:`SQLCommenter.attach` is called.

What a comment holds, and only this (never a parameter value nor a literal):

* ``route``: the outermost :func:`dbopt.scope`'s ``route`` tag, else its
  name (the web integrations name a request's scope after its route
  template, ``GET /users/<int:id>``, once routing matched);
* ``scope``: the innermost scope's name when it is not the outermost;
* ``callsite`` (``per="line"`` only): the application line that ran the
  statement, ``file:line`` relative to the project root;
* ``traceparent`` (``traceparent=True``): the W3C trace context of the
  current OpenTelemetry span;
* ``application`` and any constant ``tags`` given.

Per scope (the default) the text of a statement varies only with the route,
so the driver's prepared statements, PgBouncer's prepared-statement cache
and the server's plan cache see a handful of texts per statement; per line
adds the call site (still a few texts per statement); ``traceparent`` makes
every request's text unique, which defeats those caches. pg_stat_statements
ignores comments when it groups statements (its queryid comes from the parse
tree), and keeps the text of the first call it saw. See docs/fleet.md.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from dbopt.core.callsite import capture_stack, display_path
from dbopt.core.scope import current_scope
from dbopt.errors import ConfigurationError, MissingDependencyError
from dbopt.postgres.render import sqlcommenter

__all__ = ["SQLCommenter", "tag_sql"]

#: Longest value kept in a comment (characters, before URL-encoding).
MAX_VALUE = 200
_MAX_CACHED = 4096
_PERCENT_STYLES = frozenset({"format", "pyformat"})


def tag_sql(sql: str, comment: str) -> str:
    """``sql`` with ``comment`` appended (before a trailing ``;``), or ``sql`` for no comment."""
    if not comment:
        return sql
    body = sql.rstrip()
    if body.endswith(";"):
        return f"{body[:-1].rstrip()} {comment};"
    return f"{body} {comment}"


class SQLCommenter:
    """Appends sqlcommenter tags to every statement of the engines it is attached to.

    ``per`` is ``"scope"`` (route and scope) or ``"line"`` (also the call
    site). The listener never fails a statement: if building a comment
    raises, the statement runs untagged.
    """

    def __init__(
        self,
        *,
        per: Literal["scope", "line"] = "scope",
        application: str | None = None,
        traceparent: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if per not in ("scope", "line"):
            raise ConfigurationError(f"per must be 'scope' or 'line', got {per!r}")
        self.per = per
        self.constant = {str(k): _cut(str(v)) for k, v in (tags or {}).items()}
        if application:
            self.constant["application"] = _cut(application)
        self._trace: Callable[[], str | None] | None = _trace_context() if traceparent else None
        self._cache: dict[tuple[str | None, str | None, str | None], str] = {}
        self._engines: list[Any] = []

    def tags(self) -> dict[str, str]:
        """The tags of a statement run here and now."""
        out = dict(self.constant)
        route, inner = _scope_names()
        if route:
            out["route"] = route
        if inner:
            out["scope"] = inner
        if self.per == "line":
            site = _callsite()
            if site:
                out["callsite"] = site
        if self._trace is not None:
            parent = self._trace()
            if parent:
                out["traceparent"] = parent
        return out

    def comment(self) -> str:
        """The comment for a statement run here and now (``""`` when there is nothing to say)."""
        if self._trace is not None:
            return sqlcommenter(self.tags())
        route, inner = _scope_names()
        site = _callsite() if self.per == "line" else None
        key = (route, inner, site)
        text = self._cache.get(key)
        if text is None:
            tags = dict(self.constant)
            for name, value in (("route", route), ("scope", inner), ("callsite", site)):
                if value:
                    tags[name] = value
            text = sqlcommenter(tags)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[key] = text
        return text

    # SQLAlchemy

    def attach(self, engine: Any) -> SQLCommenter:
        """Tag the statements of ``engine`` (an ``Engine`` or ``AsyncEngine``); returns self."""
        from sqlalchemy import event

        sync = getattr(engine, "sync_engine", engine)
        if sync not in self._engines:
            event.listen(sync, "before_cursor_execute", self._before, retval=True)
            self._engines.append(sync)
        return self

    def detach(self) -> None:
        """Stop tagging (every engine it was attached to)."""
        from sqlalchemy import event

        for engine in self._engines:
            if event.contains(engine, "before_cursor_execute", self._before):
                event.remove(engine, "before_cursor_execute", self._before)
        self._engines.clear()

    def _before(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        try:
            comment = self.comment()
            if not comment:
                return statement, parameters
            if parameters is not None and conn.dialect.paramstyle in _PERCENT_STYLES:
                comment = comment.replace("%", "%%")
            return tag_sql(statement, comment), parameters
        except Exception:  # noqa: BLE001 - a tag is a courtesy; the statement always runs
            return statement, parameters


def _cut(value: str) -> str:
    return value[:MAX_VALUE]


def _scope_names() -> tuple[str | None, str | None]:
    """(route, inner scope name) of the current scope; either may be None."""
    scope = current_scope()
    if scope is None:
        return None, None
    outer = scope
    while outer.parent is not None:
        outer = outer.parent
    route = outer.tags.get("route") or outer.name
    inner = scope.name if scope is not outer else None
    return (_cut(str(route)) if route else None), (_cut(inner) if inner else None)


def _callsite() -> str | None:
    stack = capture_stack(1)
    if not stack:
        return None
    return _cut(f"{display_path(stack[0].file)}:{stack[0].line}")


def _trace_context() -> Callable[[], str | None]:
    try:
        from opentelemetry import trace
    except ImportError as exc:
        raise MissingDependencyError("opentelemetry-api", "otel") from exc

    def traceparent() -> str | None:
        span = trace.get_current_span().get_span_context()
        if not span.is_valid:
            return None
        return f"00-{span.trace_id:032x}-{span.span_id:016x}-{int(span.trace_flags):02x}"

    return traceparent
