"""``eager.fit_loader``: the loader option that fits a parent statement, and why.

The rules are those of :mod:`dbopt.core.nplusone_fixes`: ``selectinload``
for collections, and for a many-to-one whenever the statement has
``GROUP BY``, ``DISTINCT`` or a set operation (a join would fail there, e.g.
PostgreSQL's ``GroupingError``, or change the result); ``joinedload`` for a
many-to-one under a plain ``SELECT``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Mapper, RelationshipProperty
from sqlalchemy.sql.selectable import CompoundSelect

from dbopt.core.nplusone_fixes import LoaderFit, StatementShape, fit_loader_option
from dbopt.errors import ConfigurationError

__all__ = ["LoaderFit", "StatementShape", "fit_loader", "statement_shape"]


def statement_shape(stmt: Any) -> StatementShape:
    """What in ``stmt`` (a ``select()`` or legacy ``Query``) rules out a ``joinedload``.

    SQLAlchemy has no public accessor for a statement's ``GROUP BY`` or
    ``DISTINCT``; the attributes read here are stable from 1.4 to 2.1, and a
    statement that lacks them is compiled and its SQL text read instead.
    """
    if isinstance(stmt, CompoundSelect):
        return StatementShape(set_operation=True, limit=stmt._limit_clause is not None)
    try:
        group_by = bool(stmt._group_by_clauses)
        distinct = bool(stmt._distinct) or bool(getattr(stmt, "_distinct_on", ()))
        limit = stmt._limit_clause is not None or getattr(stmt, "_fetch_clause", None) is not None
    except AttributeError:
        from dbopt.core.nplusone_fixes import sql_shape

        return sql_shape(str(stmt))
    set_operation = False
    froms = getattr(stmt, "get_final_froms", None)
    for from_ in froms() if froms is not None else ():
        element = getattr(from_, "element", None)
        if isinstance(element, CompoundSelect):
            set_operation = True
    return StatementShape(
        group_by=group_by, distinct=distinct, set_operation=set_operation, limit=limit
    )


def fit_loader(stmt: Any, relationship: Any) -> LoaderFit:
    """The loader for ``relationship`` (``Post.author``) of the objects ``stmt`` loads.

    ``fit.option("Post.author")`` is the text, ``fit.loader`` ``"selectin"``
    or ``"joined"``, ``fit.reason`` why.
    """
    prop = _relationship_property(relationship)
    return fit_loader_option(bool(prop.uselist), statement_shape(stmt))


def _relationship_property(relationship: Any) -> RelationshipProperty[Any]:
    prop = getattr(relationship, "property", relationship)
    if isinstance(prop, RelationshipProperty):
        return prop
    try:
        info = inspect(relationship)
    except Exception as exc:
        raise ConfigurationError(f"{relationship!r} is not a relationship attribute") from exc
    if isinstance(info, Mapper):
        raise ConfigurationError(f"{relationship!r} is a mapped class, not a relationship")
    raise ConfigurationError(f"{relationship!r} is not a relationship attribute")
