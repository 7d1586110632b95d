"""``eager.auto``: batch lazy loads across the objects of one result (like goldiloader).

When an unloaded relationship is read on an object that came from a
multi-row result, the relationship is loaded for that object and for the
other objects of the same result that have not loaded it yet, in one query;
the others then read it with no query at all. A loop over 100 users reading
``user.posts`` runs 2 queries instead of 101.

How, with SQLAlchemy's public API only:

* ``load``/``refresh`` instance events group objects by the result they came
  from (:mod:`dbopt.eager._cohorts`).
* A ``do_orm_execute`` listener sees the lazy load about to run
  (``lazy_loaded_from``, ``loader_strategy_path``) and runs instead one
  statement for the whole batch: the target entity plus the parents'
  primary keys, from an alias of the parent outer-joined along the
  relationship, ``WHERE`` the parents' keys are ``IN`` the batch. That one
  join works alike for one-to-many, many-to-one, one-to-one, many-to-many
  (through ``secondary``) and custom ``primaryjoin``s, keeps the
  relationship's ``order_by``, and sees parents with nothing related.
* The other parents get their value with
  ``sqlalchemy.orm.attributes.set_committed_value`` (what the lazy loader
  itself does; pending backref changes are kept), and the lazy load gets its
  own rows back as a ``FrozenResult``, so its normal processing continues.

Whenever a batch cannot be made faithfully, the lazy load runs as usual.
"""

from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

from sqlalchemy import event, select, tuple_
from sqlalchemy.exc import DBAPIError, MissingGreenlet
from sqlalchemy.orm import (
    InstanceState,
    LoaderCriteriaOption,
    ORMExecuteState,
    RelationshipProperty,
    Session,
    aliased,
    sessionmaker,
)
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.sql.visitors import iterate

from dbopt.core.events import EAGER_BATCH_OPTION
from dbopt.eager import _cohorts
from dbopt.eager._orm import (
    FlushTracker,
    detach_listeners,
    event_target,
    lazy_relationship,
    relationship_name,
)
from dbopt.errors import ConfigurationError
from dbopt.handle import Handle, deprecated_verb

__all__ = ["AutoEager", "auto"]

log = logging.getLogger("dbopt.eager")

#: Execution option marking dbopt's own batch statements (one constant, shared
#: with the SQLAlchemy adapter through :mod:`dbopt.core.events`).
BATCH_OPTION = EAGER_BATCH_OPTION

_BATCHABLE: weakref.WeakKeyDictionary[RelationshipProperty[Any], bool] = weakref.WeakKeyDictionary()


class AutoEager(Handle):
    """The handle :func:`auto` returns: counters, ``close()``, and a ``with`` block.

    ``batches`` counts batch statements run, ``batched`` the other objects
    they filled (lazy loads saved), ``fallbacks`` the lazy loads left to
    SQLAlchemy because a batch could not be made.
    """

    def __init__(self, target: Any, *, batch_size: int = 500) -> None:
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ConfigurationError(f"batch_size must be an int >= 2, got {batch_size!r}")
        self.target = event_target(target)
        #: An AsyncSession's lazy loads can only run inside its greenlet (awaitable_attrs).
        self._async = getattr(target, "sync_session", None) is self.target or type(
            target
        ).__name__ in ("async_sessionmaker", "async_scoped_session")
        self.batch_size = batch_size
        self.batches = 0
        self.batched = 0
        self.fallbacks = 0
        self._covers = _covered_target(self.target)
        self._warned: set[tuple[str, type[BaseException]]] = set()
        self._flush = FlushTracker(self.target)
        _cohorts.install(self._covers)
        event.listen(self.target, "do_orm_execute", self._on_execute)
        self.active = True

    # The lazy load

    def _on_execute(self, state: ORMExecuteState) -> Any:
        if state.execution_options.get(BATCH_OPTION):
            return None
        prop = lazy_relationship(state)
        if prop is None:
            return None
        trigger = state.lazy_loaded_from
        session = state.session
        if trigger is None or self._flush.flushing(session):
            return None
        if self._async and not _in_greenlet():
            return None  # outside greenlet_spawn: SQLAlchemy raises MissingGreenlet itself
        cohort = _cohorts.home_of(trigger)
        if cohort is None or trigger.modified or not _batchable(prop):
            return None
        batch = self._batch_for(trigger, cohort, prop, session)
        if len(batch) < 2:
            return None
        criteria = _criteria(state)
        if criteria is None:
            self.fallbacks += 1
            return None
        try:
            return self._load(session, prop, batch, criteria)
        except DBAPIError:
            raise
        except Exception as exc:  # noqa: BLE001 - fall back to the plain lazy load
            self.fallbacks += 1
            if not _missing_greenlet(exc):
                self._warn(prop, exc)
            return None

    def _batch_for(
        self,
        trigger: InstanceState[Any],
        cohort: _cohorts.Cohort,
        prop: RelationshipProperty[Any],
        session: Session,
    ) -> list[InstanceState[Any]]:
        """The trigger, then the cohort's other members that would lazy-load ``prop``.

        Members after the trigger come first (a loop goes on in row order),
        then those before it, up to ``batch_size`` in all.
        """
        members = list(cohort.states())
        try:
            start = next(i for i, s in enumerate(members) if s is trigger)
        except StopIteration:
            start = 0
        batch = [trigger]
        key = prop.key
        parent = prop.parent
        fits: dict[Any, bool] = {}  # per mapper: has this very relationship
        for state in members[start + 1 :] + members[:start]:
            if key in state.dict or state is trigger:
                continue
            mapper = state.mapper
            fit = fits.get(mapper)
            if fit is None:
                fit = fits[mapper] = mapper.isa(parent) and mapper.get_property(key) is prop
            if not fit or state.session is not session or not state.persistent or state.modified:
                continue
            batch.append(state)
            if len(batch) >= self.batch_size:
                break
        return batch

    def _load(
        self,
        session: Session,
        prop: RelationshipProperty[Any],
        batch: list[InstanceState[Any]],
        criteria: list[LoaderCriteriaOption],
    ) -> Any:
        parent = prop.parent
        alias = aliased(parent)
        keys = [getattr(alias, parent.get_property_by_column(c).key) for c in parent.primary_key]
        identities = [tuple(s.identity or ()) for s in batch]
        where = (
            keys[0].in_([i[0] for i in identities])
            if len(keys) == 1
            else tuple_(*keys).in_(identities)
        )
        stmt = (
            select(prop.entity.entity, *keys)
            .select_from(alias)
            .outerjoin(getattr(alias, prop.key))
            .where(where)
        )
        if prop.order_by:
            stmt = stmt.order_by(*prop.order_by)
        if criteria:
            stmt = stmt.options(*criteria)
        frozen = (
            session.execute(
                stmt,
                execution_options={BATCH_OPTION: relationship_name(prop), "autoflush": False},
            )
            .unique()
            .freeze()
        )
        self.batches += 1
        rows = frozen().all()
        found: dict[tuple[Any, ...], list[Any]] = {}
        for row in rows:
            related = found.setdefault(tuple(row[1:]), [])
            if row[0] is not None:
                related.append(row[0])
        for state, identity in zip(batch[1:], identities[1:], strict=True):
            values = found.get(identity)
            obj = state.obj()
            if values is None or obj is None or prop.key in state.dict:
                continue  # parent row not seen (deleted, filtered): its own lazy load decides
            set_committed_value(obj, prop.key, values if prop.uselist else _one(values))
            self.batched += 1
        mine = identities[0]
        if mine not in found:
            return None
        own = [row for row in rows if row[0] is not None and tuple(row[1:]) == mine]
        return frozen.with_new_rows(own)()

    def _warn(self, prop: RelationshipProperty[Any], exc: BaseException) -> None:
        key = (relationship_name(prop), type(exc))
        if key in self._warned:
            return
        self._warned.add(key)
        log.warning(
            "dbopt.eager.auto could not batch lazy loads of %s (%s: %s); "
            "they run one by one as SQLAlchemy does",
            key[0],
            type(exc).__name__,
            exc,
        )

    # Handle

    def close(self) -> None:
        """Stop batching (idempotent); objects already filled keep their values."""
        if self.active:
            self.active = False
            detach_listeners(self.target, self._on_execute, self._flush)
            _cohorts.uninstall(self._covers)

    undo = deprecated_verb("undo")

    def __repr__(self) -> str:
        state = "active" if self.active else "undone"
        return (
            f"<AutoEager {state} batches={self.batches} batched={self.batched} "
            f"fallbacks={self.fallbacks}>"
        )


def auto(session: Any, *, batch_size: int = 500) -> AutoEager:
    """Batch lazy loads in ``session`` across the objects of each multi-row result.

    ``session`` is a ``Session``, an ``AsyncSession`` (lazy loads there run
    through ``await obj.awaitable_attrs.<name>`` or ``run_sync``), a
    ``sessionmaker`` or a ``Session`` subclass (every session it makes), a
    ``scoped_session`` such as Flask-SQLAlchemy's ``db.session`` (every
    session of its factory), or an ``async_sessionmaker`` /
    ``async_scoped_session`` made with ``sync_session_class=<a Session subclass>``.
    ``batch_size`` (default 500, as ``selectinload``) bounds the parents per
    batch statement. Returns a handle: ``close()``, or use it as a ``with``
    block. See docs/eager.md for what is batched and what is left alone.
    """
    return AutoEager(session, batch_size=batch_size)


def _covered_target(target: Any) -> Session | type[Session]:
    """The session, or the class of sessions, that ``target`` stands for."""
    if isinstance(target, Session):
        return target
    cls: type[Session] = target.class_ if isinstance(target, sessionmaker) else target
    return cls


def _criteria(state: ORMExecuteState) -> list[LoaderCriteriaOption] | None:
    """The criteria options (``with_loader_criteria``, ``rel.and_()``) of a lazy load.

    SQLAlchemy exposes no public accessor for a statement's options; this
    reads the statement's option tuple, and returns None (do not batch) if
    that ever stops being readable, rather than batch without the criteria.
    """
    options = getattr(state.statement, "_with_options", None)
    if not isinstance(options, tuple):
        return None
    return [option for option in options if isinstance(option, LoaderCriteriaOption)]


def _batchable(prop: RelationshipProperty[Any]) -> bool:
    """False when the batch statement could not reproduce the lazy load.

    The join from the parent's alias aliases a ``secondary`` table, so an
    ``order_by`` on the association table's columns would not apply to it.
    """
    cached = _BATCHABLE.get(prop)
    if cached is None:
        secondary = prop.secondary
        cached = not (
            secondary is not None
            and prop.order_by
            and any(
                getattr(element, "table", None) is secondary
                for clause in prop.order_by
                for element in iterate(clause)
            )
        )
        _BATCHABLE[prop] = cached
    return cached


def _in_greenlet() -> bool:
    """Whether this runs inside SQLAlchemy's ``greenlet_spawn`` (a child greenlet)."""
    module: Any = sys.modules.get("greenlet")
    return module is not None and module.getcurrent().parent is not None


def _missing_greenlet(exc: BaseException) -> bool:
    """An async session's object read without ``awaitable_attrs``: SQLAlchemy will say so."""
    return isinstance(exc, MissingGreenlet) or isinstance(
        getattr(exc, "orig", None), MissingGreenlet
    )


def _one(related: list[Any]) -> Any:
    return related[0] if related else None
