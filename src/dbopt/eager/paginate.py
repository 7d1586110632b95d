"""Keyset pagination for SQLAlchemy statements: the fix for an unbounded list query.

``paginate(stmt, order_by=(Post.created, Post.id), after=cursor, limit=50)``
returns ``stmt`` ordered by those keys, restricted to the rows after
``cursor`` (the key values of the last row of the previous page) and limited
to ``limit`` rows. Unlike ``OFFSET``, a page never skips or repeats a row
when rows are inserted or deleted before it, and its cost does not grow with
the page number. :func:`cursor_of` gives the next cursor from a row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, inspect, or_
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import ColumnElement, UnaryExpression

from dbopt.errors import ConfigurationError

__all__ = ["cursor_of", "paginate"]


def _key(term: Any) -> tuple[ColumnElement[Any], bool]:
    """``(column, descending)`` of one ``order_by`` term (a column or ``col.desc()``/``.asc()``)."""
    if isinstance(term, UnaryExpression) and term.modifier in (
        operators.desc_op,
        operators.asc_op,
    ):
        return term.element, term.modifier is operators.desc_op
    expression = getattr(term, "__clause_element__", None)
    column = expression() if expression is not None else term
    if not isinstance(column, ColumnElement):
        raise ConfigurationError(f"paginate: cannot order by {term!r}")
    return column, False


def _unique(columns: Sequence[ColumnElement[Any]]) -> bool:
    """Whether the columns include the whole primary key of one table (a unique tie-breaker)."""
    tables: dict[Any, set[str]] = {}
    for column in columns:
        table = getattr(column, "table", None)
        if table is not None and getattr(column, "primary_key", False):
            tables.setdefault(table, set()).add(str(column.key))
    return any(
        keys >= {c.key for c in table.primary_key.columns} and table.primary_key.columns
        for table, keys in tables.items()
    )


def paginate(
    stmt: Any,
    *,
    order_by: Sequence[Any],
    after: Sequence[Any] | None = None,
    limit: int,
    unique: bool = False,
) -> Any:
    """One page of ``stmt`` by keyset: ordered by ``order_by``, after ``after``, ``limit`` rows.

    ``order_by`` is a sequence of columns (mapped attributes or Core columns,
    ``.desc()`` for descending) whose last terms make each row unique: the
    primary key by default (a ConfigurationError names the fix otherwise);
    ``unique=True`` vouches for another unique, NOT NULL tie-breaker. The
    keys must not be NULL. ``after`` is :func:`cursor_of` the last row of the
    previous page (None for the first page). Any ``ORDER BY`` already on
    ``stmt`` is replaced.
    """
    if not order_by:
        raise ConfigurationError("paginate: order_by needs at least one column")
    if not isinstance(limit, int) or limit < 1:
        raise ConfigurationError(f"paginate: limit must be an int >= 1, got {limit!r}")
    keys = [_key(term) for term in order_by]
    columns = [column for column, _ in keys]
    if not unique and not _unique(columns):
        raise ConfigurationError(
            "paginate: order_by must end with a unique tie-breaker, such as the primary key "
            "(order_by=(Post.created, Post.id)), or rows with equal keys are skipped or "
            "repeated between pages; pass unique=True if the columns are unique and NOT NULL"
        )
    page = stmt.order_by(None).order_by(*(c.desc() if d else c.asc() for c, d in keys))
    if after is not None:
        values = tuple(after)
        if len(values) != len(keys):
            raise ConfigurationError(
                f"paginate: the cursor has {len(values)} values for {len(keys)} order_by terms"
            )
        # (k1 > v1) OR (k1 = v1 AND k2 > v2) OR ...: any mix of directions
        clauses = []
        for i, ((column, descending), value) in enumerate(zip(keys, values, strict=True)):
            beyond = column < value if descending else column > value
            equal = [keys[j][0] == values[j] for j in range(i)]
            clauses.append(and_(*equal, beyond) if equal else beyond)
        page = page.where(or_(*clauses))
    return page.limit(limit)


def cursor_of(row: Any, order_by: Sequence[Any]) -> tuple[Any, ...]:
    """The cursor after ``row`` (an ORM object or a ``Row``) for the same ``order_by``."""
    out: list[Any] = []
    for term in order_by:
        column, _ = _key(term)
        name = str(column.key)
        if hasattr(row, "_mapping"):
            mapping = row._mapping
            out.append(mapping[column] if column in mapping else mapping[name])
            continue
        attribute = name
        mapper = inspect(type(row), raiseerr=False)
        if mapper is not None:
            try:
                attribute = mapper.get_property_by_column(column).key
            except Exception:  # noqa: BLE001 - not mapped by this class: use the column's name
                attribute = name
        out.append(getattr(row, attribute))
    return tuple(out)
