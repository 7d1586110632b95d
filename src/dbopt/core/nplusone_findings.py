"""What the N+1 detector reports: typed findings, their fixes, and the error to raise."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from dbopt.core.events import CallSite
from dbopt.core.fingerprint import mask_literals
from dbopt.core.nplusone_fixes import (
    aggregate_fix,
    django_fix,
    fit_loader_option,
    key_column,
    sql_shape,
)
from dbopt.errors import ReportedError

if TYPE_CHECKING:
    from dbopt.core.events import OrmContext, QueryEvent
    from dbopt.core.scope import Scope

__all__ = [
    "KIND_LABELS",
    "FindingKind",
    "NPlusOneError",
    "NPlusOneFinding",
    "NPlusOneWarning",
    "column_load_fix",
    "deliver",
    "make_finding",
    "n_plus_one_fix",
    "repeated_query_fix",
]

#: What a finding is about.
FindingKind: TypeAlias = Literal[
    "n_plus_one",
    "repeated_query",
    "write_loop",
    "unbounded_query",
    "cartesian_product",
    "unused_eager_load",
]

#: How a finding of each kind is named in messages.
KIND_LABELS: dict[str, str] = {
    "n_plus_one": "N+1",
    "repeated_query": "repeated query",
    "write_loop": "write loop",
    "unbounded_query": "unbounded query",
    "cartesian_product": "Cartesian product",
    "unused_eager_load": "unused eager load",
}

_SQL_IN_MESSAGE = 300


@dataclass(frozen=True, slots=True)
class NPlusOneFinding:
    """One problem found in one scope; data first, ``str()`` for people.

    ``count`` is how many times the statement ran (from that call-site key,
    for an N+1; with the same values, for a repeated query). ``callsite`` is
    the application line that issued the statements (for a lazy load, the
    line that read the attribute), ``stack`` the frames outwards from it, and
    ``callsites`` every distinct line that issued them (a repeated query may
    come from several). ``relationship`` (``"User.posts"``) and
    ``loader_option`` (``"selectinload(User.posts)"``) are set for
    SQLAlchemy lazy loads.
    """

    kind: FindingKind
    fingerprint: str
    sql: str
    count: int
    callsite: CallSite | None
    stack: tuple[CallSite, ...]
    callsites: tuple[CallSite, ...]
    relationship: str | None
    loader_option: str | None
    suggestion: str
    scope: str | None
    scope_path: str | None

    def describe(self) -> str:
        """Several lines: what, where, the statement, and the fix."""
        where = f" from {', '.join(map(str, self.callsites))}" if self.callsites else ""
        scope = f" [scope {self.scope_path}]" if self.scope_path else ""
        if self.kind == "n_plus_one":
            load = (
                "column load"
                if self.loader_option and "undefer(" in self.loader_option
                else "lazy load"
            )
            what = f" of {self.relationship} ({load})" if self.relationship else ""
            head = f"N+1: {self.count} queries{what}{where}{scope}"
        elif self.kind == "repeated_query":
            head = f"repeated query: {self.count} identical queries{where}{scope}"
        elif self.kind == "write_loop":
            head = f"write loop: {self.count} single-row writes{where}{scope}"
        elif self.kind == "unused_eager_load":
            head = (
                f"unused eager load of {self.relationship}: loaded for {self.count} object(s), "
                f"never read{where}{scope}"
            )
        elif self.kind == "unbounded_query":
            head = f"unbounded query: {self.count} run(s) with no LIMIT{where}{scope}"
        else:
            what = f" of {self.relationship}" if self.relationship else ""
            head = (
                f"{KIND_LABELS.get(self.kind, self.kind)}{what}: {self.count} run(s){where}{scope}"
            )
        sql = " ".join(self.sql.split())
        if len(sql) > _SQL_IN_MESSAGE:
            sql = sql[:_SQL_IN_MESSAGE] + "..."
        return f"{head}\n    {sql}\n    fix: {self.suggestion}"

    def __str__(self) -> str:
        return self.describe()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (call sites as ``"file:line in function"`` strings)."""
        return {
            "kind": self.kind,
            "fingerprint": self.fingerprint,
            "sql": self.sql,
            "count": self.count,
            "callsite": str(self.callsite) if self.callsite else None,
            "stack": [str(frame) for frame in self.stack],
            "callsites": [str(frame) for frame in self.callsites],
            "relationship": self.relationship,
            "loader_option": self.loader_option,
            "suggestion": self.suggestion,
            "scope": self.scope,
            "scope_path": self.scope_path,
        }


class NPlusOneWarning(ReportedError, UserWarning):  # noqa: N818 - a warning category
    """The warning ``action="warn"`` issues, located at the finding's call site.

    With warnings turned into errors (``-W error``, pytest's
    ``filterwarnings = error``) it is raised when the scope ends.
    """


class NPlusOneError(ReportedError):
    """Raised when a scope ends, by a detector with ``action="raise"``.

    ``findings`` holds every finding of the scope; the message lists them all.
    """

    def __init__(self, findings: Sequence[NPlusOneFinding]) -> None:
        self.findings = tuple(findings)
        path = self.findings[0].scope_path if self.findings else None
        head = f"{len(self.findings)} N+1 finding(s)" + (f" in scope {path}" if path else "")
        super().__init__("\n".join([head + ":", *(f.describe() for f in self.findings)]))


def n_plus_one_fix(
    orm: OrmContext | None, sql: str | None = None, parent_sql: str | None = None
) -> tuple[str | None, str | None, str]:
    """``(relationship, loader_option, suggestion)`` for an N+1 of statements like ``orm``.

    A lazy collection gets ``selectinload``; a lazy many-to-one (or
    one-to-one) ``joinedload``, unless the parent statement (``parent_sql``,
    when known) has GROUP BY, DISTINCT or a set operation, where a join would
    fail or change its result: then ``selectinload``. A lone aggregate per
    parent (``sql``: ``SELECT count(*) ... WHERE fk = ?``) gets one grouped
    query or a ``column_property``; other ORM queries or plain SQL a batched
    query. The suggestion says why that option (see
    :mod:`dbopt.core.nplusone_fixes`). Django's statements get Django's
    fixes (:func:`~dbopt.core.nplusone_fixes.django_fix`).
    """
    if orm is not None and orm.strategy is not None and orm.strategy.startswith("django:"):
        option, suggestion = django_fix(orm.strategy, orm.relationship, orm.entity, orm.target)
        named = orm.kind in ("lazy_load", "column_load")
        return (orm.relationship if named else None), option, suggestion
    if orm is not None and orm.merge is not None:
        return merge_fix(orm, sql)
    if orm is not None and orm.kind == "column_load":
        return column_load_fix(orm)
    if orm is not None and orm.kind == "lazy_load" and orm.relationship:
        relationship = orm.relationship
        shape = sql_shape(parent_sql) if parent_sql else None
        fit = fit_loader_option(orm.uselist is not False, shape)
        option = fit.option(relationship)
        owner = orm.entity or relationship.partition(".")[0]
        return (
            relationship,
            option,
            f"add .options({option}) to the query that loads the {owner} objects "
            f"(or chain it onto the loader option that loads them); why: {fit.reason}",
        )
    aggregate = aggregate_fix(sql, orm.entity if orm is not None else None) if sql else None
    if aggregate is not None:
        return None, None, aggregate
    if orm is not None and orm.kind == "query" and orm.entity:
        column = key_column(sql) if sql else None
        where = f"{orm.entity}.{column}" if column else "<column>"
        return (
            None,
            None,
            f"load the {orm.entity} rows for every key in one query before the loop "
            f"(select({orm.entity}).where({where}.in_(keys))) and look them up in a dict",
        )
    return (
        None,
        None,
        "run one query for every key before the loop (WHERE <column> IN (...), or "
        "= ANY(%s) on PostgreSQL) and look the rows up in a dict",
    )


def merge_fix(orm: OrmContext, sql: str | None) -> tuple[str | None, str | None, str]:
    """``(relationship, loader_option, suggestion)`` for loads of ``merge()`` calls in a loop.

    Such a group counts ``merge()`` calls, not statements (the loads of one
    call are its own cost): each merged object was looked up by its key, or
    had a relationship loaded, in its own ``merge()``. Objects already in the
    session are not loaded again, so the fix is one query for all of them
    before the loop, kept referenced (the identity map holds objects weakly).
    """
    entity = orm.entity or "<Model>"
    keep = (
        "keep the result referenced while merging, so that merge() finds each "
        "object in the session instead of loading it"
    )
    if orm.kind == "lazy_load" and orm.relationship:
        option = f"selectinload({orm.relationship})"
        return (
            orm.relationship,
            option,
            f"merge() in a loop loads {orm.relationship} of each merged {entity} object: "
            f"load the existing {entity} rows for every key in one query before the loop "
            f"(select({entity}).where(...in_(keys)).options({option})) and {keep}",
        )
    column = key_column(sql) if sql else None
    where = f"{entity}.{column}" if column else f"{entity}.<key>"
    return (
        None,
        None,
        f"merge() in a loop loads each {entity} row by its key: load the existing rows "
        f"for every key in one query before the loop (select({entity}).where({where}"
        f".in_(keys))) and {keep}",
    )


def column_load_fix(orm: OrmContext) -> tuple[str | None, str | None, str]:
    """``(attributes, loader_option, suggestion)`` for per-object loads of columns.

    Deferred columns (``deferred=True``, ``defer()``, ``load_only()``, also
    under ``joinedload(...).load_only(...)``) get ``undefer``; an expired
    object (after ``commit()``, ``expire()``) is reloaded whole, and the fix
    is not to expire it, or to reload the rows in one query.
    """
    owner = orm.entity or "the"
    if orm.strategy == "refresh":
        return (
            None,
            None,
            f"session.refresh() runs one query per {owner} object; reload them together "
            f"(select({owner}).where(<key>.in_(keys)).execution_options(populate_existing=True), "
            "with the loader options of the attributes to refresh), or skip the refresh where "
            "the values are known (a new object's collections are empty after its flush)",
        )
    if orm.strategy == "expired":
        return (
            None,
            None,
            f"each {owner} object was expired (by commit() with expire_on_commit=True, or "
            "expire()) and reloads its columns on first access; create the session with "
            "expire_on_commit=False, read the attributes before the commit, or reload all rows "
            f"in one query (select({owner}).where(<key>.in_(keys))"
            ".execution_options(populate_existing=True))",
        )
    attributes = orm.relationship or f"{owner}.<column>"
    first = attributes.split(", ")
    option = ", ".join(f"undefer({name})" for name in first)
    return (
        attributes,
        option,
        f"the column(s) {attributes} are deferred (deferred=True, defer() or load_only()) and "
        f"load one object at a time; add .options({option}) to the query that loads the "
        f"{owner} objects (chained onto the relationship option when they come through one: "
        f"joinedload(...).undefer(...)), or remove them from defer()/load_only()",
    )


def repeated_query_fix(scope_name: str | None) -> str:
    """The suggestion for a statement repeated with the same values in one scope."""
    lifetime = f"the scope '{scope_name}'" if scope_name else "the scope"
    return (
        f"keep the first result (in a variable, or a cache that lives as long as {lifetime}) "
        "instead of running the same query again; no write came in between"
    )


def make_finding(
    kind: FindingKind,
    event: QueryEvent,
    count: int,
    scope: Scope,
    suggestion: str,
    *,
    stack: tuple[CallSite, ...] | None = None,
    callsites: tuple[CallSite, ...] | None = None,
    relationship: str | None = None,
    option: str | None = None,
    keep: bool = False,
) -> NPlusOneFinding:
    """A finding about ``event`` (literals masked unless ``keep``), located at ``stack``.

    ``stack`` defaults to the event's own, ``callsites`` to its innermost frame.
    """
    if stack is None:
        stack = event.stack
    if callsites is None:
        callsites = (stack[0],) if stack else ()
    return NPlusOneFinding(
        kind=kind,
        fingerprint=event.fingerprint,
        sql=event.sql if keep else mask_literals(event.sql),
        count=count,
        callsite=stack[0] if stack else None,
        stack=stack,
        callsites=callsites,
        relationship=relationship,
        loader_option=option,
        suggestion=suggestion,
        scope=scope.name,
        scope_path=scope.path,
    )


def deliver(
    findings: Sequence[NPlusOneFinding],
    action: str | Callable[[NPlusOneFinding], None],
    logger: logging.Logger,
) -> None:
    """Hand ``findings`` over as ``action`` says: raise one error, or a warning, a log
    record or a call per finding (the warning located at the finding's call site)."""
    if action == "raise":
        raise NPlusOneError(findings)
    for finding in findings:
        if action == "log":
            logger.warning("%s", finding, extra={"finding": finding.to_dict()})
        elif action == "warn":
            site = finding.callsite
            warnings.warn_explicit(
                NPlusOneWarning(finding.describe()),
                NPlusOneWarning,
                site.file if site else "<dbopt>",
                site.line if site else 0,
            )
        elif callable(action):
            action(finding)
