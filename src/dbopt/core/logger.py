"""``QueryLogger``: every statement through stdlib logging, slow ones with their plan."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from dbopt.core.events import QueryEvent
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
    * ``params``: ``"redact"`` (default: values replaced by their type),
      ``"keep"`` or ``"drop"``.
    * Every record carries ``extra`` fields ``fingerprint``, ``duration_ms``,
      ``rows``, ``callsite``, ``scope``, ``sql`` and ``params``, for JSON formatters.
    * ``explain``: a callable (such as ``dbopt.postgres.Explainer(engine)``)
      run for slow SELECTs on a background thread, at most once per
      fingerprint per ``explain_interval`` seconds; its plan is logged and
      kept in :attr:`plans`. It never runs on the application's connection.
    """

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
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ConfigurationError(f"sample must be within 0..1, got {sample!r}")
        if slow_ms is not None and slow_ms < 0:
            raise ConfigurationError("slow_ms must be >= 0 or None")
        if explain is not None and not callable(explain):
            raise ConfigurationError("explain must be a callable taking a QueryEvent")
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
        #: Latest plan per fingerprint from ``explain``.
        self.plans: dict[str, Any] = {}
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
        if slow and self.explain is not None and event.error is None and event.kind == "select":
            self._schedule_explain(event)

    def _extra(self, event: QueryEvent) -> dict[str, Any]:
        site = event.callsite
        scope = event.scope
        params = event.parameters
        return {
            "fingerprint": event.fingerprint,
            "duration_ms": round(event.duration * 1000.0, 3),
            "rows": event.rowcount,
            "callsite": _site_text(site) if site is not None else None,
            "scope": scope.name if scope is not None else None,
            "sql": event.sql[: self.max_sql_length],
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
            head = f"failed after {event.duration_ms:.1f} ms: {event.error!r}"
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
            last = self._explained_at.get(event.fingerprint)
            if last is not None and now - last < self.explain_interval:
                return
            self._explained_at[event.fingerprint] = now
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
        self.plans[event.fingerprint] = plan
        self.logger.log(
            self.slow_level,
            "plan of slow query %s (%.1f ms): %s",
            event.fingerprint,
            event.duration_ms,
            _plan_summary(plan),
            extra={**self._extra(event), "plan": plan},
        )

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
_site_texts: dict[Any, str] = {}


def _site_text(site: Any) -> str:
    text = _site_texts.get(site)
    if text is None:
        text = str(site)
        if len(_site_texts) >= 4096:
            _site_texts.clear()
        _site_texts[site] = text
    return text


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
