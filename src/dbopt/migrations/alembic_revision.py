"""An Alembic revision file as the SQL it would run, read statically: it is never imported.

The file is parsed with :mod:`ast`. Its ``revision``/``down_revision`` and
the ``op.*`` calls of ``upgrade()`` are read from the syntax tree; the
arguments of each call are evaluated statically (literals, module-level
constants, local variables, ``sqlalchemy``/``sqlalchemy.dialects``
constructors such as ``sa.Column``, ``sa.Integer()``, ``sa.text()``,
``sa.func.now()``, string formatting, loops over literal lists, helper
functions of the same file). The call is then rendered by Alembic's offline
(``--sql``) context for PostgreSQL, exactly as ``alembic upgrade --sql``
would render it, ``op.execute()`` text included; ``with
op.get_context().autocommit_block():`` shows as COMMIT ... BEGIN and
``with op.batch_alter_table(...)`` works. Nothing else in the file runs:
not its imports of application code, not ``sys.exit()``, not module code.
An ``if`` whose condition cannot be evaluated is read both ways.

An ``op.*`` call whose arguments cannot be evaluated statically (they come
from application code, ``op.get_bind()`` or the database) is not rendered:
it becomes a MIG017 statement naming the call. Each statement keeps the
line of the ``op.*`` call that made it, so findings point at it and
``# dbopt:ignore`` comments there apply.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from dbopt.errors import ConfigurationError
from dbopt.migrations.statements import Statement, parse_ignores, split_sql

__all__ = ["RevisionInfo", "is_revision", "read_revision", "revision_statements"]

_MAX_STEPS = 200_000  # statements and expressions evaluated per file
_MAX_DEPTH = 20  # nested helper calls
_MAX_SIZE = 1_000_000  # items/characters a static value may have
_SA_MODULES = ("sqlalchemy.sql", "sqlalchemy.types", "sqlalchemy.schema", "sqlalchemy.dialects")
_BUILTINS = {
    name: getattr(builtins, name)
    for name in [
        *("str", "int", "float", "bool", "list", "tuple", "dict", "set", "frozenset", "len"),
        *("range", "sorted", "reversed", "enumerate", "zip", "min", "max", "any", "all"),
        *("abs", "repr", "format"),
    ]
}
_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
# Operations methods that change Alembic itself rather than emit SQL
_OP_DENY = {
    "register_operation",
    "implementation_for",
    "run_async",
    "invoke",
    "context",
    "get_bind",
}
_CONTEXT_ALLOW = {"autocommit_block", "execute", "dialect", "impl", "as_sql"}
_PLAIN_TYPES = (str, bytes, int, float, bool, list, tuple, dict, set, frozenset, type(None))


@dataclass(frozen=True)
class RevisionInfo:
    """The identifiers a revision file declares (None when absent or not a literal)."""

    revision: str | None
    down_revision: str | tuple[str, ...] | None
    branch_labels: str | tuple[str, ...] | None
    depends_on: str | tuple[str, ...] | None


def is_revision(text: str) -> bool:
    """True when ``text`` looks like an Alembic revision (an ``upgrade`` using ``op``)."""
    return "def upgrade" in text and "op." in text


def _parse(path: Path) -> tuple[ast.Module, str]:
    try:
        source = path.read_text(encoding="utf-8")
        return ast.parse(source, filename=str(path)), source
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc


def _literal(node: ast.expr | None) -> Any:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list):
        value = tuple(value)
    return value


def read_revision(path: str | Path) -> RevisionInfo:
    """``revision``, ``down_revision``, ``branch_labels`` and ``depends_on`` of a revision
    file, read from its syntax tree (the file is not imported)."""
    tree, _ = _parse(Path(path))
    found: dict[str, Any] = {}
    for stmt in tree.body:
        targets: list[ast.expr] = []
        value: ast.expr | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign):
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = _literal(value)
    return RevisionInfo(
        found.get("revision"),
        found.get("down_revision"),
        found.get("branch_labels"),
        found.get("depends_on"),
    )


class _Unknown(Exception):  # noqa: N818 - not an error: a value not known
    """A value that cannot be known without running the file (internal)."""


class _Return(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


@dataclass
class _Opaque:
    """A name bound to something not known statically; ``of_op``: it came from ``op``."""

    why: str
    of_op: bool = False


@dataclass
class _Problem:
    """An op call that could not be rendered (internal)."""

    why: str


@dataclass
class _Helper:
    node: ast.FunctionDef | ast.AsyncFunctionDef


class _Reader:
    """Walks ``upgrade()`` statement by statement, evaluating what can be known statically."""

    def __init__(self, tree: ast.Module, ops: Any, ctx: Any) -> None:
        from alembic.operations import BatchOperations, Operations
        from alembic.runtime.migration import MigrationContext

        self.ops = ops
        self.ctx = ctx
        self._op_types: tuple[type, ...] = (Operations, BatchOperations)
        self._ctx_type: type = MigrationContext
        self.line: int | None = None
        self.emitted: list[tuple[int | None, str | _Problem]] = []
        self.steps = 0
        self.depth = 0
        self.globals: dict[str, Any] = {}
        self._module(tree)

    # -- the module: imports, constants, functions; nothing runs --------------------------

    def _module(self, tree: ast.Module) -> None:
        for stmt in tree.body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                self._import(stmt, self.globals)
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.globals[stmt.name] = _Helper(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.globals[stmt.name] = _Opaque(f"class {stmt.name}")
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self._assign(stmt, self.globals)

    def _import(self, stmt: ast.Import | ast.ImportFrom, scope: dict[str, Any]) -> None:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                module = self._module_named(alias.name)
                if alias.asname:
                    scope[alias.asname] = module
                else:
                    top = alias.name.split(".")[0]
                    scope[top] = (
                        self._module_named(top) if isinstance(module, ModuleType) else module
                    )
            return
        base = stmt.module or ""
        for alias in stmt.names:
            name = alias.asname or alias.name
            if stmt.level:
                scope[name] = _Opaque(f"relative import {alias.name}")
            elif base == "alembic" and alias.name == "op":
                scope[name] = self.ops
            elif base == "alembic" and alias.name == "context":
                scope[name] = _Opaque("alembic.context", of_op=True)
            else:
                module = self._module_named(base)
                if isinstance(module, ModuleType):
                    try:
                        scope[name] = self._attr(module, alias.name)
                    except _Unknown:
                        scope[name] = self._module_named(f"{base}.{alias.name}")
                else:
                    scope[name] = _Opaque(f"{base}.{alias.name}")

    @staticmethod
    def _module_named(name: str) -> Any:
        if name != "sqlalchemy" and not name.startswith("sqlalchemy."):
            return _Opaque(f"never imported (application module {name})")
        try:
            return importlib.import_module(name)
        except ImportError:
            return _Opaque(f"module {name}")

    # -- statements -----------------------------------------------------------------------

    def run_function(self, name: str) -> None:
        helper = self.globals.get(name)
        if not isinstance(helper, _Helper):
            raise ConfigurationError(f"no {name}() function")
        with contextlib.suppress(_Return):
            self._block(helper.node.body, {})

    def _block(self, body: list[ast.stmt], scope: dict[str, Any]) -> None:
        for stmt in body:
            self._stmt(stmt, scope)

    def _tick(self) -> None:
        self.steps += 1
        if self.steps > _MAX_STEPS:
            raise ConfigurationError("the revision is too large to read statically")

    def _stmt(self, stmt: ast.stmt, scope: dict[str, Any]) -> None:
        self._tick()
        self.line = stmt.lineno
        if isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Constant):
                return  # a docstring
            self._effect(stmt.value, scope, stmt.lineno)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            self._assign(stmt, scope)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            self._with(stmt, scope)
        elif isinstance(stmt, ast.If):
            try:
                taken = [stmt.body if self._ev(stmt.test, scope) else stmt.orelse]
            except _Unknown:
                taken = [stmt.body, stmt.orelse]  # read both ways
            for body in taken:
                self._block(body, scope)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            self._for(stmt, scope)
        elif isinstance(stmt, ast.While):
            self._block(stmt.body, scope)  # read once
        elif isinstance(stmt, ast.Try):
            self._block(stmt.body, scope)
            self._block(stmt.orelse, scope)
            self._block(stmt.finalbody, scope)
        elif isinstance(stmt, ast.Return):
            raise _Return(self._ev(stmt.value, scope) if stmt.value is not None else None)
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            self._import(stmt, scope)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            scope[stmt.name] = _Helper(stmt)
        # raise, pass, break, continue, global, del, assert: nothing to render

    def _effect(self, expr: ast.expr, scope: dict[str, Any], line: int) -> None:
        """An expression statement: rendered when it is an op call, else ignored."""
        try:
            self._ev(expr, scope)
        except _Unknown as exc:
            if self._involves_op(expr, scope):
                self.emitted.append((line, _Problem(f"{_short(expr)}: {exc}")))

    def _involves_op(self, expr: ast.AST, scope: dict[str, Any]) -> bool:
        for node in ast.walk(expr):
            if isinstance(node, ast.Name):
                value = scope.get(node.id, self.globals.get(node.id))
                if self._is_op(value) or isinstance(value, _Helper):
                    return True
                if isinstance(value, _Opaque) and value.of_op:
                    return True
        return False

    def _is_op(self, value: Any) -> bool:
        return isinstance(value, (*self._op_types, self._ctx_type))

    def _assign(
        self, stmt: ast.Assign | ast.AnnAssign | ast.AugAssign, scope: dict[str, Any]
    ) -> None:
        if stmt.value is None:
            return
        value: Any
        try:
            if isinstance(stmt, ast.AugAssign):
                op = _BINOPS.get(type(stmt.op))
                if op is None or not isinstance(stmt.target, ast.Name):
                    raise _Unknown("augmented assignment")
                value = self._binop(
                    op, self._name(stmt.target.id, scope), self._ev(stmt.value, scope)
                )
            else:
                value = self._ev(stmt.value, scope)
        except _Unknown as exc:
            value = _Opaque(str(exc), of_op=self._involves_op(stmt.value, scope))
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            self._bind(target, value, scope)

    def _bind(self, target: ast.expr, value: Any, scope: dict[str, Any]) -> None:
        if isinstance(target, ast.Name):
            scope[target.id] = value
        elif isinstance(target, (ast.Tuple, ast.List)):
            try:
                items = list(value) if not isinstance(value, _Opaque) else None
            except TypeError:
                items = None
            if items is None or len(items) != len(target.elts):
                items = [value if isinstance(value, _Opaque) else _Opaque("unpacking")] * len(
                    target.elts
                )
            for t, v in zip(target.elts, items, strict=True):
                self._bind(t, v, scope)
        # attribute and subscript targets: nothing statically useful

    def _with(self, stmt: ast.With | ast.AsyncWith, scope: dict[str, Any]) -> None:
        entered: list[Any] = []
        for item in stmt.items:
            self.line = stmt.lineno
            try:
                manager = self._ev(item.context_expr, scope)
                if not hasattr(manager, "__enter__") or not self._is_alembic(manager):
                    raise _Unknown(f"context manager {_short(item.context_expr)}")
                try:
                    value = manager.__enter__()
                except Exception as exc:  # the library refused it
                    raise _Unknown(f"{type(exc).__name__}: {exc}") from exc
                entered.append(manager)
            except _Unknown as exc:
                value = _Opaque(str(exc), of_op=self._involves_op(item.context_expr, scope))
            if item.optional_vars is not None:
                self._bind(item.optional_vars, value, scope)
        self._block(stmt.body, scope)
        for manager in reversed(entered):
            self.line = stmt.lineno
            with contextlib.suppress(Exception):
                manager.__exit__(None, None, None)

    @staticmethod
    def _is_alembic(manager: Any) -> bool:
        module = getattr(type(manager), "__module__", "") or ""
        return module.startswith(("alembic.", "contextlib"))

    def _for(self, stmt: ast.For | ast.AsyncFor, scope: dict[str, Any]) -> None:
        try:
            items = list(self._sized(self._ev(stmt.iter, scope)))
        except (_Unknown, TypeError) as exc:
            self._bind(stmt.target, _Opaque(str(exc)), scope)
            self._block(stmt.body, scope)  # read once, with an unknown loop variable
            return
        for item in items:
            self._bind(stmt.target, item, scope)
            self._block(stmt.body, scope)
        self._block(stmt.orelse, scope)

    # -- expressions ----------------------------------------------------------------------

    def _name(self, name: str, scope: dict[str, Any]) -> Any:
        if name in scope:
            value = scope[name]
        elif name in self.globals:
            value = self.globals[name]
        elif name in _BUILTINS:
            value = _BUILTINS[name]
        elif name in ("True", "False", "None"):
            value = {"True": True, "False": False, "None": None}[name]
        else:
            raise _Unknown(f"{name} is not known statically")
        if isinstance(value, _Opaque):
            raise _Unknown(f"{name} is {value.why}")
        return value

    def _ev(self, node: ast.expr, scope: dict[str, Any]) -> Any:
        self._tick()
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self._name(node.id, scope)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            items: list[Any] = []
            for elt in node.elts:
                if isinstance(elt, ast.Starred):
                    items.extend(self._sized(self._ev(elt.value, scope)))
                else:
                    items.append(self._ev(elt, scope))
            if isinstance(node, ast.List):
                return items
            return tuple(items) if isinstance(node, ast.Tuple) else set(items)
        if isinstance(node, ast.Dict):
            out: dict[Any, Any] = {}
            for k, v in zip(node.keys, node.values, strict=True):
                if k is None:
                    out.update(self._ev(v, scope))
                else:
                    out[self._ev(k, scope)] = self._ev(v, scope)
            return out
        if isinstance(node, ast.JoinedStr):
            parts: list[str] = []
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    spec = self._ev(value.format_spec, scope) if value.format_spec else ""
                    _check_format(spec)
                    got = self._ev(value.value, scope)
                    if value.conversion in (114, 97):  # !r, !a
                        got = repr(got) if value.conversion == 114 else ascii(got)
                    elif value.conversion == 115:  # !s
                        got = str(got)
                    parts.append(format(got, spec))
                else:
                    parts.append(str(self._ev(value, scope)))
            return self._sized("".join(parts))
        if isinstance(node, ast.Attribute):
            return self._attr(self._ev(node.value, scope), node.attr)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.BinOp):
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise _Unknown(f"operator {type(node.op).__name__}")
            return self._binop(op, self._ev(node.left, scope), self._ev(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            value = self._ev(node.operand, scope)
            if isinstance(node.op, ast.Not):
                return not value
            if isinstance(node.op, ast.USub) and isinstance(value, (int, float)):
                return -value
            raise _Unknown(f"operator {type(node.op).__name__}")
        if isinstance(node, ast.BoolOp):
            result: Any = None
            for value_node in node.values:
                result = self._ev(value_node, scope)
                if isinstance(node.op, ast.And) and not result:
                    return result
                if isinstance(node.op, ast.Or) and result:
                    return result
            return result
        if isinstance(node, ast.Compare):
            left = self._ev(node.left, scope)
            for cmp, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._ev(right_node, scope)
                if not _CMPOPS[type(cmp)](left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.IfExp):
            branch = node.body if self._ev(node.test, scope) else node.orelse
            return self._ev(branch, scope)
        if isinstance(node, ast.Subscript):
            base: Any = self._ev(node.value, scope)
            index: Any = None
            if not isinstance(node.slice, ast.Slice):
                index = self._ev(node.slice, scope)
            else:
                parts_ = [
                    self._ev(p, scope) if p is not None else None
                    for p in (node.slice.lower, node.slice.upper, node.slice.step)
                ]
                index = slice(*parts_)
            if not isinstance(base, (str, bytes, list, tuple, dict)):
                raise _Unknown("subscript of a non-literal")
            try:
                return base[index]
            except (LookupError, TypeError) as exc:
                raise _Unknown(f"subscript: {exc}") from exc
        raise _Unknown(f"{type(node).__name__} expression")

    def _sized(self, value: Any) -> Any:
        try:
            size = len(value)
        except TypeError:
            return value
        if size > _MAX_SIZE:
            raise _Unknown("value too large")
        return value

    def _binop(self, op: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
        if op is operator.mul:
            for a, b in ((left, right), (right, left)):
                if (
                    isinstance(a, (str, bytes, list, tuple))
                    and isinstance(b, int)
                    and len(a) * max(b, 0) > _MAX_SIZE
                ):
                    raise _Unknown("value too large")
        if op is operator.mod and isinstance(left, str):
            _check_format(left)
        try:
            result = self._sized(op(left, right))
        except (TypeError, ValueError, ArithmeticError) as exc:
            raise _Unknown(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(result, int) and result.bit_length() > 4096:
            raise _Unknown("value too large")
        return result

    def _attr(self, base: Any, name: str) -> Any:
        if name.startswith("_"):
            raise _Unknown(f"private attribute {name}")
        if isinstance(base, ModuleType):
            if not base.__name__.startswith("sqlalchemy"):
                raise _Unknown(f"module {base.__name__}")
            value = getattr(base, name, _MISSING)
            if value is _MISSING:
                raise _Unknown(f"{base.__name__}.{name}")
            if isinstance(value, ModuleType) and not value.__name__.startswith("sqlalchemy"):
                raise _Unknown(f"module {value.__name__}")
            return value
        if isinstance(base, self._op_types):
            if name in _OP_DENY:
                raise _Unknown(f"op.{name}")
            return getattr(base, name)
        if isinstance(base, self._ctx_type):
            if name not in _CONTEXT_ALLOW:
                raise _Unknown(f"migration context .{name}")
            return getattr(base, name)
        if isinstance(base, _PLAIN_TYPES) or self._sqlalchemy(base):
            value = getattr(base, name, _MISSING)
            if value is _MISSING:
                raise _Unknown(f".{name}")
            return value
        raise _Unknown(f".{name} of {type(base).__name__}")

    @staticmethod
    def _sqlalchemy(value: Any) -> bool:
        module = getattr(value, "__module__", None)
        if not isinstance(module, str):
            module = getattr(type(value), "__module__", "") or ""
        return module.startswith(_SA_MODULES)

    def _callable(self, func: Any) -> bool:
        if isinstance(func, ModuleType):
            return False
        if any(func is b for b in _BUILTINS.values()):
            return True
        owner = getattr(func, "__self__", None)
        if owner is not None and (self._is_op(owner) or isinstance(owner, _PLAIN_TYPES)):
            return True
        return self._sqlalchemy(func)

    def _call(self, node: ast.Call, scope: dict[str, Any]) -> Any:
        func = self._ev(node.func, scope)
        args: list[Any] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                args.extend(self._sized(self._ev(arg.value, scope)))
            else:
                args.append(self._ev(arg, scope))
        kwargs: dict[str, Any] = {}
        for kw in node.keywords:
            if kw.arg is None:
                kwargs.update(self._ev(kw.value, scope))
            else:
                kwargs[kw.arg] = self._ev(kw.value, scope)
        if isinstance(func, _Helper):
            return self._inline(func, args, kwargs)
        if not self._callable(func):
            raise _Unknown(f"call of {_short(node.func)}")
        owner = getattr(func, "__self__", None)
        if owner is None or (not self._is_op(owner) and not self._sqlalchemy(func)):
            _check_plain_call(func, owner, args, kwargs)
        saved = self.line
        if owner is not None and self._is_op(owner):
            self.line = node.lineno  # statements it emits point at the op.* call
        try:
            return func(*args, **kwargs)
        except _Unknown:
            raise
        except Exception as exc:  # the library refused these arguments
            raise _Unknown(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.line = saved

    def _inline(self, helper: _Helper, args: list[Any], kwargs: dict[str, Any]) -> Any:
        if self.depth >= _MAX_DEPTH:
            raise _Unknown("helper calls nested too deep")
        spec = helper.node.args
        local: dict[str, Any] = {}
        params = [*spec.posonlyargs, *spec.args]
        defaults = [None] * (len(params) - len(spec.defaults)) + list(spec.defaults)
        for i, param in enumerate(params):
            if i < len(args):
                local[param.arg] = args[i]
            elif param.arg in kwargs:
                local[param.arg] = kwargs.pop(param.arg)
            elif defaults[i] is not None:
                local[param.arg] = self._ev(defaults[i], self.globals)  # type: ignore[arg-type]
            else:
                raise _Unknown(f"{helper.node.name}() without {param.arg}")
        for param, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
            if param.arg in kwargs:
                local[param.arg] = kwargs.pop(param.arg)
            elif default is not None:
                local[param.arg] = self._ev(default, self.globals)
            else:
                raise _Unknown(f"{helper.node.name}() without {param.arg}")
        if spec.vararg is not None:
            local[spec.vararg.arg] = tuple(args[len(params) :])
        if spec.kwarg is not None:
            local[spec.kwarg.arg] = kwargs
        self.depth += 1
        try:
            self._block(helper.node.body, local)
        except _Return as ret:
            return ret.value
        finally:
            self.depth -= 1
        return None


_MISSING = object()
_BIG_NUMBER = re.compile(r"\d{7,}")


def _check_format(text: Any) -> None:
    """Refuse format strings that would build huge strings (a width of a million)."""
    if isinstance(text, str) and _BIG_NUMBER.search(text):
        raise _Unknown("format width too large")


def _check_plain_call(func: Any, owner: Any, args: list[Any], kwargs: dict[str, Any]) -> None:
    """Builtins and str/list methods: no argument that makes a huge value."""
    for value in [*args, *kwargs.values()]:
        if isinstance(value, int) and abs(value) > _MAX_SIZE:
            raise _Unknown("argument too large")
    if func is format or (isinstance(owner, str) and getattr(func, "__name__", "") == "format"):
        _check_format(owner if isinstance(owner, str) else (args[1:2] or [""])[0])


def _short(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _render(tree: ast.Module, function: str) -> list[tuple[int | None, str | _Problem]]:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    ctx = MigrationContext.configure(
        dialect_name="postgresql",
        opts={"as_sql": True, "output_buffer": io.StringIO(), "transactional_ddl": True},
    )
    ops = Operations(ctx)
    reader = _Reader(tree, ops, ctx)

    def capture(text: str) -> None:
        reader.emitted.append((reader.line, text))

    impl: Any = ctx.impl
    impl.static_output = capture
    with ctx.begin_transaction(_per_migration=True):
        reader.run_function(function)
    return reader.emitted


def _statements(
    emitted: list[tuple[int | None, str | _Problem]], lines: list[str], path: str
) -> Iterator[Statement]:
    for line, text in emitted:
        here = line or 1
        around = "\n".join(lines[max(here - 2, 0) : here]) if line else ""
        ignore = parse_ignores(around)
        if isinstance(text, _Problem):
            yield Statement(
                None,
                lines[here - 1].strip() if here <= len(lines) else "",
                path,
                here,
                1,
                here,
                ignore=ignore,
                error=f"cannot be read without running the file: {text.why}",
                problem="MIG017",
            )
            continue
        for stmt in split_sql(text, path):
            stmt.line = stmt.end_line = here
            stmt.column = 1
            if ignore is not None:
                stmt.ignore = ignore if stmt.ignore is None else stmt.ignore | ignore
            yield stmt


def revision_statements(
    path: str | Path, *, function: str = "upgrade", transactional: bool = True
) -> list[Statement]:
    """The statements ``function`` of the revision at ``path`` emits, in order.

    The file is read statically, never imported (see the module docstring).
    ``transactional`` adds the ``BEGIN``/``COMMIT`` Alembic wraps a migration
    in on PostgreSQL (``transactional_ddl``); ``autocommit_block()`` shows as
    COMMIT ... BEGIN. An ``op.*`` call that cannot be evaluated statically is
    a statement with ``problem="MIG017"``. Raises
    :class:`~dbopt.ConfigurationError` when the file does not parse as Python
    or has no such function.
    """
    file = Path(path)
    tree, source = _parse(file)
    lines = source.splitlines()
    try:
        emitted = _render(tree, function)
    except RecursionError as exc:
        raise ConfigurationError(f"cannot read {path}: nested too deeply") from exc
    if transactional:
        emitted = [(None, "BEGIN;"), *emitted, (None, "COMMIT;")]
    return list(_statements(emitted, lines, str(path)))
