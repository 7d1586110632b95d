"""``RequestRecorder``: a bounded ring of recent units of work and the statements each ran.

The Requests page of the dashboard reads it. Per statement it costs one
walk to the outermost scope, one dict look-up and one list append; the
rest (dropping the parameters, counting bytes, evicting) happens when the
outermost scope ends, and N+1 findings are computed only when a page asks
for them (:meth:`RecordedRequest.findings`), by replaying the statements
into an :class:`~dbopt.NPlusOneDetector`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dbopt.core.events import CallSite, OrmContext, QueryEvent
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding
from dbopt.core.params import check_policy, estimate_size
from dbopt.core.scope import Scope
from dbopt.errors import ConfigurationError

__all__ = ["RecordedRequest", "RecordedStatement", "RequestRecorder"]

#: Bytes counted per request and per statement besides texts and kept parameters.
_REQUEST_BYTES = 600
_STATEMENT_BYTES = 260


@dataclass(frozen=True, slots=True)
class RecordedStatement:
    """One statement of a recorded request, without its parameter values (unless kept).

    ``values`` is a hash of the statement's values (for the N+1 replay);
    ``parameters`` holds them only when the recorder keeps them
    (``params="keep"``). ``offset`` is seconds from the request's start.
    """

    sql: str
    fingerprint: str
    kind: str
    duration: float
    rowcount: int | None
    error: str | None
    callsite: CallSite | None
    stack: tuple[CallSite, ...]
    orm: OrmContext | None
    dialect: str
    adapter: str
    executemany: bool
    offset: float
    values: int
    parameters: Any = None


@dataclass(eq=False, slots=True)
class RecordedRequest:
    """One ended outermost scope: its name, tags, wall and database time, and statements.

    ``started_at`` is epoch seconds; ``wall_s`` the scope's duration;
    ``db_s`` the sum of its statements' durations (those past
    ``max_statements`` included); ``dropped`` how many statements were not
    kept.
    """

    id: int
    name: str | None
    tags: dict[str, Any]
    started_at: float
    wall_s: float
    db_s: float
    statements: tuple[RecordedStatement, ...]
    dropped: int
    failed: bool = False
    nbytes: int = 0
    _findings: list[NPlusOneFinding] | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        """Statements run (kept and dropped), transaction control included."""
        return len(self.statements) + self.dropped

    def findings(self, params: str = "redact") -> list[NPlusOneFinding]:
        """N+1 and repeated-query findings of this request (computed once, then cached).

        The statements are replayed into a fresh :class:`NPlusOneDetector`
        with its default thresholds; ``params`` is its text policy.
        """
        if self._findings is None:
            found: list[NPlusOneFinding] = []
            detector = NPlusOneDetector(action=found.append, params=check_policy(params))
            replay = Scope(self.name, dict(self.tags))
            for st in self.statements:
                detector(
                    QueryEvent(
                        sql=st.sql,
                        parameters=(st.values,),
                        fingerprint=st.fingerprint,
                        duration=st.duration,
                        rowcount=st.rowcount,
                        executemany=st.executemany,
                        error=None if st.error is None else RuntimeError(st.error),
                        callsite=st.callsite,
                        stack=st.stack,
                        scope=replay,
                        adapter=st.adapter,
                        dialect=st.dialect,
                        timestamp=self.started_at + st.offset,
                        orm=st.orm,
                        kind=st.kind,  # type: ignore[arg-type]
                    )
                )
            replay.ended = time.monotonic()
            detector.scope_end(replay)
            self._findings = found
        return list(self._findings)


class _Open:
    __slots__ = ("db", "dropped", "events")

    def __init__(self) -> None:
        self.events: list[QueryEvent] = []
        self.dropped = 0
        self.db = 0.0


def _values_hash(sql: str, parameters: Any) -> int:
    """A hash of the statement's values; never raises."""
    try:
        if parameters is None:
            return hash(sql)
        if isinstance(parameters, dict):
            return hash((sql, tuple(parameters.items())))
        if isinstance(parameters, list):
            return hash((sql, tuple(parameters)))
        return hash((sql, parameters))
    except TypeError:
        return hash((sql, repr(parameters)[:4096]))


class RequestRecorder:
    """A sink keeping the latest ``max_requests`` units of work (outermost scopes).

    Attach it beside the other sinks: ``dbopt.instrument(engine, recorder)``;
    the web integrations open the request scopes. Statements of nested
    scopes count for their outermost scope; statements outside any scope
    are not recorded (``unscoped`` counts them), nor are scopes that ran no
    statement.

    Memory is bounded: at most ``max_requests`` requests and about
    ``max_bytes`` bytes of them (texts counted at their length, each cut at
    ``max_text`` characters, plus fixed per-request and per-statement
    overheads); the oldest go first. At most ``max_statements`` statements
    are kept per request (the others are counted). Open scopes hold their
    statements until they end; at most ``max_open`` are tracked at once.

    ``params``: ``"redact"`` (default) keeps no parameter values, only a hash
    of them; ``"keep"`` keeps them (counted in bytes) for a dashboard that
    opts in to show them.
    """

    def __init__(
        self,
        *,
        max_requests: int = 10_000,
        max_statements: int = 200,
        max_bytes: int = 64 * 1024 * 1024,
        max_text: int = 8192,
        max_open: int = 10_000,
        params: str = "redact",
    ) -> None:
        if min(max_requests, max_statements, max_bytes, max_text, max_open) < 1:
            raise ConfigurationError("the recorder's bounds must be positive")
        self.max_requests = max_requests
        self.max_statements = max_statements
        self.max_bytes = max_bytes
        self.max_text = max_text
        self.max_open = max_open
        self.params = check_policy(params)
        #: Bytes the kept requests are counted for.
        self.nbytes = 0
        #: Requests evicted so far.
        self.evicted = 0
        #: Statements seen outside any scope.
        self.unscoped = 0
        self._open: dict[Scope, _Open] = {}
        self._done: deque[RecordedRequest] = deque()
        self._lock = threading.Lock()
        self.started_at = time.time()

    # The query path

    def __call__(self, event: QueryEvent) -> None:
        node = event.scope
        if node is None:
            self.unscoped += 1
            return
        while node.parent is not None:
            node = node.parent
        current = self._open.get(node)
        if current is None:
            if node.ended is not None:
                return
            with self._lock:
                current = self._open.get(node)
                if current is None:
                    if len(self._open) >= self.max_open:
                        return
                    current = self._open[node] = _Open()
        current.db += event.duration
        if len(current.events) < self.max_statements:
            current.events.append(event)
        else:
            current.dropped += 1

    def scope_end(self, scope: Scope) -> None:
        """Record ``scope`` if it is an outermost scope that ran statements."""
        if scope.parent is not None:
            return
        with self._lock:
            current = self._open.pop(scope, None)
        if current is None:
            return
        wall = scope.duration or 0.0
        started_at = time.time() - (time.monotonic() - scope.started)
        keep = self.params == "keep"
        size = _REQUEST_BYTES
        kept = []
        for event in current.events:
            sql = event.sql if len(event.sql) <= self.max_text else event.sql[: self.max_text]
            params = event.parameters if keep else None
            size += _STATEMENT_BYTES + len(sql)
            if params is not None:
                size += estimate_size(params)
            kept.append(
                RecordedStatement(
                    sql=sql,
                    fingerprint=event.fingerprint,
                    kind=event.kind,
                    duration=event.duration,
                    rowcount=event.rowcount,
                    error=None if event.error is None else type(event.error).__name__,
                    callsite=event.callsite,
                    stack=event.stack,
                    orm=event.orm,
                    dialect=event.dialect,
                    adapter=event.adapter,
                    executemany=event.executemany,
                    offset=max(0.0, event.timestamp - started_at),
                    values=_values_hash(event.sql, event.parameters),
                    parameters=params,
                )
            )
        record = RecordedRequest(
            id=scope.id,
            name=scope.name,
            tags=dict(scope.tags),
            started_at=started_at,
            wall_s=wall,
            db_s=current.db,
            statements=tuple(kept),
            dropped=current.dropped,
            nbytes=size,
        )
        with self._lock:
            self._done.append(record)
            self.nbytes += size
            while self._done and (
                len(self._done) > self.max_requests or self.nbytes > self.max_bytes
            ):
                old = self._done.popleft()
                self.nbytes -= old.nbytes
                self.evicted += 1

    # Reading

    def requests(self) -> list[RecordedRequest]:
        """The recorded requests, newest first (a snapshot)."""
        with self._lock:
            out = list(self._done)
        out.reverse()
        return out

    def get(self, request_id: int) -> RecordedRequest | None:
        """The recorded request with ``id``, or None (never recorded, or evicted)."""
        with self._lock:
            for record in reversed(self._done):
                if record.id == request_id:
                    return record
        return None

    def __len__(self) -> int:
        return len(self._done)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.requests())

    def clear(self) -> None:
        """Forget every recorded request (open scopes are kept)."""
        with self._lock:
            self._done.clear()
            self.nbytes = 0

    def __repr__(self) -> str:
        return (
            f"<RequestRecorder requests={len(self._done)} bytes={self.nbytes} "
            f"max_requests={self.max_requests} max_bytes={self.max_bytes}>"
        )
