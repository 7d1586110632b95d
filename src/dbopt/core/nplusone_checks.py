"""Opt-in checks of the N+1 detector: write loops, unbounded queries, products, potential N+1s.

``NPlusOneDetector(checks=("write_loops", "unbounded_queries"))`` turns them
on; a detector without ``checks`` never builds this object, so they cost
nothing unless asked for. Both read only the event stream:

* a **write loop** is one INSERT, UPDATE or DELETE fingerprint run
  ``threshold`` times or more from one call-site key, each as a statement of
  its own (an ``executemany`` or a multi-row ``VALUES`` is one statement and
  is not counted): a loop that writes row by row;
* an **unbounded query** is a SELECT with no ``LIMIT``/``FETCH FIRST`` whose
  driver reported more than ``max_rows`` rows (drivers that report no row
  count for a SELECT, such as sqlite3, are not checked);
* a **potential N+1** (``"potential"``) is a lazy load on an object that
  came from a result of many rows (no ``LIMIT 1``, no filter on a unique
  key; the SQLAlchemy adapter marks such objects through the ORM ``load``
  event once such a check exists), reported as an N+1 even when it ran
  once, as with a one-row test fixture;
* a **Cartesian product** is an ORM statement that joins two or more sibling
  collections (the SQLAlchemy adapter names them on the event's
  ``OrmContext``, ``strategy="joined"``, once such a check exists).

Findings come out with the detector's own when the scope ends, through its
allowlist (``kind:write_loop``, ``kind:unbounded_query``) and action.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dbopt.core.fingerprint import mask_literals
from dbopt.core.nplusone_findings import FindingKind, NPlusOneFinding, make_finding
from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt.core.events import CallSite, QueryEvent
    from dbopt.core.scope import Scope

__all__ = [
    "CHECKS",
    "JOINED_COLLECTIONS",
    "MULTI_ROW",
    "POTENTIAL_NOTE",
    "REFUSED_NOTE",
    "DetectorChecks",
    "cartesian_fix",
    "refused_lazy_load",
    "unbounded_query_fix",
    "write_loop_fix",
]

#: The names ``NPlusOneDetector(checks=...)`` accepts.
CHECKS = ("write_loops", "unbounded_queries", "cartesian_products", "potential")


class _Wanted:
    """Whether any detector asked for ``cartesian_products`` (the SQLAlchemy adapter reads it).

    Set by the first such detector and left on: until then the adapter does
    not look at loader options at all.
    """

    __slots__ = ("wanted",)

    def __init__(self) -> None:
        self.wanted = False


#: Read by the SQLAlchemy adapter before it inspects a statement's joined collections.
JOINED_COLLECTIONS = _Wanted()


class _Users:
    """Whether a live detector asked for ``potential`` (the SQLAlchemy adapter reads ``wanted``).

    Counted per detector and dropped when it is garbage-collected, so the
    tracking stops once no such detector is left.
    """

    __slots__ = ("count", "lock", "wanted")

    def __init__(self) -> None:
        self.wanted = False
        self.count = 0
        self.lock = threading.Lock()

    def add(self, owner: object) -> None:
        with self.lock:
            self.count += 1
            self.wanted = True
        weakref.finalize(owner, self._drop)

    def _drop(self) -> None:
        with self.lock:
            self.count -= 1
            self.wanted = self.count > 0


#: Read by the SQLAlchemy adapter before it tracks which objects came from multi-row results.
MULTI_ROW = _Users()

#: Leads the suggestion of an N+1 found by ``"potential"`` alone.
POTENTIAL_NOTE = (
    "potential N+1: the objects came from a result that can hold many rows (no LIMIT 1, "
    "no filter on a unique key), so with real data this load runs once per row"
)

_WRITES = frozenset({"insert", "update", "delete"})
_BOUNDED = re.compile(r"\blimit\b|\bfetch\s+(?:first|next)\b|\btop\s*\(?\s*\d", re.IGNORECASE)
#: Groups (write loops) and statements (unbounded) kept per scope.
_MAX_PER_SCOPE = 1000
_KEEP_CHARS = 4096


class _Writes:
    __slots__ = ("count", "event")

    def __init__(self, event: QueryEvent) -> None:
        self.event = event
        self.count = 0


class _State:
    __slots__ = ("cartesian", "potential", "unbounded", "writes")

    def __init__(self) -> None:
        #: (fingerprint, call-site key) of lazy loads on objects of multi-row results
        self.potential: set[tuple[str, tuple[CallSite, ...]]] = set()
        #: fingerprint -> one statement joining 2+ sibling collections
        self.cartesian: dict[str, QueryEvent] = {}
        self.writes: dict[tuple[str, tuple[CallSite, ...]], _Writes] = {}
        #: fingerprint -> (the largest row count seen, runs, one event)
        self.unbounded: dict[str, tuple[int, int, QueryEvent]] = {}


class DetectorChecks:
    """The per-scope state of the opt-in checks of one :class:`NPlusOneDetector`."""

    def __init__(
        self, checks: Iterable[str], *, threshold: int, key_depth: int, max_rows: int
    ) -> None:
        names = (checks,) if isinstance(checks, str) else tuple(checks)
        unknown = [name for name in names if name not in CHECKS]
        if unknown:
            raise ConfigurationError(
                f"unknown check(s) {unknown!r}: NPlusOneDetector(checks=...) takes {CHECKS}"
            )
        if not isinstance(max_rows, int) or max_rows < 1:
            raise ConfigurationError(f"max_rows must be an int >= 1, got {max_rows!r}")
        self.names = tuple(dict.fromkeys(names))
        self.write_loops = "write_loops" in names
        self.unbounded_queries = "unbounded_queries" in names
        self.cartesian_products = "cartesian_products" in names
        if self.cartesian_products:
            JOINED_COLLECTIONS.wanted = True
        self.potential = "potential" in names
        if self.potential:
            MULTI_ROW.add(self)
        self.threshold = threshold
        self.key_depth = key_depth
        self.max_rows = max_rows
        self._states: dict[Scope, _State] = {}

    def observe(self, event: QueryEvent, scope: Scope) -> None:
        """Note one statement of ``scope`` (never raises for odd events)."""
        kind = event.kind
        if (event.error is not None and not refused_lazy_load(event)) or event.executemany:
            return
        if kind == "select":
            orm = event.orm
            if (
                self.cartesian_products
                and orm is not None
                and orm.strategy == "joined"
                and orm.kind == "query"
            ):
                state = self._state(scope)
                if event.fingerprint not in state.cartesian:
                    state.cartesian[event.fingerprint] = _slim(event)
            if self.potential and orm is not None and orm.from_many:
                potential = self._state(scope).potential
                if len(potential) < _MAX_PER_SCOPE:
                    potential.add((event.fingerprint, event.stack[: self.key_depth]))
            if not self.unbounded_queries:
                return
            rows = event.rowcount
            if rows is None or rows <= self.max_rows or _BOUNDED.search(event.sql):
                return
            state = self._state(scope)
            seen = state.unbounded.get(event.fingerprint)
            if seen is None:
                if len(state.unbounded) < _MAX_PER_SCOPE:
                    state.unbounded[event.fingerprint] = (rows, 1, _slim(event))
            else:
                state.unbounded[event.fingerprint] = (max(rows, seen[0]), seen[1] + 1, seen[2])
        elif kind in _WRITES and self.write_loops:
            state = self._state(scope)
            key = (event.fingerprint, event.stack[: self.key_depth])
            group = state.writes.get(key)
            if group is None:
                if len(state.writes) >= _MAX_PER_SCOPE:
                    return
                group = state.writes[key] = _Writes(_slim(event))
            group.count += 1

    def _state(self, scope: Scope) -> _State:
        state = self._states.get(scope)
        if state is None:
            if len(self._states) >= _MAX_PER_SCOPE:
                # scopes that ended while the detector was detached
                for stale in [s for s in self._states if s.ended is not None]:
                    del self._states[stale]
            state = self._states.setdefault(scope, _State())
        return state

    def potential_keys(self, scope: Scope) -> set[tuple[str, tuple[CallSite, ...]]]:
        """(fingerprint, call-site key) of the lazy loads on objects of multi-row results."""
        state = self._states.get(scope)
        return state.potential if state is not None else set()

    def findings(self, scope: Scope, *, keep: bool, end: bool) -> list[NPlusOneFinding]:
        """What ``scope`` has found so far; ``end`` forgets the scope."""
        state = self._states.pop(scope, None) if end else self._states.get(scope)
        if state is None:
            return []
        found: list[NPlusOneFinding] = []
        for group in state.writes.values():
            if group.count >= self.threshold:
                event = group.event
                found.append(
                    _finding("write_loop", event, group.count, scope, write_loop_fix(event), keep)
                )
        for event in state.cartesian.values():
            joined = event.orm.relationship if event.orm is not None else None
            found.append(
                dataclasses.replace(
                    _finding(
                        "cartesian_product", event, 1, scope, cartesian_fix(joined or ""), keep
                    ),
                    relationship=joined,
                    loader_option=_selectin_options(joined or "") or None,
                )
            )
        for rows, runs, event in state.unbounded.values():
            found.append(
                _finding(
                    "unbounded_query", event, runs, scope, unbounded_query_fix(rows, self), keep
                )
            )
        return found

    def forget(self, scope: Scope) -> None:
        """Drop the state of ``scope``."""
        self._states.pop(scope, None)


#: Leads the suggestion of an N+1 whose lazy load an AsyncSession refused.
REFUSED_NOTE = (
    "the AsyncSession refused this lazy load (MissingGreenlet: a lazy load cannot run "
    "outside greenlet_spawn), so the request failed at the first object; in a loop each "
    "object would need its own query, so load the relationship with the query"
)


def refused_lazy_load(event: QueryEvent) -> bool:
    """Whether ``event`` is a lazy load an ``AsyncSession`` refused (``MissingGreenlet``).

    No statement ran (SQLAlchemy 2.1 refuses before ``before_cursor_execute``,
    2.0 just after it); the N+1 detector still counts it as the lazy load the
    code asked for.
    """
    error = event.error
    orm = event.orm
    return (
        error is not None
        and orm is not None
        and orm.kind == "lazy_load"
        and any(cls.__name__ == "MissingGreenlet" for cls in type(error).__mro__)
    )


def write_loop_fix(event: QueryEvent) -> str:
    """The fix for one INSERT/UPDATE/DELETE run row by row from one line."""
    table = _table(event)
    if event.kind == "insert":
        return (
            "collect the rows and insert them in one call: session.execute(insert("
            f"{table}), [row, ...]) or conn.execute(stmt, [params, ...]) (executemany), or "
            f"insert({table}).values([row, ...]); session.add_all(objects) before one flush "
            "does the same for ORM objects"
        )
    if event.kind == "update":
        return (
            "update the rows in one statement: one UPDATE ... WHERE key IN (...) when they get "
            f"the same values, else a bulk UPDATE by primary key, session.execute(update({table}), "
            "[{'id': ..., 'column': ...}, ...]) (one executemany)"
        )
    return (
        f"delete the rows in one statement: delete({table}).where(<key>.in_(keys)) "
        "(or one DELETE ... WHERE key = ANY(%s) on PostgreSQL)"
    )


def cartesian_fix(joined: str) -> str:
    """The fix for one statement that joins two or more sibling collections."""
    options = _selectin_options(joined)
    return (
        f"the statement joins the collections {joined} side by side: each parent row comes back "
        "once per combination of their children (a Cartesian product); load them with "
        f".options({options}) instead (one SELECT ... IN per collection), or keep at most one "
        "joinedload collection"
    )


def _selectin_options(joined: str) -> str:
    """``selectinload(...)`` for each joined collection, chained from the root when nested.

    A nested collection comes as ``"User.followers (via joinedload(Article.author))"``
    and gives ``joinedload(Article.author).selectinload(User.followers)``.
    """
    options = []
    for entry in joined.split(", "):
        name, _, via = entry.partition(" (via ")
        if not name:
            continue
        option = f"selectinload({name})"
        options.append(f"{via[:-1]}.{option}" if via.endswith(")") else option)
    return ", ".join(options)


def unbounded_query_fix(rows: int, checks: DetectorChecks) -> str:
    """The fix for a SELECT with no LIMIT that returned ``rows`` rows."""
    return (
        f"it returned {rows} rows (more than max_rows={checks.max_rows}) with no LIMIT: "
        "page it with a unique sort key, e.g. dbopt.eager.paginate(stmt, order_by=(...), "
        "after=cursor, limit=n) (keyset pagination, stable under inserts), or aggregate "
        "in SQL if the rows are only counted or summed"
    )


_TABLE = re.compile(r"\b(?:into|update|from)\s+([\w.\"`\[\]]+)", re.IGNORECASE)


def _table(event: QueryEvent) -> str:
    match = _TABLE.search(event.sql)
    return match.group(1).strip('"`[]') if match else "<table>"


def _slim(event: QueryEvent) -> QueryEvent:
    if len(event.sql) <= _KEEP_CHARS:
        return event
    return dataclasses.replace(event, sql=mask_literals(event.sql[:_KEEP_CHARS]), parameters=None)


def _finding(
    kind: FindingKind, event: QueryEvent, count: int, scope: Scope, suggestion: str, keep: bool
) -> NPlusOneFinding:
    return make_finding(kind, event, count, scope, suggestion, keep=keep)
