"""``eager.strict``: make every lazy load in a session raise, naming the fix. For tests.

The check is a ``do_orm_execute`` listener: when SQLAlchemy is about to run
a lazy load (``orm_execute_state.lazy_loaded_from`` is set), it raises
:class:`LazyLoadError` instead, at the line that read the attribute. Nothing
else changes: mapped ``lazy=`` settings, loader options and eager loads work
as before, and ``close()`` removes the listener.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

from dbopt.eager._orm import (
    FlushTracker,
    detach_listeners,
    event_target,
    lazy_relationship,
    loader_chain,
    relationship_name,
)
from dbopt.errors import ReportedError
from dbopt.handle import Handle, deprecated_verb

__all__ = ["LazyLoadError", "StrictEager", "strict"]


class LazyLoadError(ReportedError):
    """A lazy load ran in a session under :func:`strict`.

    ``relationship`` is ``"User.posts"``, ``loader_option`` the option that
    avoids it (chained along the load path when the parent objects were
    themselves loaded through a relationship), ``instance`` a ``repr`` of
    the object whose attribute was read.
    """

    def __init__(
        self, relationship: str, loader_option: str, instance: str, root: str | None = None
    ) -> None:
        self.relationship = relationship
        self.loader_option = loader_option
        self.instance = instance
        owner = root or relationship.partition(".")[0]
        super().__init__(
            f"lazy load of {relationship} on {instance} in a dbopt.eager.strict() session: "
            f"add .options({loader_option}) to the query that loads the {owner} objects "
            f"(or, if this load is intended, strict(session, allow=[{relationship!r}]))"
        )


class StrictEager(Handle):
    """The handle :func:`strict` returns: ``close()``, ``allowing()``, and a ``with`` block.

    ``allow`` holds relationship names or globs (``"User.posts"``,
    ``"AuditLog.*"``) whose lazy loads are let through. ``blocked`` counts
    the lazy loads refused so far.
    """

    def __init__(self, target: Any, allow: Iterable[str] = ()) -> None:
        self.target = event_target(target)
        self.allow: tuple[str, ...] = tuple(allow)
        self.blocked = 0
        self._extra: list[str] = []
        self._flush = FlushTracker(self.target)
        event.listen(self.target, "do_orm_execute", self._check)
        self.active = True

    def _check(self, state: ORMExecuteState) -> None:
        prop = lazy_relationship(state)
        if prop is None or self._flush.flushing(state.session):
            return
        name = relationship_name(prop)
        if self._allowed(name):
            return
        self.blocked += 1
        instance = state.lazy_loaded_from
        obj = instance.obj() if instance is not None else None
        shown = _describe(obj) if obj is not None else prop.parent.class_.__name__
        option, root = loader_chain(state)
        raise LazyLoadError(name, option, shown, root)

    def _allowed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, rule) for rule in (*self.allow, *self._extra))

    @contextmanager
    def allowing(self, *relationships: str) -> Iterator[None]:
        """Let lazy loads of ``relationships`` (names or globs; none: all) through in a block."""
        rules = list(relationships) or ["*"]
        self._extra.extend(rules)
        try:
            yield
        finally:
            for rule in rules:
                self._extra.remove(rule)

    def close(self) -> None:
        """Remove the listener; lazy loads work again (idempotent)."""
        if self.active:
            self.active = False
            detach_listeners(self.target, self._check, self._flush)

    undo = deprecated_verb("undo")

    def __repr__(self) -> str:
        state = "active" if self.active else "undone"
        return f"<StrictEager {state} blocked={self.blocked} allow={list(self.allow)}>"


def strict(session: Any, *, allow: Iterable[str] = ()) -> StrictEager:
    """Make every lazy load in ``session`` raise :class:`LazyLoadError`.

    ``session`` is a ``Session``, ``AsyncSession``, ``sessionmaker``,
    ``Session`` subclass or ``scoped_session`` (Flask-SQLAlchemy's
    ``db.session``; then every session it makes is strict), or an
    ``async_sessionmaker``/``async_scoped_session`` made with
    ``sync_session_class=<a Session subclass>``. A lazy load
    is any relationship load that runs SQL because an unloaded attribute was
    read (or ``immediateload``); a many-to-one found in the identity map runs
    no SQL and is not refused. Lazy loads that ``flush()`` itself runs (to
    null or delete the children of a deleted parent) are let through, since
    raising there would leave the session half-flushed; those of
    ``session.delete()``'s cascade are refused like any read (they are one
    query per deleted object too). ``allow`` names relationships (globs) that
    may load lazily. Returns a handle: ``close()`` or use it as a ``with``
    block.
    """
    return StrictEager(session, allow)


def _describe(obj: object) -> str:
    from sqlalchemy import inspect

    try:
        identity = inspect(obj).identity
    except Exception:  # noqa: BLE001 - only for the message
        identity = None
    name = type(obj).__name__
    if identity is None:
        return f"a {name}"
    key = identity[0] if len(identity) == 1 else identity
    return f"{name}({key!r})"
