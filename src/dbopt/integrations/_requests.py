"""Per-request bookkeeping shared by the web integrations (Flask, ASGI, Django).

A :class:`RequestSinks` is one sink attached to the application's targets.
It counts the statements and their time of each open request scope
(including scopes opened inside it) and feeds only those statements to its
N+1 detector, so two applications, or a request and a background job, never
mix their findings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dbopt.core.events import QueryEvent
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.core.scope import Scope
from dbopt.errors import ConfigurationError

__all__ = ["RequestSinks", "RequestStats", "instrument_all", "make_detector"]


@dataclass(slots=True)
class RequestStats:
    """What one request ran so far: statements (transaction control excluded) and seconds."""

    queries: int = 0
    seconds: float = 0.0

    @property
    def milliseconds(self) -> float:
        """Total statement time in milliseconds."""
        return self.seconds * 1000.0


def make_detector(
    detector: NPlusOneDetector | bool | None, logger: logging.Logger | Callable[[], logging.Logger]
) -> NPlusOneDetector | None:
    """The detector to use: the one given, none (``False``/``None``), or one logging findings.

    With ``True``, findings are logged at WARNING on ``logger`` (a logger, or
    a callable returning one when the finding is reported) with
    ``extra={"finding": finding.to_dict()}``.
    """
    if detector is None or detector is False:
        return None
    if isinstance(detector, NPlusOneDetector):
        return detector
    if detector is not True:
        raise ConfigurationError(
            f"detector must be an NPlusOneDetector, True or False: {detector!r}"
        )

    def log(finding: NPlusOneFinding) -> None:
        target = logger if isinstance(logger, logging.Logger) else logger()
        target.warning("%s", finding, extra={"finding": finding.to_dict()})

    return NPlusOneDetector(action=log)


class RequestSinks:
    """The sink one web application attaches: request stats, and its detector's input."""

    def __init__(self, detector: NPlusOneDetector | None) -> None:
        self.detector = detector
        self._open: dict[Scope, RequestStats] = {}
        self._lock = threading.Lock()

    def begin(self, scope: Scope) -> RequestStats:
        """Start counting for a request's scope."""
        stats = RequestStats()
        with self._lock:
            self._open[scope] = stats
        return stats

    def end(self, scope: Scope) -> RequestStats | None:
        """Stop counting for ``scope``; its final stats."""
        with self._lock:
            return self._open.pop(scope, None)

    def stats(self, scope: Scope) -> RequestStats | None:
        """The stats of an open request scope."""
        return self._open.get(scope)

    def __call__(self, event: QueryEvent) -> None:
        node = event.scope
        while node is not None:
            stats = self._open.get(node)
            if stats is not None:
                if event.kind != "transaction":
                    stats.queries += 1
                stats.seconds += event.duration
                if self.detector is not None:
                    self.detector(event)
                return
            node = node.parent

    def dbopt_refused(self, event: QueryEvent) -> None:
        """A lazy load the ORM refused (no statement ran): for the detector only."""
        node = event.scope
        while node is not None:
            if node in self._open:
                if self.detector is not None:
                    self.detector.dbopt_refused(event)
                return
            node = node.parent

    def scope_end(self, scope: Scope) -> None:
        """Report the detector's findings for ``scope`` (it only holds this app's)."""
        if self.detector is not None:
            self.detector.scope_end(scope)

    def __repr__(self) -> str:
        return f"<RequestSinks open={len(self._open)} detector={self.detector!r}>"


def instrument_all(targets: Any, sink: RequestSinks) -> list[Any]:
    """Attach ``sink`` to each target; the handles, to detach later."""
    from dbopt.instrument import instrument

    return [instrument(target, sink) for target in targets]
