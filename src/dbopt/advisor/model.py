"""Shared data of the advisor: index key elements, index definitions, table accesses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dbopt.advisor.catalog import Relation
from dbopt.postgres.render import ident

__all__ = ["Access", "IndexSpec", "KeyElem", "PartialPred"]


@dataclass(frozen=True)
class KeyElem:
    """One key of an index: a column or an expression, with order and operator class.

    ``expr`` is SQL text (a quoted column name or a deparsed expression);
    ``columns`` are the table columns it reads. ``nulls_first`` None means the
    default for the direction.
    """

    expr: str
    columns: tuple[str, ...]
    is_column: bool = True
    desc: bool = False
    nulls_first: bool | None = None
    opclass: str | None = None

    @classmethod
    def column(cls, name: str, opclass: str | None = None) -> KeyElem:
        """A plain column key."""
        return cls(ident(name, force=True), (name,), True, opclass=opclass)

    @property
    def ident(self) -> tuple[str, str | None]:
        """What makes two keys the same regardless of order: expression and opclass."""
        return (self.expr, self.opclass)

    def ordered(self, desc: bool, nulls_first: bool | None) -> KeyElem:
        """This key with another direction."""
        if nulls_first is not None and nulls_first == desc:
            nulls_first = None
        return KeyElem(self.expr, self.columns, self.is_column, desc, nulls_first, self.opclass)

    def plain(self) -> KeyElem:
        """This key ascending, default nulls."""
        return KeyElem(self.expr, self.columns, self.is_column, opclass=self.opclass)

    def flipped(self) -> KeyElem:
        """The same key scanned backwards."""
        nulls = None if self.nulls_first is None else not self.nulls_first
        return KeyElem(self.expr, self.columns, self.is_column, not self.desc, nulls, self.opclass)

    def sql(self) -> str:
        """The key as it appears in CREATE INDEX."""
        return self._with_options(self.expr if self.is_column else f"({self.expr})")

    def label(self) -> str:
        """The key as people read it: ``user_id``, ``lower(email)``, ``created_at DESC``."""
        return self._with_options(self.columns[0] if self.is_column else self.expr)

    def _with_options(self, text: str) -> str:
        """``text`` followed by this key's operator class, direction and NULLS order."""
        if self.opclass:
            text += f" {self.opclass}"
        if self.desc:
            text += " DESC"
        if self.nulls_first is not None:
            text += " NULLS FIRST" if self.nulls_first else " NULLS LAST"
        return text


@dataclass(frozen=True)
class IndexSpec:
    """An index definition: table, method, keys, INCLUDE columns and predicate."""

    table_oid: int
    method: str
    keys: tuple[KeyElem, ...]
    include: tuple[str, ...] = ()
    predicate: str | None = None
    predicate_columns: tuple[str, ...] = ()

    @property
    def identity(self) -> tuple[object, ...]:
        """Equality of definitions (INCLUDE order ignored)."""
        keys = tuple((k.expr, k.opclass, k.desc, k.nulls_first) for k in self.keys)
        return (self.table_oid, self.method, keys, tuple(sorted(self.include)), self.predicate)

    @property
    def columns(self) -> set[str]:
        """Every column the index reads (keys, INCLUDE, predicate)."""
        out = {c for k in self.keys for c in k.columns}
        out.update(self.include)
        out.update(self.predicate_columns)
        return out

    def body(self) -> str:
        """``USING method (keys) [INCLUDE (...)] [WHERE ...]`` (after the table name)."""
        text = f"USING {self.method} ({', '.join(k.sql() for k in self.keys)})"
        if self.include:
            text += f" INCLUDE ({', '.join(ident(c, force=True) for c in self.include)})"
        if self.predicate:
            text += f" WHERE ({self.predicate})"
        return text

    def label(self, rel: Relation) -> str:
        """Short human form: ``public.posts (user_id, blog_id DESC)``."""
        keys = [k.label() for k in self.keys]
        return index_label(rel.schema, rel.name, keys, self.method, self.include, self.predicate)

    def covers(self, other: IndexSpec) -> bool:
        """True if this index serves every scan ``other`` would (leading-prefix rule).

        Predicate-aware: an index with a WHERE clause is neither covered by a
        full index (it is smaller and already filtered) nor covers one.
        """
        if self.table_oid != other.table_oid or self.method != other.method:
            return False
        if self.predicate != other.predicate:
            return False
        if self.method != "btree":
            return self.keys == other.keys and set(other.include) <= set(self.include)
        n = len(other.keys)
        if n > len(self.keys):
            return False
        mine, theirs = self.keys[:n], other.keys
        same = all(_same_key(a, b) for a, b in zip(mine, theirs, strict=True))
        flipped = all(_same_key(a, b.flipped()) for a, b in zip(mine, theirs, strict=True))
        if not (same or flipped):
            return False
        available = {c for k in self.keys if k.is_column for c in k.columns} | set(self.include)
        return set(other.include) <= available


def _same_key(a: KeyElem, b: KeyElem) -> bool:
    return (a.expr, a.opclass, a.desc, a.nulls_first) == (b.expr, b.opclass, b.desc, b.nulls_first)


def index_label(
    schema: str,
    table: str,
    keys: Sequence[str],
    method: str,
    include: Sequence[str],
    predicate: str | None,
) -> str:
    """``schema.table (keys)`` plus the method, INCLUDE and WHERE when present."""
    text = f"{schema}.{table} ({', '.join(keys)})"
    if method != "btree":
        text += f" USING {method}"
    if include:
        text += f" INCLUDE ({', '.join(include)})"
    if predicate:
        text += f" WHERE {predicate}"
    return text


@dataclass(frozen=True)
class PartialPred:
    """A constant predicate on one column (``deleted_at IS NULL``, ``status = 'active'``)."""

    text: str
    column: str
    kind: str  # null, notnull, eq, true, false
    value: str | None = None


@dataclass
class Access:
    """How one statement reads one table occurrence: what an index could serve."""

    relation: Relation
    eq: list[KeyElem] = field(default_factory=list)
    join: list[KeyElem] = field(default_factory=list)
    ranges: list[KeyElem] = field(default_factory=list)
    alternatives: list[KeyElem] = field(default_factory=list)
    order: list[KeyElem] | None = None
    group: list[KeyElem] | None = None
    referenced: set[str] | None = field(default_factory=set)
    partial: list[PartialPred] = field(default_factory=list)
    gin: list[tuple[str, str | None]] = field(default_factory=list)
    trigram: list[str] = field(default_factory=list)
    limited: bool = False

    def add(self, bucket: list[KeyElem], key: KeyElem) -> None:
        """Append ``key`` to ``bucket`` unless an equal key is there."""
        if all(k.ident != key.ident for k in bucket):
            bucket.append(key)

    def reference(self, column: str | None) -> None:
        """Mark ``column`` read (None: every column, as ``*``)."""
        if column is None:
            self.referenced = None
        elif self.referenced is not None:
            self.referenced.add(column)
