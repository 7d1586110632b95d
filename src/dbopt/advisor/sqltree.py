"""Helpers over pglast parse trees: walking, deparsing, small predicates."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pglast
from pglast import ast, enums
from pglast.stream import RawStream
from pglast.visitors import Visitor

from dbopt.advisor.model import Access, KeyElem

__all__ = [
    "Rename",
    "children",
    "column_refs",
    "const_value",
    "count_refs",
    "default_name",
    "deparse",
    "has_aggregate",
    "has_window",
    "is_node",
    "max_param",
    "nodes_in",
    "normalize_predicate",
    "order_pushable",
    "pattern_ops",
    "quals_pushable",
    "strip_casts",
]

AGGREGATES = frozenset(
    {
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "bool_and",
        "bool_or", "every", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
        "stddev", "variance", "percentile_cont", "percentile_disc", "mode",
    }
)  # fmt: skip


def is_node(node: Any, cls: type | tuple[type, ...]) -> bool:
    """``isinstance`` that keeps ``node`` typed ``Any`` (pglast's node fields are loosely typed)."""
    return isinstance(node, cls)


def children(node: Any) -> Iterator[Any]:
    """The AST nodes directly under ``node``."""
    for name in getattr(type(node), "__slots__", ()):
        value = getattr(node, name, None)
        yield from nodes_in(value)


def nodes_in(value: Any) -> Iterator[Any]:
    """The AST nodes in ``value`` (a node, or nested lists/tuples of them)."""
    if is_node(value, ast.Node):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from nodes_in(item)


def deparse(node: Any) -> str:
    """SQL text of an expression node."""
    return str(RawStream()(node))


def normalize_predicate(text: str) -> str:
    """A predicate as pglast deparses it, casts of literals removed (for comparison)."""
    try:
        stmt: Any = pglast.parse_sql(f"SELECT 1 WHERE {text}")[0].stmt
    except pglast.parser.ParseError:
        return text
    return deparse(strip_casts(stmt.whereClause))


def strip_casts(node: Any) -> Any:
    """``node`` with casts of literals removed (in place)."""
    if is_node(node, ast.TypeCast) and is_node(node.arg, ast.A_Const):
        return node.arg
    if is_node(node, ast.Node):
        for name in getattr(type(node), "__slots__", ()):
            value = getattr(node, name, None)
            if is_node(value, ast.Node):
                setattr(node, name, strip_casts(value))
            elif isinstance(value, tuple):
                setattr(node, name, tuple(strip_casts(v) for v in value))
    return node


class Rename(Visitor):  # type: ignore[misc,unused-ignore]
    """Replace the ColumnRefs whose ``id()`` is in ``mapping`` by a bare column name."""

    def __init__(self, mapping: dict[int, str]) -> None:
        super().__init__()
        self.mapping = mapping

    def visit_ColumnRef(self, ancestors: Any, node: Any) -> Any:  # noqa: N802 - pglast's naming
        name = self.mapping.get(id(node))
        if name is None:
            return None
        return ast.ColumnRef(fields=(ast.String(name),))


def column_refs(node: Any) -> list[Any]:
    """Every ColumnRef under ``node``."""
    out: list[Any] = []

    def visit(n: Any) -> None:
        if is_node(n, ast.ColumnRef):
            out.append(n)
            return
        for child in children(n):
            visit(child)

    visit(node)
    return out


def default_name(val: Any) -> str:
    """The output name PostgreSQL gives an unaliased target."""
    if is_node(val, ast.ColumnRef):
        last = val.fields[-1]
        return str(getattr(last, "sval", "?column?"))
    if is_node(val, ast.FuncCall):
        return str(val.funcname[-1].sval)
    return "?column?"


def const_value(node: Any, params: dict[int, Any]) -> tuple[bool, Any, bool]:
    """(is a literal, its value, value known) for a value expression."""
    if is_node(node, ast.TypeCast):
        return const_value(node.arg, params)
    if is_node(node, ast.A_Const):
        if node.isnull:
            return True, None, True
        val = node.val
        for attr in ("sval", "ival", "fval", "boolval", "bsval"):
            if hasattr(val, attr):
                return True, getattr(val, attr), True
        return True, None, False
    if is_node(node, ast.ParamRef) and node.number in params:
        return False, params[node.number], True
    return False, None, False


def pattern_ops(access: Access, key: KeyElem) -> str | None:
    """The pattern opclass that lets a btree serve ``LIKE 'prefix%'`` on this column."""
    col = access.relation.columns.get(key.columns[0])
    if col is None:
        return None
    return {"text": "text_pattern_ops", "varchar": "varchar_pattern_ops"}.get(
        col.typname, "bpchar_pattern_ops" if col.typname == "bpchar" else None
    )


def quals_pushable(stmt: Any) -> bool:
    """True if quals on a derived table reach its base tables (no LIMIT/OFFSET/window)."""
    if not is_node(stmt, ast.SelectStmt):
        return False
    if stmt.op != enums.SetOperation.SETOP_NONE:
        return bool(quals_pushable(stmt.larg) and quals_pushable(stmt.rarg))
    if stmt.limitCount is not None or stmt.limitOffset is not None or stmt.windowClause:
        return False
    return not has_window(stmt.targetList)


def order_pushable(stmt: Any) -> bool:
    """True if an ORDER BY on a derived table can be served by its base table's index."""
    if stmt.op != enums.SetOperation.SETOP_NONE or stmt.groupClause or stmt.distinctClause:
        return False
    return not has_aggregate(stmt.targetList)


def has_window(node: Any) -> bool:
    """True if ``node`` calls a window function (outside subqueries)."""
    for n in nodes_in(node):
        if is_node(n, ast.FuncCall) and n.over is not None:
            return True
        if not is_node(n, (ast.SubLink, ast.SelectStmt)) and has_window(list(children(n))):
            return True
    return False


def has_aggregate(node: Any) -> bool:
    """True if ``node`` calls a well-known aggregate (outside subqueries)."""
    for n in nodes_in(node):
        if is_node(n, ast.FuncCall) and n.funcname[-1].sval in AGGREGATES:
            return True
        if not is_node(n, (ast.SubLink, ast.SelectStmt)) and has_aggregate(list(children(n))):
            return True
    return False


def count_refs(node: Any, name: str) -> int:
    """How many unqualified RangeVars named ``name`` are under ``node``."""
    count = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if is_node(n, ast.RangeVar) and n.schemaname is None and n.relname == name:
            count += 1
        stack.extend(children(n))
    return count


def max_param(node: Any) -> int:
    """The highest ``$n`` under ``node`` (0 if none)."""
    best = 0
    stack = [node]
    while stack:
        n = stack.pop()
        if is_node(n, ast.ParamRef):
            best = max(best, n.number)
        stack.extend(children(n))
    return best
