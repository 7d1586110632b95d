"""Reading pglast nodes: table names, type names, default volatility, deparsing fixes."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import ConstrType
from pglast.stream import RawStream

from dbopt.postgres.render import qualified

__all__ = [
    "TableRef",
    "column_type",
    "deparse",
    "deparse_indirection",
    "is_not_null_check",
    "table_ref",
    "volatility",
]

#: (schema or None, table name) as the statement wrote it (already case-folded by the parser).
TableRef = tuple[str | None, str]

SMALL_INT = {
    "int2",
    "int4",
    "serial",
    "serial4",
    "smallserial",
    "serial2",
    "int",
    "integer",
    "smallint",
}
SERIAL = {"serial", "serial4", "serial8", "bigserial", "smallserial", "serial2"}

# Functions whose value changes per call: as a column default they force a table rewrite.
_VOLATILE = {
    "random",
    "gen_random_uuid",
    "uuid_generate_v1",
    "uuid_generate_v1mc",
    "uuid_generate_v4",
    "uuid_generate_v7",
    "uuidv4",
    "uuidv7",
    "clock_timestamp",
    "timeofday",
    "nextval",
    "setval",
    "txid_current",
    "pg_current_xact_id",
    "random_normal",
    "gen_random_bytes",
}
# STABLE or IMMUTABLE functions commonly used as defaults: evaluated once, no rewrite.
_STABLE = {
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "btrim",
    "trim",
    "concat",
    "md5",
    "to_timestamp",
    "to_date",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "json_build_array",
    "array_fill",
    "date_trunc",
    "timezone",
}


# Stable functions that take no arguments: called with some, they are another function.
_NO_ARGS = {"now", "transaction_timestamp", "statement_timestamp"}


def table_ref(relation: Any) -> TableRef:
    """The (schema, name) of a ``RangeVar``."""
    return (relation.schemaname or None, relation.relname)


def show(ref: TableRef) -> str:
    """``schema.name`` quoted as needed."""
    return qualified(ref[0], ref[1])


def column_type(type_name: Any) -> str:
    """The last part of a ``TypeName`` (``int4``, ``timestamp``, ``serial``), with ``[]``."""
    if type_name is None or not type_name.names:
        return ""
    name = str(type_name.names[-1].sval).lower()
    return name + ("[]" if type_name.arrayBounds else "")


def _walk(node: Any) -> list[Any]:
    """Every node under ``node`` (itself included), depth first."""
    out = [node]
    if isinstance(node, (list, tuple)):
        for item in node:
            out.extend(_walk(item))
    elif isinstance(node, ast.Node):
        for attr in node:
            out.extend(_walk(getattr(node, attr)))
    return out


def volatility(expr: Any) -> tuple[str, list[str]]:
    """``("volatile" | "unknown" | "stable", function names)`` of a default expression."""
    names = []
    verdict = "stable"
    for node in _walk(expr):
        if isinstance(node, ast.FuncCall):
            parts: Any = node.funcname
            name = str(parts[-1].sval).lower()
            names.append(name)
            if name in _NO_ARGS and node.args:
                # now(123) is not pg_catalog.now(): some other, unknown function
                if verdict != "volatile":
                    verdict = "unknown"
            elif name in _VOLATILE:
                verdict = "volatile"
            elif name not in _STABLE and verdict != "volatile":
                verdict = "unknown"
        elif isinstance(node, (ast.SubLink, ast.ColumnRef)) and verdict != "volatile":
            verdict = "unknown"
    return verdict, names


def is_not_null_check(con: Any) -> str | None:
    """The column of a ``CHECK (col IS NOT NULL)`` constraint, else None."""
    if con.contype != ConstrType.CONSTR_CHECK:
        return None
    expr: Any = con.raw_expr
    if isinstance(expr, ast.NullTest) and int(expr.nulltesttype or 0) == 1:  # IS_NOT_NULL
        arg: Any = expr.arg
        if isinstance(arg, ast.ColumnRef):
            last: Any = (arg.fields or ())[-1]
            if isinstance(last, ast.String):
                return str(last.sval)
    return None


def deparse_indirection(indirection: Any) -> str:
    """``.x`` / ``[1]`` of an assignment target, as text (empty when there is none)."""
    out = []
    for part in indirection or ():
        if isinstance(part, ast.String):
            out.append("." + str(part.sval))
        else:
            out.append("[" + deparse(part.uidx) + "]" if part.uidx is not None else "[:]")
    return "".join(out)


def deparse(node: Any) -> str:
    """SQL text of ``node`` (pglast's deparser; identifiers quoted where needed)."""
    return str(RawStream()(node))
