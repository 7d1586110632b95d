"""``eager.load``: loader options from dotted relationship paths.

``load(select(Post), "author", "comments.author")`` is
``select(Post).options(joinedload(Post.author),
selectinload(Post.comments).joinedload(Comment.author))``: collections get
``selectinload``, scalar relationships (many-to-one, one-to-one)
``joinedload``, unless ``loaders`` says otherwise or the statement has
``GROUP BY``, ``DISTINCT`` or a set operation, where a join would fail
(PostgreSQL's ``GroupingError``) or change the result: there a scalar
relationship gets ``selectinload`` too (:func:`dbopt.eager.fit_loader`). Paths are checked against
the mappers when the options are built, so a typo fails at once, naming the
relationships that exist.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypeAlias, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm import (
    Mapper,
    RelationshipProperty,
    immediateload,
    joinedload,
    selectinload,
    subqueryload,
)
from sqlalchemy.orm.interfaces import LoaderOption
from typing_extensions import Self

from dbopt.core.nplusone_fixes import StatementShape, fit_loader_option
from dbopt.errors import ConfigurationError

__all__ = ["LoaderName", "load", "loader_for", "loader_options"]

#: The loader strategies ``load`` can apply to a path.
LoaderName: TypeAlias = Literal["selectin", "joined", "subquery", "immediate"]

_LOADERS: dict[str, Any] = {
    "selectin": selectinload,
    "joined": joinedload,
    "subquery": subqueryload,
    "immediate": immediateload,
}


#: ``lazy=`` settings whose relationships no loader option can fill.
_NOT_LOADABLE = frozenset({"write_only", "dynamic"})


class _Statement(Protocol):
    """A ``select()`` or legacy ``Query``: anything with ORM entities and ``options()``."""

    @property
    def column_descriptions(self) -> Any: ...

    def options(self, *options: Any) -> Self: ...


StatementT = TypeVar("StatementT", bound=_Statement)


def loader_for(prop: RelationshipProperty[Any]) -> LoaderName:
    """The default loader for a relationship: ``"selectin"`` for collections, else ``"joined"``."""
    return "selectin" if prop.uselist else "joined"


def load(
    stmt: StatementT,
    *paths: str,
    loaders: Mapping[str, LoaderName] | None = None,
    entity: Any = None,
) -> StatementT:
    """``stmt`` with loader options for each dotted relationship path added.

    Paths start at ``entity`` (default: the statement's first ORM entity);
    ``"comments.author"`` follows ``Post.comments`` then ``Comment.author``
    and also loads ``comments``. ``loaders`` maps a path (as written, e.g.
    ``"comments"``) to ``"selectin"``, ``"joined"``, ``"subquery"`` or
    ``"immediate"`` to override the default for that step. Raises
    :class:`dbopt.ConfigurationError` for an unknown relationship (the
    message lists those that exist), an empty path, or a ``loaders`` key
    that is not a step of any path.
    """
    root = entity if entity is not None else _first_entity(stmt)
    from dbopt.eager.fit import statement_shape

    shape = statement_shape(stmt)
    options = _options(root, paths, loaders, shape)
    return stmt.options(*options) if options else stmt


def loader_options(
    entity: Any, *paths: str, loaders: Mapping[str, LoaderName] | None = None
) -> list[LoaderOption]:
    """The loader options :func:`load` would add for ``paths`` from ``entity``.

    One option per first step, with the deeper steps nested under it through
    ``.options()``, so shared prefixes are loaded once.
    """
    return _options(entity, paths, loaders, None)


def _options(
    entity: Any,
    paths: tuple[str, ...],
    loaders: Mapping[str, LoaderName] | None,
    shape: StatementShape | None,
) -> list[LoaderOption]:
    mapper, owner = _mapper_of(entity)
    chosen = dict(loaders or {})
    for name, loader in chosen.items():
        if loader not in _LOADERS:
            raise ConfigurationError(
                f"unknown loader {loader!r} for path {name!r}: use one of {', '.join(_LOADERS)}"
            )
    tree: dict[str, Any] = {}
    for path in paths:
        if not isinstance(path, str) or not path.strip():
            raise ConfigurationError(f"a relationship path must be a non-empty string: {path!r}")
        node = tree
        for step in path.split("."):
            node = node.setdefault(step.strip(), {})
    used: set[str] = set()
    options = [
        _build(mapper, owner, name, children, name, chosen, used, shape)
        for name, children in tree.items()
    ]
    unused = sorted(set(chosen) - used)
    if unused:
        raise ConfigurationError(
            f"loaders names path(s) not in the requested paths: {', '.join(unused)}"
        )
    return options


def _build(
    mapper: Mapper[Any],
    owner: Any,
    name: str,
    children: dict[str, Any],
    dotted: str,
    loaders: Mapping[str, LoaderName],
    used: set[str],
    shape: StatementShape | None = None,
) -> Any:
    prop = _relationship(mapper, name, dotted)
    if prop.lazy in _NOT_LOADABLE:
        owner_name = mapper.class_.__name__
        raise ConfigurationError(
            f"{owner_name}.{name} (in path {dotted!r}) is a {prop.lazy!r} relationship: it is "
            "never loaded into the object (reading it gives a query builder), so no loader "
            "option applies; query it explicitly (session.scalars(obj.rel.select())), or "
            "count per parent with one grouped query / a column_property"
        )
    loader = loaders.get(dotted)
    if loader is not None:
        used.add(dotted)
    if loader is None:
        # A first step joins into the parent statement itself: it must fit it.
        loader = (
            "joined"
            if fit_loader_option(bool(prop.uselist), shape).loader == "joined"
            else "selectin"
        )
    option = _LOADERS[loader](getattr(owner, name))
    target = prop.mapper
    nested = [
        _build(target, target.class_, child, grandchildren, f"{dotted}.{child}", loaders, used)
        for child, grandchildren in children.items()
    ]
    return option.options(*nested) if nested else option


def _relationship(mapper: Mapper[Any], name: str, dotted: str) -> RelationshipProperty[Any]:
    owner = mapper.class_.__name__
    relationships = mapper.relationships
    prop = relationships.get(name)
    if prop is not None:
        return prop
    valid = sorted(relationships.keys())
    listed = ", ".join(valid) if valid else "none"
    if name in mapper.attrs:
        raise ConfigurationError(
            f"{owner}.{name} (in path {dotted!r}) is a column attribute, not a relationship; "
            f"{owner}'s relationships are: {listed}"
        )
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigurationError(
        f"{owner} has no relationship {name!r} (in path {dotted!r}){hint}; "
        f"{owner}'s relationships are: {listed}"
    )


def _first_entity(stmt: Any) -> Any:
    try:
        descriptions = stmt.column_descriptions
    except Exception as exc:
        raise ConfigurationError(
            f"cannot find the entity of {type(stmt).__name__}: pass entity= explicitly"
        ) from exc
    for description in descriptions:
        found = description.get("entity")
        if found is not None and description.get("expr") is found:
            return found
    raise ConfigurationError(
        "the statement selects no ORM entity: pass entity= (e.g. entity=User) explicitly"
    )


def _mapper_of(entity: Any) -> tuple[Mapper[Any], Any]:
    """The mapper of ``entity`` and the object to take attributes from (class or alias)."""
    try:
        info = inspect(entity)
    except Exception as exc:
        raise ConfigurationError(f"{entity!r} is not a mapped class or entity") from exc
    mapper = getattr(info, "mapper", None)
    if not isinstance(mapper, Mapper):
        raise ConfigurationError(f"{entity!r} is not a mapped class or entity")
    owner = entity if getattr(info, "is_aliased_class", False) else mapper.class_
    return mapper, owner
