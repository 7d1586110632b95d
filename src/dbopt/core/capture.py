"""What ``capture_queries()`` returns: the events run inside a block, for tests and scripts.

:func:`dbopt.capture_queries` itself lives in :mod:`dbopt.instrument`, because it
instruments the targets it is given; it collects through
:func:`dbopt.core.pipeline.collect`.
"""

from __future__ import annotations

from typing import Any

from dbopt.core.events import QueryEvent

__all__ = ["CapturedQueries"]


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
