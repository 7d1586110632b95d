"""Every sink attached anywhere, the rate-limited log of their failures, and scope-end notices.

Below both :mod:`dbopt.core.scope` (which tells sinks a scope ended) and
:mod:`dbopt.core.pipeline` (which registers the sinks it delivers to), so
neither needs the other to do its job.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from dbopt.errors import ReportedError

if TYPE_CHECKING:
    from dbopt.core.scope import Scope
    from dbopt.typing import Sink

__all__ = ["end_scope", "register", "report_sink_error", "unregister"]

log = logging.getLogger("dbopt")

_ERROR_INTERVAL = 60.0
_last_error: dict[int, float] = {}
_registry_lock = threading.Lock()
#: Every sink attached to any target, with a count, for scope-end notification.
_attached: dict[int, list[Any]] = {}


def report_sink_error(sink: object, exc: BaseException, where: str) -> None:
    """Log a sink's failure, at most once per interval per sink."""
    now = time.monotonic()
    key = id(sink)
    last = _last_error.get(key)
    if last is not None and now - last < _ERROR_INTERVAL:
        return
    _last_error[key] = now
    log.error(
        "dbopt sink %r failed in %s; the statement was not affected "
        "(further errors from this sink are muted for %d s)",
        sink,
        where,
        int(_ERROR_INTERVAL),
        exc_info=exc,
    )


def register(sink: Sink) -> None:
    """Count one more attachment of ``sink`` (it will hear of ended scopes)."""
    with _registry_lock:
        entry = _attached.setdefault(id(sink), [sink, 0])
        entry[1] += 1


def unregister(sink: Sink) -> None:
    """Count one attachment of ``sink`` less; at zero it no longer hears of scopes."""
    with _registry_lock:
        entry = _attached.get(id(sink))
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del _attached[id(sink)]
                # its id may be reused by a new sink, which must not inherit the mute
                _last_error.pop(id(sink), None)


def end_scope(ended: Scope, *, failed: bool = False) -> None:
    """Tell every attached sink with ``scope_end`` that ``ended`` is over.

    Raises the first :class:`ReportedError` a sink raised, after all sinks
    have been told, unless the scope is already failing with another error.
    """
    with _registry_lock:
        sinks = [entry[0] for entry in _attached.values()]
    reported: ReportedError | None = None
    for sink in sinks:
        hook = getattr(sink, "scope_end", None)
        if hook is None:
            continue
        try:
            hook(ended)
        except ReportedError as exc:
            if reported is None:
                reported = exc
        except Exception as exc:  # noqa: BLE001 - a sink must never break the app
            report_sink_error(sink, exc, "scope_end")
    if reported is not None and not failed:
        raise reported
