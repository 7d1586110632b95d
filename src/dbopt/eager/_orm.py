"""What :mod:`dbopt.eager` needs from SQLAlchemy's public surface, in one place.

Event targets (sessions, session classes, sessionmakers, async sessions), the
relationship a lazy load is for, the loader option that would have avoided
it, and whether a session is flushing.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import (
    ORMExecuteState,
    RelationshipProperty,
    Session,
    scoped_session,
    sessionmaker,
)

from dbopt.errors import ConfigurationError

__all__ = [
    "FlushTracker",
    "event_target",
    "lazy_relationship",
    "loader_chain",
    "relationship_name",
]


def event_target(target: Any) -> Any:
    """The object to attach session events to for ``target``.

    A ``Session``, a ``Session`` subclass, a ``sessionmaker`` (its sessions
    only), a ``scoped_session`` (Flask-SQLAlchemy's ``db.session``: its
    ``session_factory``), an ``AsyncSession`` (through its ``sync_session``),
    or an ``async_sessionmaker``/``async_scoped_session`` made with
    ``sync_session_class=<a Session subclass>`` (that class). Raises
    :class:`ConfigurationError` for anything else.
    """
    if isinstance(target, scoped_session):
        return event_target(target.session_factory)
    sync = getattr(target, "sync_session", None)
    if isinstance(sync, Session):
        return sync
    if isinstance(target, (Session, sessionmaker)):
        return target
    if isinstance(target, type) and issubclass(target, Session):
        return target
    kind = type(target).__name__
    if kind == "async_scoped_session":
        return event_target(target.session_factory)
    if kind == "async_sessionmaker":
        sync_class = getattr(target, "kw", {}).get("sync_session_class")
        if (
            isinstance(sync_class, type)
            and issubclass(sync_class, Session)
            and sync_class is not Session
        ):
            return sync_class
        raise ConfigurationError(
            "an async_sessionmaker (or async_scoped_session) is covered through the class of "
            "its sync sessions: make it with sync_session_class=<a Session subclass of your "
            "own> (class AppSession(Session): pass), so that only its sessions are affected, "
            "or pass one AsyncSession"
        )
    raise ConfigurationError(
        f"expected a Session, Session subclass, sessionmaker, scoped_session, AsyncSession, "
        f"async_sessionmaker or async_scoped_session, got {type(target).__qualname__}"
    )


def relationship_name(prop: RelationshipProperty[Any]) -> str:
    """``"User.posts"``."""
    return f"{prop.parent.class_.__name__}.{prop.key}"


def lazy_relationship(state: ORMExecuteState) -> RelationshipProperty[Any] | None:
    """The relationship a statement lazily loads, or None if it is not a lazy load.

    A lazy load is a relationship load with ``lazy_loaded_from`` set: reading
    an unloaded attribute, or ``immediateload``. Eager loaders
    (``selectinload``, ``subqueryload``) are not lazy loads.
    """
    if not state.is_select or not state.is_relationship_load:
        return None
    if state.lazy_loaded_from is None:
        return None
    path = state.loader_strategy_path
    if path is None or not len(path):
        return None
    prop = path[-1]
    return prop if isinstance(prop, RelationshipProperty) else None


def loader_chain(state: ORMExecuteState) -> tuple[str, str]:
    """``(option, root)``: the loader option for a lazy load, chained along its load path.

    ``("selectinload(User.posts)", "User")`` when the ``User`` objects came
    from a query; ``("selectinload(User.posts).selectinload(Post.comments)",
    "User")`` for ``post.comments`` when the ``Post`` objects were loaded
    through ``User.posts`` by an option of a ``User`` query.
    """
    path = state.loader_strategy_path
    elements = path.path if path is not None else ()
    steps = [p for p in elements if isinstance(p, RelationshipProperty)]
    option = ".".join(
        f"{'selectinload' if prop.uselist else 'joinedload'}({relationship_name(prop)})"
        for prop in steps
    )
    root = steps[0].parent.class_.__name__ if steps else ""
    return option, root


class FlushTracker:
    """Knows which sessions of one event target are inside ``flush()``.

    Lazy loads during a flush (cascades, backrefs) are the unit of work's
    own business, not the application's reads.
    """

    def __init__(self, target: Any) -> None:
        self.target = target
        self._flushing: weakref.WeakSet[Session] = weakref.WeakSet()
        self._listeners = (
            ("before_flush", self._before),
            ("after_flush_postexec", self._after),
            ("after_soft_rollback", self._rollback),
        )
        for name, fn in self._listeners:
            event.listen(target, name, fn)

    def flushing(self, session: Session) -> bool:
        """Whether ``session`` is flushing now."""
        return session in self._flushing

    def remove(self) -> None:
        """Remove the listeners."""
        for name, fn in self._listeners:
            if event.contains(self.target, name, fn):
                event.remove(self.target, name, fn)

    def _before(self, session: Session, flush_context: Any, instances: Any) -> None:
        self._flushing.add(session)

    def _after(self, session: Session, flush_context: Any) -> None:
        self._flushing.discard(session)

    def _rollback(self, session: Session, previous_transaction: Any) -> None:
        self._flushing.discard(session)


def detach_listeners(
    target: Any, on_execute: Callable[[ORMExecuteState], Any], flush: FlushTracker
) -> None:
    """Take an eager handle's ``do_orm_execute`` listener and its flush tracker off ``target``."""
    if event.contains(target, "do_orm_execute", on_execute):
        event.remove(target, "do_orm_execute", on_execute)
    flush.remove()
