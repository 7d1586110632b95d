"""N+1 detection: one SELECT per row of a loop, found from the event stream alone.

Within one :func:`dbopt.scope`, a group is the statements sharing a
fingerprint and a call-site key (the innermost ``key_depth`` application
frames). A group whose statements ran with at least ``threshold`` distinct
values (parameters, or literals inlined in the text) is an N+1. The same
statement with the same values run ``repeat_threshold`` times with no write
in between is a repeated query (a missing cache). No SQL is parsed: the
fingerprint is already on the event, and values are hashed, not stored.
Findings are built, allowlisted and reported when the scope ends.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeAlias

from dbopt.core.events import CallSite, OrmContext, QueryEvent
from dbopt.core.fingerprint import fingerprint_info, mask_literals
from dbopt.core.nplusone_allow import NPlusOneAllow, parse_allow
from dbopt.core.nplusone_batches import (
    MAX_PAGES,
    MIN_CHUNK,
    Layout,
    bound,
    chunked,
    layout_of,
    page_of,
    paginates,
    walks,
)
from dbopt.core.nplusone_checks import (
    POTENTIAL_NOTE,
    REFUSED_NOTE,
    DetectorChecks,
    refused_lazy_load,
)
from dbopt.core.nplusone_findings import (
    FindingKind,
    NPlusOneFinding,
    deliver,
    make_finding,
    n_plus_one_fix,
    repeated_query_fix,
)
from dbopt.core.nplusone_fixes import is_aggregate, shape_text
from dbopt.core.params import check_policy
from dbopt.core.scope import Scope, current_scope
from dbopt.errors import ConfigurationError

__all__ = ["NPlusOneAction", "NPlusOneDetector"]

#: What the detector does with each finding when a scope ends.
NPlusOneAction: TypeAlias = "Literal['warn', 'log', 'raise'] | Callable[[NPlusOneFinding], None]"

#: Open scope states past which those of ended scopes are dropped.
_PURGE_AT = 256
#: Distinct call sites kept per repeated statement.
_MAX_SITES = 8
#: Characters of a statement's text a group keeps (for its finding).
_KEEP_CHARS = 4096
#: Functions whose result changes between identical calls, or that act: the
#: same statement run twice is not a missed cache.
_VOLATILE = re.compile(
    r"\b(?:nextval|setval|currval|lastval|random|randomblob|rand|gen_random_uuid"
    r"|uuid_generate_v\d\w*|uuid|clock_timestamp|timeofday|statement_timestamp|pg_sleep"
    r"|pg_advisory\w*|pg_try_advisory\w*|pg_notify|set_config|txid_current\w*"
    r"|pg_current_xact_id\w*|last_insert_rowid|changes|total_changes|last_insert_id"
    r"|get_lock|release_lock|is_free_lock|sleep|found_rows|row_count) \("
)


class _Group:
    """Statements of one fingerprint from one call-site key, in one scope."""

    __slots__ = ("chunk", "count", "event", "layout", "pages", "parent_sql", "values")

    def __init__(
        self, event: QueryEvent, parent_sql: str | None = None, first: QueryEvent | None = None
    ) -> None:
        self.event = event
        first = first or event  # the statement as run (``event`` may be cut short)
        #: A paging statement: the values of each run by role (nplusone_batches.page_of).
        self.pages: list[Any] | None = None
        self.layout: Layout | None = None
        if paginates(first.sql):
            self.pages, self.layout = [], layout_of(first.sql)
        #: An IN statement: the fewest values any run bound (0: no IN list).
        self.chunk = chunked(first.sql, first.parameters)
        #: For a lazy load: the last ORM query of the owner entity before it (fix choice).
        self.parent_sql = parent_sql
        self.count = 0
        #: Distinct value hashes, until there are ``threshold`` of them (then None).
        self.values: set[int] | None = set()


class _Run:
    """One statement with one set of values, seen at least twice since the last write."""

    __slots__ = ("count", "event", "groups")

    def __init__(self, groups: list[_Group], event: QueryEvent, count: int = 2) -> None:
        #: The distinct groups (call-site keys) it came from, first first, at most _MAX_SITES.
        self.groups = groups
        self.event = event
        self.count = count

    def merged(self, other: _Run) -> _Run:
        """A run counting both (``self`` first)."""
        groups = list(self.groups)
        for group in other.groups:
            if group not in groups and len(groups) < _MAX_SITES:
                groups.append(group)
        return _Run(groups, self.event, self.count + other.count)


class _ScopeState:
    __slots__ = ("done", "groups", "parents", "runs")

    def __init__(self) -> None:
        #: entity name → SQL of its last ORM query in the scope (the parents of lazy loads).
        self.parents: dict[str, str] = {}
        self.groups: dict[tuple[str, tuple[CallSite, ...]], _Group] = {}
        #: value hash → first group (seen once) or run (seen twice or more).
        self.runs: dict[int, _Group | _Run] = {}
        #: Runs closed by a write that had reached the repeat threshold.
        self.done: dict[int, _Run] = {}


def _reloads(event: QueryEvent) -> bool:
    """A lazy load that rows sharing a value each run: an N+1 by its count, not a repeat.

    Django has no identity map: ten posts of one author run ``post.author``
    ten times. SQLAlchemy answers a plain many-to-one from its identity map,
    but not a relationship whose join has more than the key (a polymorphic
    ``resource_type = 'Post'``, a custom ``primaryjoin``): each object runs it
    again with the same values. Either way the group counts one query per
    object, even with one distinct value, and the loader option
    (``select_related``, ``selectinload``) fixes it, not a cache. Not the
    lazy loads that ``Session.merge()`` runs: those count ``merge()`` calls.
    """
    orm = event.orm
    return orm is not None and orm.kind == "lazy_load" and orm.merge is None


def _through_lazy_parent(orm: OrmContext | None, state: _ScopeState) -> OrmContext | None:
    """A Django lazy load whose owners came from another lazy load: the path from the root.

    ``post.author.profile`` in a loop: the ``User`` objects were themselves
    lazy-loaded through ``Post.author`` in this scope, so the fix goes on the
    ``Post`` queryset as ``select_related("author__profile")``.
    """
    if (
        orm is None
        or orm.kind != "lazy_load"
        or not (orm.strategy or "").startswith("django:")
        or not orm.relationship
    ):
        return orm
    path = orm.relationship.partition(".")[2]
    strategy = orm.strategy or ""
    for _ in range(4):  # a few hops at most
        via = next(
            (
                g.event.orm
                for g in state.groups.values()
                if g.event.orm is not None
                and g.event.orm.kind == "lazy_load"
                and g.event.orm.strategy == "django:select_related"
                and g.event.orm.target == orm.entity
                and g.event.orm.relationship
            ),
            None,
        )
        if via is None or via.relationship is None or via.relationship == orm.relationship:
            break  # none, or a self-referential relation (category.parent.parent): no hop
        hop = via.relationship.partition(".")[2]
        path = f"{hop}__{path}"
        if strategy.startswith("django:count:"):
            strategy = f"django:count:{hop}__{strategy.rpartition(':')[2]}"
        orm = dataclasses.replace(
            orm, entity=via.entity, relationship=f"{via.entity}.{path}", strategy=strategy
        )
    return orm


#: :func:`is_aggregate` by statement text (ORM statements repeat their text).
_aggregate: Callable[[str], bool] = functools.lru_cache(maxsize=4096)(is_aggregate)


def _value_key(sql: str, parameters: Any) -> int:
    """A hash of the statement text and its values; never raises."""
    try:
        if parameters is None:
            return hash(sql)
        if type(parameters) is dict:
            return hash((sql, tuple(parameters.items())))
        if type(parameters) is list:
            return hash((sql, tuple(parameters)))
        return hash((sql, parameters))
    except TypeError:
        return hash((sql, repr(parameters)))


class NPlusOneDetector:
    """A sink that finds N+1 queries and repeated queries in each :func:`dbopt.scope`.

    Attach it like any sink: ``dbopt.instrument(engine, NPlusOneDetector())``.

    * ``threshold`` (default 2): distinct values from one call-site key that
      make an N+1; see docs/nplusone.md for why 2.
    * ``action``: ``"warn"`` (an :class:`NPlusOneWarning` at the call site),
      ``"log"`` (WARNING on ``logger`` with ``extra={"finding": dict}``),
      ``"raise"`` (:class:`NPlusOneError` with every finding when the scope
      ends, never inside a statement), or a callable given each finding.
    * ``allow``: :class:`NPlusOneAllow` rules or ``"<field>:<pattern>"``
      strings; :meth:`stale_allowlist` lists those that never matched.
    * ``repeat_threshold`` (default 2, None to turn off): identical runs of
      one statement, with no write in the scope in between, that make a
      repeated query.
    * ``key_depth`` (default 3): application frames in the call-site key.
    * ``checks``: opt-in checks beyond N+1s, ``"write_loops"`` (INSERT/UPDATE/
      DELETE row by row from one line) and ``"unbounded_queries"`` (a SELECT
      with no LIMIT returning more than ``max_rows`` rows, default 1000) and
      ``"cartesian_products"`` (two or more sibling joinedload collections) and
      ``"potential"`` (a lazy load on an object of a multi-row result, even
      once: tests with one-row fixtures); see
      :mod:`dbopt.core.nplusone_checks`. None by default (and then no cost).

    * ``params``: ``"redact"`` (default) puts the text with its literals
      masked (:func:`~dbopt.core.fingerprint.mask_literals`) in findings,
      their messages and dicts; ``"keep"`` the text as the application ran
      it. Values of parameters are never kept (only their hashes).

    Only SELECTs in a scope are checked: executemany, writes, failed
    statements, eager loads (selectinload batches) and statements outside
    any scope are not. Memory is bounded: at most ``max_scopes`` open scopes
    are tracked, and per scope ``max_groups`` groups (each holding one
    statement of at most 4 KiB of text) and ``max_values`` tracked value
    hashes; past them, new ones are not tracked.
    """

    def __init__(
        self,
        threshold: int = 2,
        *,
        action: NPlusOneAction = "warn",
        allow: Iterable[str | NPlusOneAllow] = (),
        repeat_threshold: int | None = 2,
        key_depth: int = 3,
        logger: str | logging.Logger = "dbopt.nplusone",
        max_groups: int = 1000,
        max_values: int = 10_000,
        history: int = 1000,
        params: str = "redact",
        max_scopes: int = 10_000,
        checks: Iterable[str] = (),
        max_rows: int = 1000,
    ) -> None:
        if not isinstance(threshold, int) or threshold < 2:
            raise ConfigurationError(f"threshold must be an int >= 2, got {threshold!r}")
        if repeat_threshold is not None and (
            not isinstance(repeat_threshold, int) or repeat_threshold < 2
        ):
            raise ConfigurationError(
                f"repeat_threshold must be an int >= 2 or None, got {repeat_threshold!r}"
            )
        if action not in ("warn", "log", "raise") and not callable(action):
            raise ConfigurationError(
                f"action must be 'warn', 'log', 'raise' or a callable, got {action!r}"
            )
        if key_depth < 1 or max_groups < 1 or max_values < 1 or max_scopes < 1:
            raise ConfigurationError(
                "key_depth, max_groups, max_values and max_scopes must be >= 1"
            )
        self.params = check_policy(params)
        self.max_scopes = max_scopes
        self.threshold = threshold
        self.repeat_threshold = repeat_threshold
        self.action = action
        entries = (allow,) if isinstance(allow, (str, NPlusOneAllow)) else tuple(allow)
        self.allow: tuple[NPlusOneAllow, ...] = tuple(parse_allow(entry) for entry in entries)
        self.key_depth = key_depth
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.max_groups = max_groups
        self.max_values = max_values
        #: Statements seen outside any scope (not checked).
        self.unscoped = 0
        #: Findings reported so far by kind, never trimmed (metrics export reads it).
        self.reported: dict[str, int] = {}
        self._allow_hits = [0] * len(self.allow)
        self._states: dict[Scope, _ScopeState] = {}
        self._lock = threading.Lock()
        self._history: deque[NPlusOneFinding] = deque(maxlen=history)
        self._volatile: dict[str, bool] = {}
        self._purge_at = _PURGE_AT
        extra = (checks,) if isinstance(checks, str) else tuple(checks)
        self.checks: DetectorChecks | None = (
            DetectorChecks(extra, threshold=threshold, key_depth=key_depth, max_rows=max_rows)
            if extra
            else None
        )

    # Per statement

    def __call__(self, event: QueryEvent) -> None:
        scope = event.scope
        if scope is None:
            self._note_unscoped()
            return
        if self.checks is not None and scope.ended is None:
            self.checks.observe(event, scope)
        if event.kind != "select":
            if event.kind != "transaction":
                state = self._states.get(scope)
                if state is not None and state.runs:
                    self._close_runs(state)
            return
        if event.executemany or (event.error is not None and not refused_lazy_load(event)):
            return
        orm = event.orm
        if orm is not None and orm.kind == "eager_load":
            return
        state = self._states.get(scope) or self._open(scope)
        if state is None:
            return
        if orm is not None and orm.kind == "query" and orm.entity and not _aggregate(event.sql):
            # a count (a paginator's) loads no parents; a long text is kept bounded
            state.parents[orm.entity] = shape_text(event.sql, _KEEP_CHARS)
        key = (event.fingerprint, event.stack[: self.key_depth])
        group = state.groups.get(key)
        if group is None:
            if len(state.groups) >= self.max_groups:
                return
            parent = state.parents.get(orm.entity) if orm is not None and orm.entity else None
            group = state.groups[key] = _Group(self._slim(event), parent, event)
        group.count += 1
        if group.pages is not None and len(group.pages) < MAX_PAGES:
            group.pages.append(page_of(event.sql, event.parameters, group.layout))
        if group.chunk:  # one statement shape: its IN list is there every time
            group.chunk = min(group.chunk, bound(event.parameters))
        parameters = event.parameters
        if type(parameters) is tuple:  # the common cases, without a call
            try:
                value = hash((event.sql, parameters))
            except TypeError:
                value = _value_key(event.sql, parameters)
        else:
            value = _value_key(event.sql, parameters)
        values = group.values
        if values is not None:
            # the loads of one merge() call are its own cost: count calls, not loads
            values.add(value if orm is None or orm.merge is None else -orm.merge)
            if len(values) >= self.threshold:
                group.values = None
        if self.repeat_threshold is None:
            return
        runs = state.runs
        seen = runs.get(value)
        if seen is None:
            if len(runs) < self.max_values:
                runs[value] = group
        elif isinstance(seen, _Run):
            seen.count += 1  # _Run.add, inline
            groups = seen.groups
            if group is not groups[-1] and group not in groups and len(groups) < _MAX_SITES:
                groups.append(group)
        else:
            runs[value] = _Run([seen] if seen is group else [seen, group], self._slim(event))

    def dbopt_refused(self, event: QueryEvent) -> None:
        """A lazy load an ``AsyncSession`` refused before the driver got it (no statement ran).

        It counts as the lazy load the code asked for: with ``checks=["potential"]``
        on an object of a multi-row result it is reported (each object of a loop
        would need one), with the loader option to load it with the query.
        """
        if refused_lazy_load(event):
            self(event)

    def _slim(self, event: QueryEvent) -> QueryEvent:
        """``event``, or for a long text a copy with its text cut (held until the scope ends)."""
        if len(event.sql) <= _KEEP_CHARS:
            return event
        text = event.sql[:_KEEP_CHARS]
        if self.params != "keep":
            text = mask_literals(text)[:_KEEP_CHARS]
        return dataclasses.replace(event, sql=text, parameters=None)

    def _open(self, scope: Scope) -> _ScopeState | None:
        if scope.ended is not None:
            return None
        with self._lock:
            state = self._states.get(scope)
            if state is None:
                if len(self._states) >= self._purge_at:
                    # Scopes that ended while this detector was detached.
                    for stale in [s for s in self._states if s.ended is not None]:
                        del self._states[stale]
                    self._purge_at = max(_PURGE_AT, 2 * len(self._states))
                if len(self._states) >= self.max_scopes:
                    return None
                state = self._states[scope] = _ScopeState()
        return state

    def _close_runs(self, state: _ScopeState) -> None:
        """A write happened: identical reads after it are not repeats of those before."""
        limit = self.repeat_threshold or 0
        for value, seen in state.runs.items():
            if isinstance(seen, _Run) and seen.count >= limit:
                done = state.done.get(value)
                if done is not None:
                    state.done[value] = done.merged(seen)
                elif len(state.done) < self.max_values:
                    state.done[value] = seen
        state.runs = {}

    def _note_unscoped(self) -> None:
        self.unscoped += 1
        if self.unscoped == 1:
            self.logger.info(
                "dbopt N+1 detector: statements outside any dbopt.scope() are not checked; "
                "wrap each unit of work (request, job, test) in `with dbopt.scope(name):`"
            )

    # Per scope

    def scope_end(self, scope: Scope) -> None:
        """Report the findings of ``scope``; raises :class:`NPlusOneError` if so configured."""
        state = self._states.pop(scope, None)
        if state is None:
            if self.checks is not None:
                state = _ScopeState()
            else:
                return
        findings = self._evaluate(state, scope, record=True)
        if findings:
            self._history.extend(findings)
            for finding in findings:
                self.reported[finding.kind] = self.reported.get(finding.kind, 0) + 1
            self._report(findings)

    def pending(self, scope: Scope | None = None) -> list[NPlusOneFinding]:
        """The findings ``scope`` (default: the current one) would report if it ended now.

        Allowlist rules that match here are not counted as used.
        """
        target = scope if scope is not None else current_scope()
        state = self._states.get(target) if target is not None else None
        if state is None and target is not None and self.checks is not None:
            state = _ScopeState()
        if state is None or target is None:
            return []
        return self._evaluate(state, target, record=False)

    def _evaluate(self, state: _ScopeState, scope: Scope, *, record: bool) -> list[NPlusOneFinding]:
        candidates: list[NPlusOneFinding] = []
        flagged: set[int] = set()
        threshold = self.threshold
        potential = self.checks.potential_keys(scope) if self.checks is not None else ()
        for key, group in list(state.groups.items()):
            if group.chunk >= MIN_CHUNK or (group.pages is not None and walks(group.pages)):
                continue  # chunks of a key list, or pages of one result: batches
            if group.values is None or (group.count >= threshold and _reloads(group.event)):
                flagged.add(id(group))
                candidates.append(self._n_plus_one(group, scope, state))
            elif key in potential:
                flagged.add(id(group))
                candidates.append(self._n_plus_one(group, scope, state, potential=True))
        limit = self.repeat_threshold
        if limit is not None:
            runs = dict(state.done)
            for value, seen in list(state.runs.items()):
                if not isinstance(seen, _Run):
                    continue
                done = runs.get(value)
                runs[value] = seen if done is None else done.merged(seen)
            for run in runs.values():
                if run.count < limit:
                    continue
                if any(id(g) in flagged for g in run.groups) and (
                    sum(g.count for g in run.groups if id(g) not in flagged) < limit
                ):
                    continue  # the N+1 found in the same statements explains the repeats
                if not self._is_volatile(run.event):
                    candidates.append(self._repeated(run, scope))
        if self.checks is not None:
            candidates += self.checks.findings(scope, keep=self.params == "keep", end=record)
        return [f for f in candidates if not self._allowed(f, record)]

    def _allowed(self, finding: NPlusOneFinding, record: bool) -> bool:
        allowed = False
        for index, rule in enumerate(self.allow):
            if rule.matches(finding):
                allowed = True
                if record:
                    self._allow_hits[index] += 1
        return allowed

    def _is_volatile(self, event: QueryEvent) -> bool:
        decision = self._volatile.get(event.fingerprint)
        if decision is None:
            if len(self._volatile) >= 10_000:
                self._volatile.clear()
            normalized = fingerprint_info(event.sql).normalized
            decision = self._volatile[event.fingerprint] = bool(_VOLATILE.search(normalized))
        return decision

    def _n_plus_one(
        self, group: _Group, scope: Scope, state: _ScopeState, *, potential: bool = False
    ) -> NPlusOneFinding:
        event = group.event
        orm = _through_lazy_parent(event.orm, state)
        relationship, option, suggestion = n_plus_one_fix(orm, event.sql, group.parent_sql)
        if event.error is not None:  # only a refused lazy load keeps its error
            suggestion = f"{REFUSED_NOTE}: {suggestion}"
        elif potential:
            suggestion = f"{POTENTIAL_NOTE}; {suggestion}"
        return _finding(
            "n_plus_one",
            event,
            group.count,
            (group,),
            scope,
            suggestion,
            relationship,
            option,
            keep=self.params == "keep",
        )

    def _repeated(self, run: _Run, scope: Scope) -> NPlusOneFinding:
        return _finding(
            "repeated_query",
            run.event,
            run.count,
            run.groups,
            scope,
            repeated_query_fix(scope.name),
            keep=self.params == "keep",
        )

    def _report(self, findings: list[NPlusOneFinding]) -> None:
        deliver(findings, self.action, self.logger)

    # Results

    @property
    def findings(self) -> list[NPlusOneFinding]:
        """Findings reported so far (the latest ``history`` of them), oldest first."""
        return list(self._history)

    def clear(self) -> None:
        """Forget reported findings and allowlist use (open scopes are kept)."""
        self._history.clear()
        self._allow_hits = [0] * len(self.allow)

    def stale_allowlist(self) -> list[NPlusOneAllow]:
        """Allowlist rules that matched no finding of any ended scope so far."""
        return [rule for rule, hits in zip(self.allow, self._allow_hits, strict=True) if not hits]

    def __repr__(self) -> str:
        action = self.action if isinstance(self.action, str) else "callable"
        return (
            f"<NPlusOneDetector threshold={self.threshold} repeat_threshold="
            f"{self.repeat_threshold} action={action} allow={len(self.allow)}>"
        )


def _finding(
    kind: FindingKind,
    event: QueryEvent,
    count: int,
    groups: tuple[_Group, ...] | list[_Group],
    scope: Scope,
    suggestion: str,
    relationship: str | None = None,
    option: str | None = None,
    *,
    keep: bool = False,
) -> NPlusOneFinding:
    return make_finding(
        kind,
        event,
        count,
        scope,
        suggestion,
        stack=groups[0].event.stack,
        callsites=tuple(dict.fromkeys(g.event.stack[0] for g in groups if g.event.stack)),
        relationship=relationship,
        option=option,
        keep=keep,
    )
