"""``QueryLogger``: every statement through stdlib logging, slow ones with their plan."""

from __future__ import annotations

import functools
import json
import logging
import queue
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from dbopt.core.events import QueryEvent
from dbopt.core.fingerprint import fingerprint_info
from dbopt.core.params import apply_policy, check_policy, jsonable, redact
from dbopt.errors import ConfigurationError

__all__ = ["QueryLogger"]

#: Takes a slow event and returns its plan (``EXPLAIN (FORMAT JSON)`` output),
#: or None when it cannot be explained. See :class:`dbopt.postgres.Explainer`.
ExplainFunc = Callable[[QueryEvent], Any]

_STOP = object()


class QueryLogger:
    """Log statements to the ``dbopt.sql`` logger (or one you pass).

    * Statements at or over ``slow_ms`` milliseconds log at ``slow_level``
      (WARNING); faster ones at ``level`` (DEBUG), of which only a ``sample``
      share (0..1) is logged. ``slow_ms=None`` turns the slow log off.
    * Failed statements log at ``error_level`` with the error.
    * ``params``: ``"redact"`` (default), ``"keep"`` or ``"drop"``; the
      policy for everything this logger writes. With ``"redact"`` and
      ``"drop"`` the statement is logged as its normalized text (literals
      as ``?``), parameters as their types (or not at all), an error as its
      type and SQLSTATE only, and plans with the constants of their
      conditions masked. ``"keep"`` logs the text, values, error messages and
      plans as they are.
    * Every record carries ``extra`` fields ``fingerprint``, ``duration_ms``,
      ``rows``, ``callsite``, ``scope``, ``sql`` and ``params``, for JSON formatters.
    * ``explain``: a callable (such as ``dbopt.postgres.Explainer(engine)``)
      run for slow SELECTs of at most ``explain_max_chars`` characters on a
      background thread, at most once per fingerprint per
      ``explain_interval`` seconds; its plan is logged and kept in
      :attr:`plans`. It never runs on the application's connection.
    * Bounded: :attr:`plans` keeps the latest ``max_plans`` plans and at most
      ``max_plan_bytes`` bytes of them (a larger plan is logged, not kept);
      the per-fingerprint EXPLAIN rate limit tracks at most ``max_plans``
      fingerprints (the oldest are forgotten first).
    """

    #: Only the call site is read (see :meth:`dbopt.core.pipeline.Pipeline.stack_depth`).
    dbopt_stack_depth = 1
    #: ``event.orm`` is not read: adapters may skip finding it for this sink.
    dbopt_reads_orm = False

    def __init__(
        self,
        logger: str | logging.Logger = "dbopt.sql",
        *,
        level: int = logging.DEBUG,
        slow_ms: float | None = 100.0,
        slow_level: int = logging.WARNING,
        error_level: int = logging.WARNING,
        sample: float = 1.0,
        params: str = "redact",
        max_sql_length: int = 2000,
        explain: ExplainFunc | None = None,
        explain_interval: float = 300.0,
        explain_max_chars: int = 65_536,
        max_plans: int = 1000,
        max_plan_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ConfigurationError(f"sample must be within 0..1, got {sample!r}")
        if slow_ms is not None and slow_ms < 0:
            raise ConfigurationError("slow_ms must be >= 0 or None")
        if explain is not None and not callable(explain):
            raise ConfigurationError("explain must be a callable taking a QueryEvent")
        if max_plans < 1 or max_plan_bytes < 0 or explain_max_chars < 0:
            raise ConfigurationError("max_plans must be >= 1, the other bounds >= 0")
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.level = level
        self.slow_s = None if slow_ms is None else slow_ms / 1000.0
        self.slow_level = slow_level
        self.error_level = error_level
        self.sample = sample
        self.params = check_policy(params)
        self.max_sql_length = max_sql_length
        self.explain = explain
        self.explain_interval = explain_interval
        self.explain_max_chars = explain_max_chars
        self.max_plans = max_plans
        self.max_plan_bytes = max_plan_bytes
        #: Latest plan per fingerprint from ``explain`` (oldest first; bounded).
        self.plans: dict[str, Any] = {}
        self._plan_bytes: dict[str, int] = {}
        #: Bytes of the plans in :attr:`plans` (as JSON).
        self.plans_nbytes = 0
        self._explained_at: dict[str, float] = {}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=64)
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, event: QueryEvent) -> None:
        slow = self.slow_s is not None and event.duration >= self.slow_s
        if event.error is not None:
            level = self.error_level
        elif slow:
            level = self.slow_level
        else:
            level = self.level
            if self.sample < 1.0 and random.random() >= self.sample:
                return
        if self.logger.isEnabledFor(level):
            self._emit(level, event, slow)
        if (
            slow
            and self.explain is not None
            and event.error is None
            and event.kind == "select"
            and len(event.sql) <= self.explain_max_chars
        ):
            self._schedule_explain(event)

    def _extra(self, event: QueryEvent) -> dict[str, Any]:
        site = event.callsite
        scope = event.scope
        params = event.parameters
        # Private unless asked: the normalized text (cached, literals as "?").
        sql = event.sql if self.params == "keep" else fingerprint_info(event.sql).normalized
        return {
            "fingerprint": event.fingerprint,
            "duration_ms": round(event.duration * 1000.0, 3),
            "rows": event.rowcount,
            "callsite": _site_text(site) if site is not None else None,
            "scope": scope.name if scope is not None else None,
            "sql": sql[: self.max_sql_length],
            # redact() already returns JSON-safe values.
            "params": redact(params)
            if self.params == "redact"
            else jsonable(apply_policy(params, self.params)),
        }

    def _emit(self, level: int, event: QueryEvent, slow: bool) -> None:
        extra = self._extra(event)
        site = event.callsite
        logger = self.logger
        # makeRecord + handle is what Logger.log does, minus findCaller's stack
        # walk: the record's location is the application's call site instead
        # of this method. The text is built only if a handler formats it.
        record = logger.makeRecord(
            logger.name,
            level,
            site.file if site is not None else "(unknown file)",
            site.line if site is not None else 0,
            _Message(self, event, slow, extra),
            (),
            None,
            site.function if site is not None else None,
            extra,
        )
        logger.handle(record)

    def _text(self, event: QueryEvent, slow: bool, extra: dict[str, Any]) -> str:
        sql = extra["sql"]
        if len(event.sql) > self.max_sql_length:
            sql += f"... [{len(event.sql)} chars]"
        where = f" at {extra['callsite']}" if extra["callsite"] else ""
        scope = f" [{event.scope.path}]" if event.scope is not None else ""
        many = " (executemany)" if event.executemany else ""
        params = "" if self.params == "drop" else f" params={extra['params']!r}"
        if event.error is not None:
            error = _error_text(event.error, self.params == "keep")
            head = f"failed after {event.duration_ms:.1f} ms: {error}"
        elif slow:
            head = f"slow query {event.duration_ms:.1f} ms (>= {self.slow_s * 1000:g} ms)"  # type: ignore[operator]
        else:
            head = f"{event.duration_ms:.1f} ms"
        rows = f" rows={event.rowcount}" if event.rowcount is not None else ""
        return f"{head}{rows}{many}{scope}{where}: {sql}{params}"

    # EXPLAIN, off the application's thread

    def _schedule_explain(self, event: QueryEvent) -> None:
        now = time.monotonic()
        with self._lock:
            explained = self._explained_at
            last = explained.pop(event.fingerprint, None)
            if last is not None and now - last < self.explain_interval:
                explained[event.fingerprint] = last
                return
            if len(explained) >= self.max_plans:
                # Oldest first (re-inserted on each EXPLAIN): forget the older half.
                for key in list(explained)[: max(1, len(explained) // 2)]:
                    del explained[key]
            explained[event.fingerprint] = now
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._run_explains, name="dbopt-explain", daemon=True
                )
                self._worker.start()
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            with self._lock:
                self._explained_at.pop(event.fingerprint, None)

    def _run_explains(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                self._explain_one(item)
            finally:
                self._queue.task_done()

    def _explain_one(self, event: QueryEvent) -> None:
        explain = self.explain
        if explain is None:
            return
        try:
            plan = explain(event)
        except Exception as exc:  # noqa: BLE001 - explaining is best effort
            self.logger.log(
                self.slow_level,
                "could not EXPLAIN slow query %s: %s",
                event.fingerprint,
                exc,
                extra={"fingerprint": event.fingerprint},
            )
            return
        if plan is None:
            why_not = getattr(explain, "why_not", None)
            reason = why_not(event.sql, event.parameters) if callable(why_not) else None
            if reason:
                self.logger.log(
                    logging.DEBUG,
                    "slow query %s not explained: %s",
                    event.fingerprint,
                    reason,
                    extra={"fingerprint": event.fingerprint, "explain_skipped": reason},
                )
            return
        if self.params != "keep":
            plan = scrub_plan(plan)
        self._keep_plan(event.fingerprint, plan)
        self.logger.log(
            self.slow_level,
            "plan of slow query %s (%.1f ms): %s",
            event.fingerprint,
            event.duration_ms,
            _plan_summary(plan),
            extra={**self._extra(event), "plan": plan},
        )

    def _keep_plan(self, fingerprint: str, plan: Any) -> None:
        try:
            size = len(json.dumps(plan, default=str))
        except (TypeError, ValueError, RecursionError):
            size = self.max_plan_bytes + 1
        with self._lock:
            plans, sizes = self.plans, self._plan_bytes
            if fingerprint in plans:
                del plans[fingerprint]
                self.plans_nbytes -= sizes.pop(fingerprint, 0)
            if size > self.max_plan_bytes:
                return  # logged, not kept
            while plans and (
                len(plans) >= self.max_plans or self.plans_nbytes + size > self.max_plan_bytes
            ):
                oldest = next(iter(plans))
                del plans[oldest]
                self.plans_nbytes -= sizes.pop(oldest, 0)
            plans[fingerprint] = plan
            sizes[fingerprint] = size
            self.plans_nbytes += size

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until scheduled EXPLAINs are done; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        """Finish pending EXPLAINs and stop the background thread."""
        worker = self._worker
        if worker is not None and worker.is_alive():
            self._queue.put(_STOP)
            worker.join(timeout=10)
        self._worker = None


class _Message:
    """A record's message, formatted on first ``str()`` (most records are never formatted)."""

    __slots__ = ("_event", "_extra", "_logger", "_slow", "_text")

    def __init__(
        self, logger: QueryLogger, event: QueryEvent, slow: bool, extra: dict[str, Any]
    ) -> None:
        self._logger = logger
        self._event = event
        self._slow = slow
        self._extra = extra
        self._text: str | None = None

    def __str__(self) -> str:
        if self._text is None:
            self._text = self._logger._text(self._event, self._slow, self._extra)
        return self._text


#: CallSite → ``str(site)``, bounded.
_site_text: Callable[[Any], str] = functools.lru_cache(maxsize=4096)(str)


def _plan_summary(plan: Any) -> str:
    """``Seq Scan on users (cost=0..431 rows=10000)`` style one-liner of a JSON plan."""
    try:
        node = plan[0]["Plan"] if isinstance(plan, list) else plan["Plan"]
        parts: list[str] = []
        while node is not None and len(parts) < 4:
            label = node.get("Node Type", "?")
            if "Relation Name" in node:
                label += f" on {node['Relation Name']}"
            if "Index Name" in node:
                label += f" using {node['Index Name']}"
            parts.append(f"{label} (cost={node.get('Total Cost')} rows={node.get('Plan Rows')})")
            children = node.get("Plans") or []
            node = children[0] if children else None
        return " -> ".join(parts)
    except Exception:  # noqa: BLE001 - a summary is a courtesy
        return str(plan)[:500]


def _error_text(error: BaseException, keep: bool) -> str:
    """The error as logged: all of it with ``keep``, else its type and SQLSTATE only
    (a message can quote values: ``Key (email)=(...) already exists``)."""
    if keep:
        try:
            return repr(error)
        except Exception:  # noqa: BLE001 - a hostile __repr__
            return type(error).__name__
    code = getattr(error, "sqlstate", None) or getattr(
        getattr(error, "orig", None), "sqlstate", None
    )
    name = type(error).__name__
    return f"{name} (SQLSTATE {code})" if isinstance(code, str) else name


#: Plan fields that hold expressions, whose constants are values.
_PLAN_EXPRESSION = re.compile(r"(?:Cond|Filter|Key|Output|Call|Parameters|Query Text|Seed)\Z")
_PLAN_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])")


def scrub_plan(plan: Any, _depth: int = 0) -> Any:
    """A copy of an ``EXPLAIN (FORMAT JSON)`` plan with the constants of its
    expressions (``Filter``, ``Index Cond``, ``Output``, ...) replaced by ``?``."""
    if _depth > 200:
        return None
    if isinstance(plan, list):
        return [scrub_plan(item, _depth + 1) for item in plan]
    if not isinstance(plan, dict):
        return plan
    out: dict[str, Any] = {}
    for key, value in plan.items():
        if isinstance(key, str) and _PLAN_EXPRESSION.search(key):
            out[key] = _scrub_expression(value)
        else:
            out[key] = scrub_plan(value, _depth + 1)
    return out


def _scrub_expression(value: Any) -> Any:
    if isinstance(value, str):
        return _PLAN_LITERAL.sub("?", value)
    if isinstance(value, list):
        return [_scrub_expression(v) for v in value]
    return value
