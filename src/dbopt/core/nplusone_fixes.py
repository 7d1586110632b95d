"""Which fix an N+1 finding suggests, and why: loader options that run, aggregate fixes.

A lazy relationship load repeated per parent is fixed by a loader option on
the query that loads the parents. Which one depends on that query:

* ``selectinload`` runs a second ``SELECT ... WHERE key IN (...)``; it works
  whatever the parent statement is (``GROUP BY``, ``DISTINCT``, ``UNION``,
  ``LIMIT``) and never multiplies its rows, so it is the choice for
  collections and for any parent statement that is not a plain ``SELECT``.
* ``joinedload`` adds a ``LEFT OUTER JOIN`` to the parent statement: one
  query less, but the joined columns must then fit the statement. Under
  ``GROUP BY`` they are not grouped (PostgreSQL: ``GroupingError``), under
  ``DISTINCT`` or a set operation they change what is distinct or unioned,
  and a joined collection multiplies the rows (a ``LIMIT`` then counts joined
  rows; two collections give a Cartesian product). It is suggested only for
  a many-to-one or one-to-one under a plain ``SELECT``.

A per-row aggregate (``COUNT(*)`` of a ``WriteOnlyMapped`` or dynamic
relationship for each parent) has no loader option: it gets one grouped
query, or a ``column_property``/``with_expression``.

:func:`dbopt.eager.fit_loader` applies the same rules to a statement you
hold; the detector applies them to the SQL text of the parent query when it
saw one, and otherwise says when to switch. Statements of Django's ORM get
Django's fixes (:func:`django_fix`): ``select_related`` for a foreign key,
``prefetch_related`` for a collection, a ``Prefetch`` with a queryset where
the loop filters, ``annotate(Count(...))`` for a count per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LoaderFit",
    "StatementShape",
    "aggregate_fix",
    "django_fix",
    "fit_loader_option",
    "is_aggregate",
    "key_column",
    "shape_text",
    "sql_shape",
]


@dataclass(frozen=True, slots=True)
class StatementShape:
    """What in a parent statement decides between ``joinedload`` and ``selectinload``."""

    group_by: bool = False
    distinct: bool = False
    set_operation: bool = False
    limit: bool = False
    #: Collections the statement already loads with ``joinedload``.
    joined_collections: int = 0

    def obstacles(self, collection: bool) -> list[str]:
        """Why ``joinedload`` would break or multiply rows here (empty: it fits)."""
        found: list[str] = []
        if self.group_by:
            found.append("the query has GROUP BY (the joined columns are not grouped)")
        if self.distinct:
            found.append("the query is DISTINCT (the joined columns would change what is distinct)")
        if self.set_operation:
            found.append("the query is a UNION/INTERSECT/EXCEPT")
        if collection and self.limit:
            found.append("the query has LIMIT and a joined collection multiplies its rows")
        if collection and self.joined_collections:
            found.append(
                "the query already joins a collection (two give a Cartesian product of rows)"
            )
        return found


@dataclass(frozen=True, slots=True)
class LoaderFit:
    """The loader chosen for one relationship of one parent statement, and the reason."""

    loader: str  # "selectin" or "joined"
    reason: str

    def option(self, relationship: str) -> str:
        """``"selectinload(User.posts)"``."""
        return f"{self.loader}load({relationship})"


def fit_loader_option(collection: bool, shape: StatementShape | None) -> LoaderFit:
    """The loader for a relationship (``collection``: one-to-many/many-to-many) of a parent.

    ``shape`` is the parent statement's shape, or None when it is unknown.
    """
    if collection:
        obstacles = shape.obstacles(True) if shape is not None else []
        why = (
            "selectinload: a collection loaded by one extra SELECT ... IN (parent keys); "
            "a joinedload would repeat each parent row once per child"
        )
        if obstacles:
            why += " (and here " + "; ".join(obstacles) + ")"
        return LoaderFit("selectin", why)
    if shape is None:
        return LoaderFit(
            "joined",
            "joinedload: a many-to-one adds one LEFT OUTER JOIN and no query; if the query "
            "that loads the parents has GROUP BY, DISTINCT or a UNION, use selectinload "
            "instead (the joined columns would not fit it)",
        )
    obstacles = shape.obstacles(False)
    if obstacles:
        return LoaderFit(
            "selectin",
            "selectinload, not joinedload: " + "; ".join(obstacles) + ", so a join would "
            "fail or change its result; selectinload runs one SELECT ... IN (keys) beside it",
        )
    return LoaderFit(
        "joined",
        "joinedload: a many-to-one under a plain SELECT, one LEFT OUTER JOIN and no extra query",
    )


_WORD = r"[A-Za-z_][A-Za-z0-9_$]*"
_QUOTED = r'(?:"[^"]+"|' + _WORD + r")"
_STRINGS = re.compile(r"'(?:[^']|'')*'")
_AGGREGATE_HEAD = re.compile(
    r"^\s*select\s+(?:count|sum|avg|min|max)\s*\([^()]*\)(?:\s+as\s+" + _QUOTED + r")?\s+from\b",
    re.IGNORECASE,
)
_KEY_COLUMN = re.compile(
    r"(?:=\s*("
    + _QUOTED
    + r")\.("
    + _QUOTED
    + r"))|(?:("
    + _QUOTED
    + r")\.("
    + _QUOTED
    + r")\s*=)",
)
_TOP_LEVEL = re.compile(r"\b(group\s+by|distinct|union|intersect|except|limit)\b", re.IGNORECASE)


def _top_level(sql: str) -> str:
    """``sql`` with string literals and parenthesised sub-statements blanked out."""
    text = _STRINGS.sub("''", sql)
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(char)
            continue
        out.append(" ")
    return "".join(out)


def shape_text(sql: str, limit: int = 4096) -> str:
    """``sql``, or for a longer text a bounded stand-in with the same top-level shape.

    The head and the tail (where ``DISTINCT``, ``GROUP BY``, ``UNION`` and
    ``LIMIT`` stand) are blanked separately, so a parenthesis the cut leaves
    open cannot hide the tail. A tail that starts inside a sub-statement may
    show its clauses as top level: that can only turn a ``joinedload`` into a
    ``selectinload``, which runs on any parent statement.
    """
    if len(sql) <= limit:
        return sql
    half = limit // 2
    return _top_level(sql[:half]) + " " + _top_level(sql[-half:])


def sql_shape(sql: str) -> StatementShape:
    """The shape of a parent statement from its SQL text (top level only)."""
    found = {match.group(1).lower().split()[0] for match in _TOP_LEVEL.finditer(_top_level(sql))}
    return StatementShape(
        group_by="group" in found,
        distinct="distinct" in found,
        set_operation=bool(found & {"union", "intersect", "except"}),
        limit="limit" in found,
    )


def is_aggregate(sql: str) -> bool:
    """Whether ``sql`` starts as a lone aggregate (``SELECT count(*) ... FROM``); cheap."""
    return _AGGREGATE_HEAD.match(sql) is not None


def aggregate_fix(sql: str, entity: str | None) -> str | None:
    """The fix for an aggregate run once per parent (``SELECT count(*) FROM ... WHERE fk = ?``).

    None when ``sql`` is not a lone aggregate without ``GROUP BY``.
    """
    if not _AGGREGATE_HEAD.match(sql) or sql_shape(sql).group_by:
        return None
    key = _KEY_COLUMN.search(_STRINGS.sub("''", sql))
    if key is not None:
        table, column = (
            (key.group(1), key.group(2)) if key.group(1) else (key.group(3), key.group(4))
        )
        column_ref = f"{table.strip(chr(34))}.{column.strip(chr(34))}"
    else:
        column_ref = "<key column>"
    model = entity or "<Child>"
    return (
        f"one grouped query instead of one aggregate per parent: "
        f"select({column_ref}, func.count()).where({column_ref}.in_(keys))"
        f".group_by({column_ref}) -> dict (parents without a row count 0); or map it once: "
        f"a column_property(select(func.count()).where(...).correlate_except({model})"
        ".scalar_subquery()) on the parent, or query_expression() + "
        "options(with_expression(...)) on the query that loads the parents"
    )


_WHERE = re.compile(r"\bwhere\b", re.IGNORECASE)


def key_column(sql: str) -> str | None:
    """The column the first ``WHERE`` condition compares with a value (``"name"``), if any."""
    text = _STRINGS.sub("''", sql)
    where = _WHERE.search(text)
    if where is None:
        return None
    key = _KEY_COLUMN.search(text, where.end())
    if key is None:
        return None
    column = key.group(2) if key.group(1) else key.group(4)
    return column.strip('"')


#: Django strategies fixed by one queryset method on the relation's path: (method, why).
_DJANGO_PLAIN = {
    "django:select_related": (
        "select_related",
        "a foreign key (or one-to-one) is fetched by a JOIN in that same query, so no query "
        "runs per row (Django has no identity map: rows sharing one value each run their "
        "own query)",
    ),
    "django:prefetch_related": (
        "prefetch_related",
        "a reverse foreign key or a many-to-many is a collection, which select_related "
        "cannot follow; prefetch_related loads it for every row in one more query (WHERE "
        "key IN (...))",
    ),
    "django:prefetch_generic": (
        "prefetch_related",
        "a generic foreign key names its model per row, so select_related cannot join it; "
        "prefetch_related loads the objects with one query per content type",
    ),
}


def django_fix(
    strategy: str, relationship: str | None, entity: str | None, target: str | None
) -> tuple[str | None, str]:
    """``(loader_option, suggestion)`` for an N+1 of Django ORM statements.

    ``strategy`` is what the Django integration found the statement doing
    (``"django:select_related"``, ``"django:prefetch_related"``,
    ``"django:prefetch_filtered"``, ``"django:prefetch_generic"``,
    ``"django:prefetch_objects"``, ``"django:count:<lookup>"`` or
    ``"django:query"``); ``relationship`` is ``"Post.author"``.
    """
    owner, _, path = (relationship or "").partition(".")
    owner = owner or entity or "<Model>"
    queryset = f"the queryset that loads the {owner} objects"
    plain = _DJANGO_PLAIN.get(strategy)
    if plain is not None and path:
        option = f'{plain[0]}("{path}")'
        return option, f"add .{option} to {queryset}; why: {plain[1]}"
    if strategy == "django:deferred" and path:
        return None, (
            f"load {owner}.{path} with the rows: drop it from the .defer(...) of {queryset} "
            f"or add it to its .only(...) (through a select_related path, e.g. "
            f'"<fk>__{path}"); why: a deferred field is loaded by refresh_from_db, one '
            "query per object that reads it"
        )
    if strategy == "django:prefetch_objects" and path:
        option = f'prefetch_related_objects(rows, "{path}")'
        return option, (
            f"call {option} once with all the {owner} objects, before the loop (or "
            f'.prefetch_related("{path}") on the queryset that loads them, with a chunk_size '
            "of more than one under iterator()); why: prefetching one object at a time runs "
            "the prefetch query once per object"
        )
    if strategy == "django:prefetch_filtered" and path:
        child = target or "<Related>"
        option = f'prefetch_related(Prefetch("{path}", queryset={child}.objects.filter(...)))'
        return option, (
            f"add .{option} to {queryset}, with the filter, order or slice the loop "
            f'applies (to_attr="..." keeps it beside the plain relation), and read '
            f"that attribute in the loop; why: a filtered related manager runs a query per "
            "row and ignores a plain prefetch_related, while a Prefetch loads the filtered "
            "rows for every parent in one query"
        )
    if strategy.startswith("django:count:") and path:
        lookup = strategy.rpartition(":")[2]
        name = f"{lookup}_count"
        option = f'annotate({name}=Count("{lookup}"))'
        return option, (
            f"add .{option} to {queryset} (from django.db.models import Count) and read "
            f"{owner.lower()}.{name} instead of {owner.lower()}.{path}.count(); why: one "
            "grouped count in the parent query instead of a COUNT(*) per row (with "
            "distinct=True when the queryset already joins another collection; Django does "
            "not apply Meta.ordering to a GROUP BY query, so keep the order with .order_by())"
        )
    model = entity or "<Model>"
    if path:
        option = f'prefetch_related("{path}")'
        return option, (
            f"the loop filters {model} by one {owner} per row: add .{option} to "
            f"{queryset} and read {owner.lower()}.{path}.all() in the loop, or load them "
            f"all at once ({model}.objects.filter(<fk>__in=...)) and group them in a dict"
        )
    return None, (
        f"load the {model} rows for every key in one query before the loop "
        f"({model}.objects.in_bulk(keys), or .filter(<field>__in=keys)) and look them up "
        "in a dict; if the keys come from a foreign key of the rows you loop over, "
        "select_related/prefetch_related that relation instead"
    )
