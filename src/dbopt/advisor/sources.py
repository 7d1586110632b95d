"""Sources of a query block (tables, views, CTEs, subqueries) and column resolution.

A mixin of :class:`Analyzer`. Each FROM item becomes a :class:`Source`: a
base table (with its :class:`Access`), a derived table (view, CTE,
subquery: its output columns map to base columns when quals can be pushed
into it) or an opaque one (functions, foreign tables, materialized CTEs).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pglast
from pglast import ast

from dbopt.advisor.catalog import Catalog, Relation
from dbopt.advisor.model import Access, KeyElem
from dbopt.advisor.sqltree import (
    Rename,
    children,
    column_refs,
    const_value,
    deparse,
    is_node,
    order_pushable,
    quals_pushable,
)

__all__ = ["Cte", "Ref", "Scope", "Side", "Source", "SourceMixin"]

_MAX_VIEW_DEPTH = 8

Ref = tuple[Access, str]


@dataclass
class Source:
    """One FROM item of a query block."""

    alias: str
    access: Access | None = None
    outputs: dict[str, list[Ref] | None] | None = None
    names: set[str] | None = None
    order_pushable: bool = False

    def has(self, col: str) -> bool:
        """True if the source has an output column ``col``."""
        if self.access is not None:
            return col in self.access.relation.columns
        if self.outputs is not None:
            return col in self.outputs
        return self.names is not None and col in self.names

    def resolve(self, col: str) -> list[Ref] | None:
        """Base columns behind ``col`` (None: not traceable to a table)."""
        if self.access is not None:
            return [(self.access, col)]
        if self.outputs is not None:
            return self.outputs.get(col)
        return None

    def all_refs(self) -> list[Ref]:
        """Base columns behind ``*`` (a base table is marked fully referenced)."""
        if self.access is not None:
            self.access.reference(None)
            return []
        out: list[Ref] = []
        for refs in (self.outputs or {}).values():
            out.extend(refs or [])
        return out


@dataclass
class Cte:
    """A WITH query: inlined where referenced, or materialized (opaque)."""

    name: str
    query: Any
    materialized: bool
    colnames: list[str]
    scope: Scope | None = None


@dataclass
class Scope:
    """The sources and CTEs visible in a query block, and the enclosing block."""

    parent: Scope | None
    sources: list[Source] = field(default_factory=list)
    ctes: dict[str, Cte] = field(default_factory=dict)

    def cte(self, name: str) -> Cte | None:
        """The CTE ``name`` visible here, if any."""
        scope: Scope | None = self
        while scope is not None:
            if name in scope.ctes:
                return scope.ctes[name]
            scope = scope.parent
        return None


@dataclass
class Side:
    """One side of a comparison: a key of a table access, a value, or a mix."""

    kind: str  # key, value, mixed
    keys: list[tuple[Access, KeyElem]] = field(default_factory=list)
    const: bool = False
    value: Any = None
    has_value: bool = False


class SourceMixin:
    """FROM items and column resolution for :class:`Analyzer`."""

    catalog: Catalog
    viewdef: Any
    params: dict[int, Any]
    _view_depth: int

    def _notes(self) -> list[str]:
        raise NotImplementedError

    def _found(self, access: Access) -> None:
        raise NotImplementedError

    def _select(self, stmt: Any, parent: Scope | None) -> list[tuple[str, list[Ref] | None]]:
        raise NotImplementedError

    def _walk(self, node: Any, scope: Scope) -> None:
        raise NotImplementedError

    def _add_from(self, item: Any, scope: Scope, quals: list[Any]) -> Source | None:
        if is_node(item, ast.RangeVar):
            return self._range_var(item, scope)
        if is_node(item, ast.RangeSubselect):
            alias = item.alias.aliasname if item.alias else "?subquery"
            outputs = self._select(item.subquery, scope)
            src = self._derived(alias, item.subquery, outputs, item.alias)
            scope.sources.append(src)
            return src
        if is_node(item, ast.JoinExpr):
            start = len(scope.sources)
            self._add_from(item.larg, scope, quals)
            mid = len(scope.sources)
            self._add_from(item.rarg, scope, quals)
            if item.quals is not None:
                quals.append(item.quals)
            for name in item.usingClause or ():
                left = Scope(None, scope.sources[start:mid])
                right = Scope(None, scope.sources[mid:])
                lref = ast.ColumnRef(fields=(ast.String(name.sval),))
                a, b = self._resolve(lref, left), self._resolve(lref, right)
                if a and b and a[1] and b[1]:
                    for ra in a[1]:
                        for rb in b[1]:
                            if ra[0] is not rb[0]:
                                ra[0].add(ra[0].join, KeyElem.column(ra[1]))
                                rb[0].add(rb[0].join, KeyElem.column(rb[1]))
                                ra[0].reference(ra[1])
                                rb[0].reference(rb[1])
            return None
        alias = getattr(getattr(item, "alias", None), "aliasname", None) or "?function"
        for node in children(item):
            self._walk(node, scope)
        src = Source(alias, names=set())
        scope.sources.append(src)
        return src

    def _range_var(self, rv: Any, scope: Scope) -> Source:
        alias = rv.alias.aliasname if rv.alias else rv.relname
        if rv.schemaname is None:
            cte = scope.cte(rv.relname)
            if cte is not None:
                return self._cte_source(cte, alias, rv, scope)
        rel = self.catalog.lookup(rv.schemaname, rv.relname)
        if rel is None:
            name = f"{rv.schemaname}.{rv.relname}" if rv.schemaname else rv.relname
            self._notes().append(f"relation {name} is not a user table of this database")
            src = Source(alias, names=None)
        elif rel.kind == "v":
            src = self._view(rel, alias)
        elif rel.kind == "f":
            self._notes().append(f"{rel.qualified} is a foreign table")
            src = Source(alias, names=set(rel.columns))
        else:
            access = Access(rel)
            self._found(access)
            src = Source(alias, access=access)
        scope.sources.append(src)
        return src

    def _cte_source(self, cte: Cte, alias: str, rv: Any, scope: Scope) -> Source:
        if cte.materialized:
            return self._append(scope, Source(alias, names=set(cte.colnames) or None))
        outputs = self._select(cte.query, cte.scope)
        if cte.colnames:
            outputs = [
                (cte.colnames[i] if i < len(cte.colnames) else n, r)
                for i, (n, r) in enumerate(outputs)
            ]
        return self._append(scope, self._derived(alias, cte.query, outputs, rv.alias))

    @staticmethod
    def _append(scope: Scope, src: Source) -> Source:
        scope.sources.append(src)
        return src

    def _view(self, rel: Relation, alias: str) -> Source:
        text = self.viewdef(rel.oid) if self._view_depth < _MAX_VIEW_DEPTH else None
        if not text:
            return Source(alias, names=set(rel.columns))
        try:
            stmt = pglast.parse_sql(text)[0].stmt
        except pglast.parser.ParseError:
            return Source(alias, names=set(rel.columns))
        self._view_depth += 1
        try:
            outputs = self._select(stmt, None)
        finally:
            self._view_depth -= 1
        names = list(rel.columns)
        outputs = [(names[i] if i < len(names) else n, r) for i, (n, r) in enumerate(outputs)]
        return self._derived(alias, stmt, outputs, None)

    def _derived(
        self,
        alias: str,
        stmt: Any,
        outputs: list[tuple[str, list[Ref] | None]],
        alias_node: Any,
    ) -> Source:
        if alias_node is not None and alias_node.colnames:
            cols = [c.sval for c in alias_node.colnames]
            outputs = [(cols[i] if i < len(cols) else n, r) for i, (n, r) in enumerate(outputs)]
        pushable = quals_pushable(stmt)
        mapping = {n: (r if pushable else None) for n, r in outputs}
        return Source(alias, outputs=mapping, order_pushable=pushable and order_pushable(stmt))

    # column resolution -------------------------------------------------

    def _resolve(
        self, ref: Any, scope: Scope, order: bool = False
    ) -> tuple[int, list[Ref] | None] | None:
        raw = [getattr(f, "sval", None) for f in ref.fields]
        fields = [f for f in raw if isinstance(f, str)]
        if len(fields) != len(raw):
            return None
        col = fields[-1]
        qualifier = fields[-2] if len(fields) >= 2 else None
        level = 0
        current: Scope | None = scope
        while current is not None:
            for src in current.sources:
                if qualifier is not None and src.alias != qualifier:
                    continue
                if qualifier is None and not src.has(col):
                    continue
                if order and src.access is None and not src.order_pushable:
                    return level, None
                return level, src.resolve(col)
            current = current.parent
            level += 1
        return None

    def _side(self, node: Any, scope: Scope, order: bool = False) -> Side:
        refs: list[tuple[Any, tuple[int, list[Ref] | None] | None]] = []
        volatile = [False]

        def collect(n: Any) -> None:
            if is_node(n, ast.ColumnRef):
                refs.append((n, self._resolve(n, scope, order)))
                return
            if is_node(n, (ast.SubLink, ast.SelectStmt)):
                volatile[0] = True
                return
            for child in children(n):
                collect(child)

        collect(node)
        local = [(n, r) for n, r in refs if r is not None and r[0] == 0]
        if not local and not any(r is None for _, r in refs):
            const, value, has = const_value(node, self.params)
            return Side("value", const=const, value=value, has_value=has)
        if volatile[0] or any(r is None or r[1] is None for _, r in local):
            return Side("mixed")
        if len(local) != len(refs):
            return Side("mixed")
        if is_node(node, ast.ColumnRef):
            resolved = local[0][1][1] or []
            return Side("key", keys=[(a, KeyElem.column(c)) for a, c in resolved])
        # an expression over the columns of exactly one table occurrence
        targets = {id(n): (r[1] or [])[0] for n, r in local if r[1] and len(r[1]) == 1}
        if len(targets) != len(local):
            return Side("mixed")
        accesses = {id(a) for a, _ in targets.values()}
        if len(accesses) != 1 or not is_node(node, (ast.FuncCall, ast.TypeCast, ast.A_Expr)):
            return Side("mixed")
        access = next(iter(targets.values()))[0]
        copied = copy.deepcopy(node)
        mapping: dict[int, str] = {}
        for orig, dup in zip(column_refs(node), column_refs(copied), strict=True):
            mapping[id(dup)] = targets[id(orig)][1]
        Rename(mapping)(copied)
        cols = tuple(sorted({c for _, c in targets.values()}))
        return Side("key", keys=[(access, KeyElem(deparse(copied), cols, False))])
