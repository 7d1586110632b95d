"""``capture_queries()``: the events run inside a block, for tests and scripts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from dbopt.core.events import QueryEvent
from dbopt.core.pipeline import _collectors

__all__ = ["CapturedQueries", "capture_queries"]


class CapturedQueries(list[QueryEvent]):
    """A list of events with helpers for assertions."""

    @property
    def statements(self) -> list[str]:
        """The SQL text of each event, in order."""
        return [e.sql for e in self]

    def by_fingerprint(self) -> dict[str, list[QueryEvent]]:
        """Events grouped by fingerprint, in first-seen order."""
        groups: dict[str, list[QueryEvent]] = {}
        for event in self:
            groups.setdefault(event.fingerprint, []).append(event)
        return groups

    def count(self, value: Any = None) -> int:
        """``count()`` is the number of events; ``count(x)`` counts ``x`` like a list."""
        if value is None:
            return len(self)
        return super().count(value)


@contextmanager
def capture_queries(*targets: Any) -> Iterator[CapturedQueries]:
    """Collect the events of every instrumented target run in this context.

    With targets (an engine, a psycopg connection, ...), they are
    instrumented for the duration of the block and detached after. Events
    from other threads or tasks that did not inherit this context are not
    collected.
    """
    from dbopt.instrument import instrument

    captured = CapturedQueries()
    with ExitStack() as stack:
        for target in targets:
            stack.enter_context(instrument(target))
        token = _collectors.set((*_collectors.get(), captured.append))
        try:
            yield captured
        finally:
            _collectors.reset(token)
