"""Blocks that fail on too many queries or on an N+1: what the pytest plugin is made of.

Both read the events of instrumented targets run inside the block (through
:func:`dbopt.capture_queries`), so they see statements from any engine or
connection given to :func:`dbopt.instrument`, in this thread or task and the
ones it starts with its context.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from typing import Any

from typing_extensions import Unpack

from dbopt.core.capture import CapturedQueries
from dbopt.core.events import CallSite, QueryEvent
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_allow import NPlusOneAllow
from dbopt.core.nplusone_findings import KIND_LABELS, NPlusOneError, NPlusOneFinding
from dbopt.core.scope import Scope, scope
from dbopt.errors import ConfigurationError, ReportedError
from dbopt.handle import ExcInfo
from dbopt.instrument import capture_queries

__all__ = ["NPlusOneAssertionError", "NPlusOneGuard", "QueryBudget", "QueryBudgetError"]

_SQL = 160
_SITES = 3


def _where(site: CallSite | None) -> str:
    if site is None:
        return "<unknown>"
    path = site.file
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        relative = path
    if not relative.startswith(".."):
        path = relative
    return f"{path}:{site.line} in {site.function}"


def _short(sql: str) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= _SQL else flat[:_SQL] + "..."


class QueryBudgetError(ReportedError, AssertionError):
    """More statements ran in a block than its budget; the message groups them by fingerprint."""

    def __init__(
        self,
        limit: int,
        queries: Sequence[QueryEvent],
        findings: Sequence[NPlusOneFinding] = (),
    ) -> None:
        self.limit = limit
        self.queries = tuple(queries)
        #: The N+1s and repeated queries among them, with their fixes (as the message says).
        self.findings = tuple(findings)
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.queries)
        lines = [
            f"dbopt: {count} queries ran, the budget is {self.limit} ({count - self.limit} over):"
        ]
        groups: dict[str, list[QueryEvent]] = {}
        for event in self.queries:
            groups.setdefault(event.fingerprint, []).append(event)
        for fingerprint, events in sorted(groups.items(), key=lambda item: -len(item[1])):
            first = events[0]
            lines.append(f"  {len(events)}x  {_short(first.sql)}  [fingerprint {fingerprint}]")
            if first.orm is not None and first.orm.kind != "query":
                lines.append(f"        {first.orm.describe()}")
            sites = Counter(_where(e.callsite) for e in events)
            for site, times in sites.most_common(_SITES):
                lines.append(f"        {times}x from {site}")
            if len(sites) > _SITES:
                lines.append(f"        ... and {len(sites) - _SITES} more call sites")
        if self.findings:
            lines.append("  where the budget went:")
            for finding in self.findings:
                lines.extend(f"    {line}" for line in str(finding).splitlines())
        return "\n".join(lines)


class NPlusOneAssertionError(NPlusOneError, AssertionError):
    """N+1 findings in a block checked by :class:`NPlusOneGuard` (or the pytest marker)."""

    def __init__(self, findings: Sequence[NPlusOneFinding]) -> None:
        super().__init__(findings)
        lines = [f"dbopt: {len(self.findings)} N+1 finding(s):"]
        for finding in self.findings:
            what = "repeated" if finding.kind == "repeated_query" else KIND_LABELS[finding.kind]
            rel = f" ({finding.relationship})" if finding.relationship else ""
            sites = ", ".join(_where(site) for site in finding.callsites) or "<unknown>"
            head = f"  {what}: fingerprint {finding.fingerprint} ran {finding.count}x{rel}"
            lines.append(f"{head} from {sites}")
            lines.append(f"      {_short(finding.sql)}")
            lines.append(f"      fix: {finding.suggestion}")
            if finding.scope_path:
                lines.append(f"      in scope {finding.scope_path}")
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return str(self.args[0])


class QueryBudget:
    """``with QueryBudget(3): ...`` raises :class:`QueryBudgetError` if more than 3 statements ran.

    Transaction control (``BEGIN``, ``COMMIT``, ``SAVEPOINT``) is not counted.
    ``queries`` holds the counted events after the block.
    """

    def __init__(self, limit: int) -> None:
        if not isinstance(limit, int) or limit < 0:
            raise ConfigurationError(f"a query budget must be an int >= 0, got {limit!r}")
        self.limit = limit
        self.queries: list[QueryEvent] = []
        self._stack = ExitStack()
        self._captured: CapturedQueries | None = None

    def __enter__(self) -> QueryBudget:
        self._captured = self._stack.enter_context(capture_queries())
        return self

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        self._stack.close()
        self.queries = [e for e in self._captured or () if e.kind != "transaction"]
        if exc_info[0] is None and len(self.queries) > self.limit:
            raise QueryBudgetError(self.limit, self.queries, _explain(self.queries))


def _explain(queries: Sequence[QueryEvent]) -> list[NPlusOneFinding]:
    """The N+1s and repeated queries of an over-budget block (one unit of work), never raising."""
    found: list[NPlusOneFinding] = []
    try:
        detector = NPlusOneDetector(action=found.append)
        # each scope on its own (requests of a test client), the unscoped ones together
        stand_ins: dict[Scope | None, Scope] = {}
        for event in queries:
            original = event.scope
            stand_in = stand_ins.get(original)
            if stand_in is None:
                name = original.name if original is not None else "query budget"
                stand_in = stand_ins[original] = Scope(name, {})
            detector(dataclasses.replace(event, scope=stand_in))
        for stand_in in stand_ins.values():
            detector.scope_end(stand_in)
    except Exception:  # noqa: BLE001 - the budget's own failure must not be hidden
        return []
    return found


class NPlusOneGuard:
    """``with NPlusOneGuard(): ...`` raises :class:`NPlusOneAssertionError` on any N+1 in the block.

    The block runs in its own :func:`dbopt.scope` (``name``); scopes opened
    inside it (requests of a test client, jobs) are checked each on its own,
    as the detector does. ``threshold`` and ``allow`` are the detector's;
    ``repeated=True`` also fails on repeated identical queries, ``checks``
    on the detector's opt-in checks (``("write_loops", "unbounded_queries")``). Nothing is
    raised when the block itself raises. ``findings`` holds what was found.
    """

    def __init__(
        self,
        name: str = "dbopt guard",
        *,
        threshold: int = 2,
        allow: Iterable[str | NPlusOneAllow] = (),
        repeated: bool = False,
        checks: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.findings: list[NPlusOneFinding] = []
        # Built now so that a bad threshold or allowlist fails at once.
        self._options: dict[str, Any] = {
            "threshold": threshold,
            "allow": tuple(allow) if not isinstance(allow, str) else (allow,),
            "repeat_threshold": 2 if repeated else None,
            "checks": (checks,) if isinstance(checks, str) else tuple(checks),
        }
        NPlusOneDetector(action="log", **self._options)
        self._stack = ExitStack()
        self._captured: CapturedQueries | None = None

    def __enter__(self) -> NPlusOneGuard:
        self._stack.enter_context(scope(self.name))
        self._captured = self._stack.enter_context(capture_queries())
        return self

    def __exit__(self, *exc_info: Unpack[ExcInfo]) -> None:
        __tracebackhide__ = True  # pytest: show the test's line, not this one
        # Ending the scope may raise for sinks configured to; that error wins.
        self._stack.__exit__(*exc_info)
        if exc_info[0] is not None:
            return
        self.findings = self.check(self._captured or ())
        if self.findings:
            raise NPlusOneAssertionError(self.findings)

    def check(self, events: Iterable[QueryEvent]) -> list[NPlusOneFinding]:
        """Run a fresh detector over recorded ``events``, scope by scope."""
        found: list[NPlusOneFinding] = []
        detector = NPlusOneDetector(action=found.append, **self._options)
        # The recorded scopes have ended (the detector ignores those): replay each
        # into an open stand-in with the same name, tags and parents.
        stand_ins: dict[Scope, Scope] = {}
        for event in events:
            original = event.scope
            if original is None:
                continue
            stand_in = stand_ins.get(original)
            if stand_in is None:
                stand_in = stand_ins[original] = Scope(
                    original.name, dict(original.tags), parent=original.parent
                )
            detector(dataclasses.replace(event, scope=stand_in))
        for stand_in in stand_ins.values():
            detector.scope_end(stand_in)
        return found
