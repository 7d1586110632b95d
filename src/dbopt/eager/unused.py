"""Unused eager loads: relationships loaded by an option and never read (opt-in, reversible).

``with dbopt.eager.unused_eager_loads(action="raise"):`` (or
``tracker.enable()`` / ``tracker.disable()``) reports, when each
:func:`dbopt.scope` ends, every relationship that a ``joinedload``,
``selectinload`` or ``subqueryload`` (an option, or ``lazy=...`` on the
mapper) loaded in that scope and that no object read; loads outside any
scope are reported by ``disable()``.

SQLAlchemy has no public event for reading an attribute. While a tracker is
enabled, and only then, dbopt listens to the ORM ``load`` event (on
``Mapper``, for every mapper) and swaps the class of the
``InstrumentedAttribute`` of each relationship it has seen loaded eagerly for
a subclass whose ``__get__`` notes the read and calls the original.
``disable()`` puts every swapped attribute back and removes the listener;
nothing is patched at import. Columns and relationships never loaded eagerly
are not touched, so they cost nothing.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.orm.attributes import InstrumentedAttribute
from sqlalchemy.orm.base import instance_state

from dbopt.core.callsite import capture_stack
from dbopt.core.events import CallSite, QueryEvent
from dbopt.core.fingerprint import fingerprint, mask_literals
from dbopt.core.nplusone_allow import NPlusOneAllow, parse_allow
from dbopt.core.nplusone_findings import NPlusOneError, NPlusOneFinding, deliver
from dbopt.core.scope import Scope, current_scope
from dbopt.core.sinks import register, unregister
from dbopt.errors import ConfigurationError

__all__ = ["UnusedEagerLoads", "unused_eager_loads"]

_EAGER = {"joined": "joinedload", "selectin": "selectinload", "subquery": "subqueryload"}
#: Objects tracked at once, and objects kept per record for the scope-end check.
_MAX_PENDING = 100_000
_MAX_STATES = 1000

_lock = threading.Lock()
#: The enabled tracker (at most one at a time).
_active: list[UnusedEagerLoads | None] = [None]


class _ReadTracked(InstrumentedAttribute[Any]):
    """An ``InstrumentedAttribute`` that tells the enabled tracker about reads."""

    __slots__ = ()
    inherit_cache = True

    def __get__(self, instance: object | None, owner: Any) -> Any:
        if instance is not None:
            tracker = _active[0]
            if tracker is not None:
                tracker._read(instance, self.key)
        return InstrumentedAttribute.__get__(self, instance, owner)


class _Record:
    """One relationship loaded eagerly by one statement site in one scope."""

    __slots__ = ("count", "option", "read", "relationship", "sql", "stack", "states")

    def __init__(self, relationship: str, option: str, stack: tuple[CallSite, ...], sql: str):
        self.relationship = relationship
        self.option = option
        self.stack = stack
        self.sql = sql
        self.count = 0
        self.read = False
        self.states: list[Any] = []


class UnusedEagerLoads:
    """Finds eager loads nobody reads; see the module docstring.

    ``action`` is ``"warn"`` (default, an :class:`NPlusOneWarning` at the
    line that ran the query), ``"log"``, ``"raise"`` (:class:`NPlusOneError`
    when the scope ends) or a callable given each finding; ``allow`` takes
    the N+1 detector's rules (``"relationship:User.*"``). Findings have
    ``kind="unused_eager_load"``, ``relationship``, ``loader_option`` (the
    option to drop) and ``count`` (objects it was loaded for).
    """

    def __init__(
        self,
        *,
        action: str | Callable[[NPlusOneFinding], None] = "warn",
        allow: Iterable[str | NPlusOneAllow] = (),
        logger: str | logging.Logger = "dbopt.nplusone",
    ) -> None:
        if action not in ("warn", "log", "raise") and not callable(action):
            raise ConfigurationError(
                f"action must be 'warn', 'log', 'raise' or a callable, got {action!r}"
            )
        self.action = action
        entries = (allow,) if isinstance(allow, (str, NPlusOneAllow)) else tuple(allow)
        self.allow = tuple(parse_allow(entry) for entry in entries)
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self._history: list[NPlusOneFinding] = []
        self._records: dict[Scope | None, dict[tuple[Any, ...], _Record]] = {}
        self._pending: dict[Any, dict[str, _Record]] = {}
        self._plans: dict[tuple[int, Any], list[tuple[str, _Record]]] = {}
        self._last_context: list[Any] = [None]
        self._swapped: list[InstrumentedAttribute[Any]] = []
        self._tracked: set[RelationshipProperty[Any]] = set()
        self._enabled = False

    # Switching on and off

    @property
    def enabled(self) -> bool:
        """Whether this tracker is listening now."""
        return self._enabled

    def enable(self) -> UnusedEagerLoads:
        """Start tracking (listener and attribute swaps); refuses a second enabled tracker."""
        with _lock:
            if self._enabled:
                return self
            if _active[0] is not None:
                raise ConfigurationError("another UnusedEagerLoads tracker is enabled")
            _active[0] = self
            event.listen(Mapper, "load", self._on_load)
            register(self)
            self._enabled = True
        return self

    def disable(self) -> None:
        """Stop tracking, restore every swapped attribute, and report loads outside scopes."""
        with _lock:
            if not self._enabled:
                return
            self._enabled = False
            _active[0] = None
            if event.contains(Mapper, "load", self._on_load):
                event.remove(Mapper, "load", self._on_load)
            unregister(self)
            for attribute in self._swapped:
                attribute.__class__ = InstrumentedAttribute
            self._swapped.clear()
            self._tracked.clear()
        records = self._records.pop(None, {})
        self._records.clear()
        self._pending.clear()
        self._plans.clear()
        self._last_context[0] = None
        self._report(self._findings(None, records))

    def __enter__(self) -> UnusedEagerLoads:
        return self.enable()

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.disable()
            return
        with contextlib.suppress(NPlusOneError):  # the block's own error wins
            self.disable()

    # Results

    @property
    def findings(self) -> list[NPlusOneFinding]:
        """Every finding reported so far, oldest first."""
        return list(self._history)

    def __call__(self, event: QueryEvent, /) -> None:
        """Statements are not needed: the tracker reads the ORM's ``load`` event."""

    def scope_end(self, scope: Scope) -> None:
        """Report the unused eager loads of ``scope``."""
        records = self._records.pop(scope, None)
        if records:
            self._report(self._findings(scope, records))

    # Tracking

    def _on_load(self, target: object, context: Any) -> None:
        try:
            state = instance_state(target)
            plan = self._plan(context, state.mapper)
            if not plan:
                return
            pending = self._pending.get(state)
            if pending is None:
                if len(self._pending) >= _MAX_PENDING:
                    return
                pending = self._pending[state] = {}
            for key, record in plan:
                record.count += 1
                pending.setdefault(key, record)
                if len(record.states) < _MAX_STATES:
                    record.states.append(state)
        except Exception:  # tracking never fails a load
            self.logger.debug("dbopt unused eager loads: load not tracked", exc_info=True)

    def _plan(self, context: Any, mapper: Mapper[Any]) -> list[tuple[str, _Record]]:
        """The eager relationships of ``mapper``'s objects in one query, with their records."""
        if self._last_context[0] is not context:
            self._last_context[0] = context
            self._plans.clear()
        key = (id(context), mapper)
        plan = self._plans.get(key)
        if plan is not None:
            return plan
        scope = current_scope()
        records = self._records.setdefault(scope, {})
        plan = []
        stack: tuple[CallSite, ...] | None = None
        for prop, option in _eager_props(context.query, mapper):
            if stack is None:
                stack = capture_stack(3)
            name = f"{prop.parent.class_.__name__}.{prop.key}"
            record_key = (name, option, stack[:1])
            record = records.get(record_key)
            if record is None:
                record = records[record_key] = _Record(
                    name, option, stack, _statement_text(context)
                )
            plan.append((prop.key, record))
            self._track(prop)
        self._plans[key] = plan
        return plan

    def _track(self, prop: RelationshipProperty[Any]) -> None:
        if prop in self._tracked:
            return
        with _lock:
            self._tracked.add(prop)
            for mapper in prop.parent.self_and_descendants:
                attribute = mapper.class_manager.get(prop.key)
                if type(attribute) is InstrumentedAttribute:
                    attribute.__class__ = _ReadTracked
                    self._swapped.append(attribute)

    def _read(self, instance: object, key: str) -> None:
        try:
            pending = self._pending.get(instance_state(instance))
        except Exception:  # noqa: BLE001 - not a mapped instance
            return
        if pending:
            record = pending.pop(key, None)
            if record is not None:
                record.read = True

    def _findings(
        self, scope: Scope | None, records: dict[tuple[Any, ...], _Record]
    ) -> list[NPlusOneFinding]:
        found: list[NPlusOneFinding] = []
        for record in records.values():
            key = record.relationship.rpartition(".")[2]
            for state in record.states:
                pending = self._pending.get(state)
                if pending is not None:
                    pending.pop(key, None)
                    if not pending:
                        del self._pending[state]
            if record.read or not _was_loaded(record.states, key):
                continue
            finding = _finding(record, scope)
            if any(rule.matches(finding) for rule in self.allow):
                continue
            found.append(finding)
        return found

    def _report(self, findings: list[NPlusOneFinding]) -> None:
        if not findings:
            return
        self._history.extend(findings)
        deliver(findings, self.action, self.logger)

    def __repr__(self) -> str:
        return f"<UnusedEagerLoads enabled={self._enabled} tracked={len(self._tracked)}>"


def unused_eager_loads(
    *,
    action: str | Callable[[NPlusOneFinding], None] = "warn",
    allow: Iterable[str | NPlusOneAllow] = (),
) -> UnusedEagerLoads:
    """An :class:`UnusedEagerLoads` tracker to use as ``with``; ``enable()`` it otherwise."""
    return UnusedEagerLoads(action=action, allow=allow)


def _eager_props(statement: Any, mapper: Mapper[Any]) -> list[tuple[Any, str]]:
    """(relationship, option name) eagerly loaded on ``mapper``'s objects by ``statement``.

    From the statement's loader options (any depth of path: nested options
    reach the child statements of ``selectinload``) and the mapper's own
    ``lazy="joined"/"selectin"/"subquery"`` relationships, unless an option
    gives them another strategy.
    """
    chosen: dict[Any, str | None] = {}
    for option in getattr(statement, "_with_options", ()):
        for element in getattr(option, "context", ()):
            strategy = dict(getattr(element, "strategy", None) or ()).get("lazy")
            props = [p for p in getattr(element, "path", ()) if isinstance(p, RelationshipProperty)]
            if not props or strategy is None:
                continue
            prop = props[-1]
            if mapper.isa(prop.parent):
                chosen[prop] = _EAGER.get(str(strategy))
    for prop in mapper.relationships:
        if prop not in chosen and str(prop.lazy) in _EAGER:
            chosen[prop] = f"lazy={prop.lazy!r}"
    return [(prop, option) for prop, option in chosen.items() if option is not None]


def _statement_text(context: Any) -> str:
    try:
        return mask_literals(str(context.query))
    except Exception:  # noqa: BLE001 - the text is a courtesy
        return ""


def _was_loaded(states: list[Any], key: str) -> bool:
    """Whether SQLAlchemy did load ``key`` on one of the objects (or they are all gone)."""
    alive = False
    for state in states:
        if state.obj() is None:
            continue
        alive = True
        if key in state.dict:
            return True
    return not alive


def _finding(record: _Record, scope: Scope | None) -> NPlusOneFinding:
    option = record.option
    name = record.relationship
    site = record.stack[0] if record.stack else None
    where = f" at {site}" if site else ""
    if option.startswith("lazy="):
        loader = None
        fix = (
            f"{name} is loaded eagerly by {option} on the relationship for every query of "
            f"{name.partition('.')[0]}, and this scope never read it: set lazy='select' and "
            "add selectinload/joinedload to the queries that read it"
        )
    else:
        loader = f"{option}({name})"
        fix = (
            f"{loader} loaded {name} for {record.count} object(s) and none was read in this "
            f"scope: drop it from the query{where} (each eager load costs a JOIN or a SELECT), "
            "or keep it if another code path reads it"
        )
    return NPlusOneFinding(
        kind="unused_eager_load",
        fingerprint=fingerprint(record.sql) if record.sql else "",
        sql=record.sql,
        count=record.count,
        callsite=site,
        stack=record.stack,
        callsites=(site,) if site else (),
        relationship=name,
        loader_option=loader,
        suggestion=fix,
        scope=scope.name if scope is not None else None,
        scope_path=scope.path if scope is not None else None,
    )
