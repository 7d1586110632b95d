"""Which objects came from the same multi-row result ("cohorts"), for ``eager.auto``.

SQLAlchemy's ``load`` and ``refresh`` instance events (listened to on the
``Mapper`` class, so on every mapper) give each object as it is built or
refreshed from a row, with the loading context of its result. The identity
keys of one context's objects form a cohort. Once a cohort has two members
it joins the session's recent cohorts (``session.info``, the last
``RECENT``); an object's *home* is the newest of them that holds its key.
So a result of one row (``session.get()``, the refresh of one expired
object) never moves an object, and a later lazy load still batches with
the siblings of its multi-row result.

Only identity keys are stored (tuples the objects' states already hold: no
allocation per row, nothing kept alive); a batch finds the objects again in
the session's identity map. The listeners are installed while at least one
``auto()`` is active, and do nothing for sessions none covers.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import InstanceState, Mapper, Session
from sqlalchemy.orm.attributes import instance_state

__all__ = ["MAX_MEMBERS", "RECENT", "Cohort", "home_of", "install", "uninstall"]

#: Multi-row cohorts remembered per session.
RECENT = 32
#: Keys kept per cohort; past it the older half is dropped (a streamed result,
#: ``yield_per``, must not keep one key per row it ever produced).
MAX_MEMBERS = 100_000
#: Loading contexts remembered per thread while their rows may still come.
_CONTEXTS = 16
_INFO_KEY = "dbopt.eager.cohorts"


class Cohort:
    """The identity keys of one multi-row result's objects, in row order."""

    __slots__ = ("added", "keys", "order", "session")

    def __init__(self, session: Session) -> None:
        self.session = weakref.ref(session)
        self.order: list[Any] = []
        self.keys: set[Any] = set()
        self.added = 0

    def add(self, key: Any) -> int:
        """Add one object's identity key; the number of keys added so far."""
        if key not in self.keys:
            self.keys.add(key)
            self.order.append(key)
            self.added += 1
            if len(self.order) > MAX_MEMBERS:
                half = len(self.order) // 2
                self.keys.difference_update(self.order[:half])
                del self.order[:half]
        return self.added

    def states(self) -> Iterator[InstanceState[Any]]:
        """The members still in the session's identity map, in row order."""
        session = self.session()
        if session is None:
            return
        identity_map = session.identity_map
        for key in self.order:
            obj = identity_map.get(key)
            if obj is not None:
                yield instance_state(obj)

    def __len__(self) -> int:
        return len(self.order)


_local = threading.local()
_install_lock = threading.Lock()
#: Covered sessions: id(session) -> (weak reference, number of installs).
_sessions: dict[int, tuple[weakref.ref[Session], int]] = {}
#: Covered session classes (sessionmakers' and subclasses) -> number of installs.
_class_counts: dict[type[Session], int] = {}
#: The keys of ``_class_counts`` as a tuple, for ``isinstance`` (swapped, never mutated).
_classes: list[tuple[type[Session], ...]] = [()]


def home_of(state: InstanceState[Any]) -> Cohort | None:
    """The newest multi-row cohort of ``state``'s session that ``state`` came from."""
    session = state.session
    key = state.identity_key
    if session is None or key is None:
        return None
    recent: deque[Cohort] | None = session.info.get(_INFO_KEY)
    if not recent:
        return None
    for cohort in reversed(recent):
        if key in cohort.keys:
            return cohort
    return None


def _covered(session: Session) -> bool:
    entry = _sessions.get(id(session))
    if entry is not None and entry[0]() is session:
        return True
    classes = _classes[0]
    return bool(classes) and isinstance(session, classes)


def _cohort_for(context: Any, session: Session) -> Cohort:
    """The cohort of a loading context (the same object while its rows keep coming)."""
    last = getattr(_local, "last", None)
    if last is not None and last[0] is context:
        return last[1]  # type: ignore[no-any-return]
    contexts: OrderedDict[int, tuple[Any, Cohort]] | None = getattr(_local, "contexts", None)
    if contexts is None:
        contexts = _local.contexts = OrderedDict()
    key = id(context)
    entry = contexts.get(key)
    if entry is None or entry[0] is not context:
        # A strong reference to the context: its id cannot be reused while here.
        entry = contexts[key] = (context, Cohort(session))
        if len(contexts) > _CONTEXTS:
            contexts.popitem(last=False)
    else:
        contexts.move_to_end(key)
    _local.last = entry
    return entry[1]


def _on_row(state: InstanceState[Any], context: Any, *args: Any) -> None:
    """``load``/``refresh`` listener: add ``state`` to its context's cohort."""
    try:
        session = state.session
        key = state.identity_key
        if session is None or key is None or not _covered(session):
            return
        cohort = _cohort_for(context, session)
        if cohort.add(key) == 2:
            recent: deque[Cohort] | None = session.info.get(_INFO_KEY)
            if recent is None:
                recent = session.info[_INFO_KEY] = deque(maxlen=RECENT)
            recent.append(cohort)
    except Exception:  # noqa: BLE001 - never break the application's load
        return


def install(target: Session | type[Session]) -> None:
    """Start tracking cohorts for ``target`` (a session, or every session of a class)."""
    with _install_lock:
        if not _sessions and not _class_counts:
            event.listen(Mapper, "load", _on_row, raw=True)
            event.listen(Mapper, "refresh", _on_row, raw=True)
        if isinstance(target, Session):
            entry = _sessions.get(id(target))
            count = entry[1] if entry is not None and entry[0]() is target else 0
            _sessions[id(target)] = (weakref.ref(target), count + 1)
        else:
            _class_counts[target] = _class_counts.get(target, 0) + 1
            _classes[0] = tuple(_class_counts)


def uninstall(target: Session | type[Session]) -> None:
    """Stop tracking for ``target``; the last one removes the listeners."""
    with _install_lock:
        if isinstance(target, Session):
            entry = _sessions.pop(id(target), None)
            if entry is not None and entry[1] > 1:
                _sessions[id(target)] = (entry[0], entry[1] - 1)
            target.info.pop(_INFO_KEY, None)
        elif target in _class_counts:
            _class_counts[target] -= 1
            if not _class_counts[target]:
                del _class_counts[target]
            _classes[0] = tuple(_class_counts)
        if not _sessions and not _class_counts:
            for name in ("load", "refresh"):
                if event.contains(Mapper, name, _on_row):
                    event.remove(Mapper, name, _on_row)
            _local.__dict__.clear()
