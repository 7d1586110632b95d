"""What Django's ORM was doing when it ran a statement: the relation a lazy load followed.

Django has no ``do_orm_execute`` hook, but while a statement runs, the
frames between the execute wrapper and the application hold the objects
that issued it: the ``QuerySet`` being evaluated (its model, and for a
related manager's or descriptor's query the owner instance in its hints),
the descriptor of a foreign key (``post.author``) or the related manager
(``post.comment_set``, ``user.groups``). Those give the exact relation, so a
finding names ``select_related("author")`` or ``prefetch_related("groups")``
for it. The walk reads only frames of ``django.db`` (a few dozen at most) and
the locals of a handful of them; anything unexpected yields ``None``.

The relation is carried in :class:`~dbopt.core.events.OrmContext` with
``strategy`` set to one of (see :func:`dbopt.core.nplusone_fixes.django_fix`):

* ``"django:select_related"`` a forward foreign key or one-to-one;
* ``"django:prefetch_related"`` a reverse foreign key or a many-to-many;
* ``"django:prefetch_filtered"`` the same, filtered, ordered or sliced per
  row (a ``Prefetch`` with that queryset);
* ``"django:count:<lookup>"`` a count of the relation per row
  (``annotate(Count(lookup))``);
* ``"django:query"`` an explicit query of ``entity`` (``Comment.objects.filter(post=p)``),
  with ``relationship`` set when its filter is one foreign key.
"""

from __future__ import annotations

import sys
from types import FrameType
from typing import Any

from dbopt.core.events import OrmContext

try:
    from django.db.models.query import QuerySet  # type: ignore[import-untyped,unused-ignore]
except ImportError:  # pragma: no cover - the caller raises MissingDependencyError
    QuerySet = None

__all__ = ["orm_context"]

#: Frames of django.db walked at most, from the execute wrapper outwards.
_MAX_FRAMES = 60
_QUERY = "django.db.models.query"
_DESCRIPTORS = "django.db.models.fields.related_descriptors"
_MANAGER = "django.db.models.manager"
_QUERY_UTILS = "django.db.models.query_utils"
_CONTENTTYPES = "django.contrib.contenttypes"
_EAGER = frozenset({"prefetch_one_level", "prefetch_related_objects"})


def orm_context(skip: int = 1) -> OrmContext | None:
    """The ORM context of the statement being executed by the caller's caller; never raises."""
    try:
        return _inspect(sys._getframe(skip + 1))
    except Exception:  # noqa: BLE001 - an inspection must never break the app's query
        return None


def _inspect(frame: FrameType | None) -> OrmContext | None:
    queryset: Any = None
    holder: Any = None  # the descriptor or related manager that built the query
    counting = False
    in_models = False
    outside = 0
    seen = 0
    while frame is not None and seen < _MAX_FRAMES:
        module = frame.f_globals.get("__name__", "")
        if module.startswith(_CONTENTTYPES):  # generic relations are part of the ORM
            in_models = True
            if frame.f_code.co_name == "__get__":  # tag.obj: a generic foreign key
                candidate = frame.f_locals.get("self")
                if hasattr(candidate, "fk_field") and hasattr(candidate, "ct_field"):
                    return _generic_foreign_key(candidate, frame.f_locals.get("instance"))
        elif not module.startswith("django.db.models"):
            outside += not module.startswith("django.db")
            if in_models or outside > 3:  # past the ORM, or a raw cursor of the application
                break
        elif module == _QUERY:
            in_models = True
            name = frame.f_code.co_name
            if name in _EAGER:
                return _prefetch(frame, queryset)
            counting = counting or name == "count"
            if queryset is None:
                candidate = frame.f_locals.get("self")
                if isinstance(candidate, QuerySet):
                    queryset = candidate
        elif module in (_DESCRIPTORS, _MANAGER):
            in_models = True
            counting = counting or frame.f_code.co_name == "count"
            if holder is None:
                candidate = frame.f_locals.get("self")
                if _is_holder(candidate):
                    holder = candidate
        else:
            in_models = True
            if module == _QUERY_UTILS and frame.f_code.co_name == "__get__":
                deferred = _deferred_field(frame)
                if deferred is not None:
                    return deferred
        seen += 1
        frame = frame.f_back
    if queryset is None:
        return None
    return _describe(queryset, holder, counting)


def _prefetch(frame: FrameType, queryset: Any) -> OrmContext:
    """A prefetch batch; for a single instance (``prefetch_related_objects([obj], ...)``
    in a loop, or an ``iterator(chunk_size=1)``) a per-row load of its relation."""
    local = frame.f_locals
    instances = local.get("instances", local.get("model_instances"))
    if not isinstance(instances, list) or len(instances) != 1:
        return OrmContext("eager_load", _model_name(queryset))
    lookup = local.get("lookup")
    path = getattr(lookup, "prefetch_through", None)
    if path is None:
        lookups: Any = local.get("related_lookups") or ()
        path = lookups[0] if len(lookups) == 1 and isinstance(lookups[0], str) else None
    owner = type(instances[0]).__name__
    relationship = f"{owner}.{path}" if isinstance(path, str) and path else None
    return OrmContext(
        "lazy_load", owner, relationship, "django:prefetch_objects", target=_model_name(queryset)
    )


def _deferred_field(frame: FrameType) -> OrmContext | None:
    """``post.author.username`` under ``.only("author__id")``: a deferred field read per row."""
    descriptor = frame.f_locals.get("self")
    instance = frame.f_locals.get("instance")
    field = getattr(descriptor, "field", None)
    name = getattr(field, "name", None)
    if instance is None or not isinstance(name, str) or hasattr(descriptor, "get_object"):
        return None
    owner = type(instance).__name__
    return OrmContext(
        "column_load", owner, f"{owner}.{name}", "django:deferred", uselist=False, target=owner
    )


def _through_side(model: Any, queryset: Any) -> tuple[str, str] | None:
    """For a many-to-many manager's query, ``(accessor, lookup)`` of the side it came from.

    The query filters the through table on the instance's own column: its
    source column for the forward field (``user.following``), the target
    column for the reverse (``user.followers``, ``user.user_set``). Needed
    when several many-to-many relations join the same two models (to self).
    """
    fields = list(model._meta.many_to_many) + [
        r.field for r in model._meta.related_objects if r.many_to_many
    ]
    for child in queryset.query.where.children:
        column = getattr(getattr(child, "lhs", None), "target", None)
        if column is None:
            continue
        through = getattr(column, "model", None)
        for field in fields:
            if field.remote_field.through is not through:
                continue
            if column.name == field.m2m_field_name() and field.model is model:
                return field.name, field.name
            if column.name == field.m2m_reverse_field_name():
                return field.remote_field.get_accessor_name(), field.related_query_name()
    return None


def _generic_foreign_key(descriptor: Any, instance: Any) -> OrmContext | None:
    """``tag.obj``: loads the object a generic foreign key names (and its content type)."""
    if instance is None:
        return None
    owner = type(instance).__name__
    return OrmContext(
        "lazy_load", owner, f"{owner}.{descriptor.name}", "django:prefetch_generic", uselist=False
    )


def _is_holder(obj: Any) -> bool:
    return obj is not None and (
        hasattr(obj, "prefetch_cache_name")  # a many-to-many manager
        or (hasattr(obj, "instance") and hasattr(obj, "field"))  # a reverse FK manager
        or (hasattr(obj, "field") and hasattr(obj, "get_object"))  # a forward descriptor
        or (hasattr(obj, "related") and hasattr(obj, "get_queryset"))  # reverse one-to-one
    )


def _model_name(queryset: Any) -> str | None:
    model = getattr(queryset, "model", None)
    return getattr(model, "__name__", None)


def _describe(queryset: Any, holder: Any, count: bool) -> OrmContext:
    target = _model_name(queryset)
    instance = queryset._hints.get("instance")
    if instance is None:
        return _explicit(queryset, target)
    owner = type(instance).__name__
    if holder is not None and hasattr(holder, "prefetch_cache_name"):  # many-to-many
        return _collection(
            owner, holder.prefetch_cache_name, holder.prefetch_cache_name, target, queryset, count
        )
    if holder is not None and hasattr(holder, "instance") and hasattr(holder, "field"):
        rel = holder.field.remote_field  # reverse foreign key manager
        return _collection(
            owner,
            rel.get_accessor_name(),
            holder.field.related_query_name(),
            target,
            queryset,
            count,
        )
    if holder is not None and hasattr(holder, "get_object"):  # forward FK / one-to-one
        name = holder.field.name
        return _single(owner, name, target)
    if holder is not None and hasattr(holder, "related"):  # reverse one-to-one
        return _single(owner, holder.related.get_accessor_name(), target)
    # Evaluated after the manager returned it ({% for c in post.comment_set.all %}).
    for field in queryset._known_related_objects:
        rel = field.remote_field
        return _collection(
            owner, rel.get_accessor_name(), field.related_query_name(), target, queryset, count
        )
    through = _through_side(type(instance), queryset)
    if through is not None:
        accessor, lookup = through
        return _collection(owner, accessor, lookup, target, queryset, count)
    many = [
        f
        for f in type(instance)._meta.get_fields()
        if f.many_to_many and f.related_model is queryset.model
    ]
    if len(many) == 1:
        field = many[0]
        accessor = field.get_accessor_name() if field.auto_created else field.name
        lookup = field.name if not field.auto_created else field.field.related_query_name()
        return _collection(owner, accessor, lookup, target, queryset, count)
    return OrmContext("query", target, strategy="django:query")


def _single(owner: str, name: str, target: str | None) -> OrmContext:
    return OrmContext(
        "lazy_load",
        owner,
        f"{owner}.{name}",
        "django:select_related",
        uselist=False,
        target=target,
    )


def _collection(
    owner: str, accessor: str, lookup: str, target: str | None, queryset: Any, count: bool
) -> OrmContext:
    if count:
        strategy = f"django:count:{lookup}"
    elif _narrowed(queryset):
        strategy = "django:prefetch_filtered"
    else:
        strategy = "django:prefetch_related"
    return OrmContext(
        "lazy_load", owner, f"{owner}.{accessor}", strategy, uselist=True, target=target
    )


def _narrowed(queryset: Any) -> bool:
    """Whether a related manager's queryset was filtered, ordered or sliced beyond the relation."""
    query = queryset.query
    return (
        len(query.where.children) > 1
        or bool(query.order_by)
        or query.low_mark != 0
        or query.high_mark is not None
    )


def _explicit(queryset: Any, target: str | None) -> OrmContext:
    """An explicit query; ``relationship`` names the reverse of the one FK it filters on."""
    children = queryset.query.where.children
    generic = _generic_relation(queryset, children, target)
    if generic is not None:
        return generic
    relationship = None
    if len(children) == 1:
        lhs = getattr(children[0], "lhs", None)
        field = getattr(lhs, "target", None)
        if field is not None and getattr(field, "many_to_one", False):
            parent = field.related_model.__name__
            relationship = f"{parent}.{field.remote_field.get_accessor_name()}"
    return OrmContext("query", target, relationship, "django:query")


#: model -> its generic foreign keys and the GenericRelations that point at it
_GENERIC: dict[Any, list[tuple[Any, list[Any]]]] = {}


def _generic_relation(queryset: Any, children: Any, target: str | None) -> OrmContext | None:
    """``user.tags.all()``: the query of a ``GenericRelation``, filtered on one object."""
    model = queryset.model
    generic = _GENERIC.get(model)
    if generic is None:
        generic = _GENERIC[model] = _generic_fields(model)
    if not generic:
        return None
    tested = {
        getattr(getattr(getattr(child, "lhs", None), "target", None), "name", None)
        for child in children
        if getattr(child, "lookup_name", None) == "exact"
    }
    for key, relations in generic:
        if {key.ct_field, key.fk_field} <= tested and len(relations) == 1:
            (relation,) = relations
            owner = relation.model.__name__
            strategy = "django:prefetch_related"
            if len(children) > 2 or queryset.query.order_by or queryset.query.high_mark:
                strategy = "django:prefetch_filtered"
            return OrmContext(
                "lazy_load", owner, f"{owner}.{relation.name}", strategy, True, target
            )
    return None


def _generic_fields(model: Any) -> list[tuple[Any, list[Any]]]:
    """The model's generic foreign keys, each with the ``GenericRelation`` fields naming it."""
    from django.apps import apps  # type: ignore[import-untyped,unused-ignore]

    keys = [f for f in model._meta.private_fields if hasattr(f, "fk_field")]
    if not keys:
        return []
    relations = [
        f
        for other in apps.get_models()
        for f in other._meta.private_fields
        if getattr(f, "related_model", None) is model and hasattr(f, "object_id_field_name")
    ]
    return [
        (
            key,
            [
                r
                for r in relations
                if (r.content_type_field_name, r.object_id_field_name)
                == (key.ct_field, key.fk_field)
            ],
        )
        for key in keys
    ]
