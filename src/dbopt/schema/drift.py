"""``diff(metadata, engine)``: where the live database and the SQLAlchemy models disagree.

Alembic's autogenerate comparison (``produce_migrations``, the machinery of
``compare_metadata``) does the comparing; each difference becomes a
:class:`~dbopt.Finding` whose fix is the SQL Alembic would emit for it and
whose metadata carries the ``op.*`` code for a revision. Partitions of
partitioned tables are left out (a model maps the parent), and so is
``alembic_version``.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbopt.errors import ConfigurationError, DatabaseError
from dbopt.findings import Finding, FindingsReport, Severity
from dbopt.postgres.render import qualified
from dbopt.suppress import Suppressions, SuppressionsLike

__all__ = ["RULES", "DriftReport", "DriftRule", "diff"]


@dataclass(frozen=True)
class DriftRule:
    """A kind of drift: code, name, severity, what and why (the SARIF rule description)."""

    code: str
    name: str
    severity: Severity
    summary: str
    why: str


@dataclass(eq=False)
class DriftReport(FindingsReport):
    """What :func:`diff` found: one finding per difference, and the suppressed ones.

    A :class:`~dbopt.findings.FindingsReport`; it iterates, indexes and
    compares like the list of findings ``diff`` used to return.
    ``errors`` stays empty: a comparison that fails raises instead.
    """

    findings: list[Finding]
    suppressed: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    schemas: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the shared report keys plus the ``schemas`` compared."""
        return {**super().to_dict(), "schemas": list(self.schemas)}


def _d(code: str, name: str, severity: str, summary: str, why: str) -> DriftRule:
    return DriftRule(code, name, Severity.parse(severity), summary, why)


_MISSING = (
    "The application expects it: queries that use it fail (an ORM selects every mapped "
    "column), typically only in production where the migration was never run."
)
_EXTRA = (
    "The database has something the models do not know about: a migration that was "
    "never written down, a manual fix, or leftovers to drop."
)
_ALL = [
    _d(
        "DRIFT001",
        "table_missing",
        "error",
        "A model's table is missing from the database.",
        _MISSING,
    ),
    _d("DRIFT002", "table_not_in_models", "info", "A database table has no model.", _EXTRA),
    _d(
        "DRIFT003",
        "column_missing",
        "error",
        "A model's column is missing from the database.",
        _MISSING,
    ),
    _d(
        "DRIFT004",
        "column_not_in_models",
        "warning",
        "A database column is not in the model.",
        _EXTRA + " A NOT NULL column without default breaks the model's INSERTs.",
    ),
    _d(
        "DRIFT005",
        "type_mismatch",
        "warning",
        "A column's type differs from the model's.",
        "Values the application writes may be truncated, rejected or compared differently.",
    ),
    _d(
        "DRIFT006",
        "nullable_mismatch",
        "warning",
        "A column's nullability differs from the model's.",
        "The database accepts NULLs the model forbids, or rejects NULLs the model writes.",
    ),
    _d(
        "DRIFT007",
        "default_mismatch",
        "info",
        "A column's server default differs.",
        "Rows inserted outside the application get different values than the model assumes.",
    ),
    _d(
        "DRIFT008",
        "index_missing",
        "warning",
        "A model's index is missing from the database.",
        "Queries the index was meant for scan the table instead.",
    ),
    _d("DRIFT009", "index_not_in_models", "info", "A database index is not in the models.", _EXTRA),
    _d(
        "DRIFT010",
        "constraint_missing",
        "error",
        "A model's unique or foreign key constraint is missing from the database.",
        "The database does not enforce what the application relies on: duplicates and orphans "
        "can be written.",
    ),
    _d(
        "DRIFT011",
        "constraint_not_in_models",
        "info",
        "A database constraint is not in the models.",
        _EXTRA,
    ),
    _d(
        "DRIFT012",
        "comment_mismatch",
        "info",
        "A table or column comment differs.",
        "Documentation in the database and in the code disagree.",
    ),
]

#: Every drift kind by code.
RULES: dict[str, DriftRule] = {r.code: r for r in _ALL}

_KIND = {
    "add_table": "DRIFT001",
    "remove_table": "DRIFT002",
    "add_column": "DRIFT003",
    "remove_column": "DRIFT004",
    "modify_type": "DRIFT005",
    "modify_nullable": "DRIFT006",
    "modify_default": "DRIFT007",
    "add_index": "DRIFT008",
    "remove_index": "DRIFT009",
    "add_constraint": "DRIFT010",
    "add_fk": "DRIFT010",
    "remove_constraint": "DRIFT011",
    "remove_fk": "DRIFT011",
    "modify_comment": "DRIFT012",
    "add_table_comment": "DRIFT012",
    "remove_table_comment": "DRIFT012",
}


def _leaves(op: Any) -> Iterator[Any]:
    for child in getattr(op, "ops", None) or ():
        if getattr(child, "ops", None) is not None:
            yield from _leaves(child)
        else:
            yield child


def _sql(op: Any) -> str:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    buf = io.StringIO()
    ctx = MigrationContext.configure(
        dialect_name="postgresql", opts={"as_sql": True, "output_buffer": buf}
    )
    Operations(ctx).invoke(op)
    return "\n".join(line for line in buf.getvalue().strip().splitlines() if line.strip())


def _python(op: Any) -> str:
    from alembic.autogenerate import render_python_code
    from alembic.operations import ops

    code = render_python_code(ops.UpgradeOps(ops=[op]))
    return "\n".join(
        line.strip() for line in code.splitlines() if line.strip() and "###" not in line
    )


def _describe(kind: str, diff: Any, schema_default: str | None) -> tuple[str, str, dict[str, Any]]:
    """(object, message, metadata) of one diff tuple or modify list."""
    if isinstance(diff, list):  # modify_*: [(kind, schema, table, column, info, old, new)]
        _, schema, table, column, _info, old, new = diff[0]
        obj = f"{qualified(schema or schema_default, table)}.{qualified(column)}"
        what = {
            "modify_type": "type",
            "modify_nullable": "nullable",
            "modify_default": "server default",
            "modify_comment": "comment",
        }[kind]
        return (
            obj,
            f"{what} of {obj} is {old!s} in the database, {new!s} in the model",
            {
                "table": table,
                "column": column,
                "database": str(old),
                "model": str(new),
            },
        )
    item = diff[1] if kind.endswith(("_table", "_table_comment")) else None
    if item is not None:
        obj = qualified(item.schema or schema_default, item.name)
        where = (
            "in the models but not in the database"
            if kind == "add_table"
            else "in the database but not in the models"
        )
        if kind.endswith("comment"):
            where = "has a different comment in the database"
        return (
            obj,
            f"table {obj} is {where}" if "comment" not in kind else f"table {obj} {where}",
            {"table": item.name},
        )
    if kind in ("add_column", "remove_column"):
        _, schema, table, column = diff
        obj = f"{qualified(schema or schema_default, table)}.{qualified(column.name)}"
        where = "missing from the database" if kind == "add_column" else "not in the model"
        return (
            obj,
            f"column {obj} ({column.type}) is {where}",
            {
                "table": table,
                "column": column.name,
                "type": str(column.type),
            },
        )
    thing = diff[1]
    table = thing.table
    tname = qualified(table.schema or schema_default, table.name)
    label = {
        "add_index": "index",
        "remove_index": "index",
        "add_fk": "foreign key",
        "remove_fk": "foreign key",
    }.get(kind, type(thing).__name__)
    cols = [c.name for c in getattr(thing, "columns", [])]
    name = thing.name or f"({', '.join(cols)})"
    shown = qualified(str(thing.name)) if thing.name else f"({', '.join(map(qualified, cols))})"
    where = "missing from the database" if kind.startswith("add") else "not in the models"
    return (
        f"{tname}.{shown}",
        f"{label} {name} on {tname} is {where}",
        {
            "table": table.name,
            "name": thing.name,
            "columns": cols,
        },
    )


def _filter(
    schemas: Sequence[str],
    default: str | None,
    partitions: set[tuple[str | None, str]],
    exclude_tables: Sequence[str],
) -> Callable[[str | None, str, dict[str, Any]], bool]:
    def include_name(name: str | None, type_: str, parents: dict[str, Any]) -> bool:
        if type_ == "schema":
            return (name or default) in schemas
        if type_ == "table":
            schema = parents.get("schema_name") or default
            return name not in exclude_tables and (schema, name) not in partitions
        return True

    return include_name


def diff(
    metadata: Any,
    target: Any,
    *,
    schemas: Sequence[str] | None = None,
    compare_server_default: bool = False,
    exclude_tables: Sequence[str] = ("alembic_version",),
    lock_timeout_ms: int = 2000,
    suppress: SuppressionsLike = None,
) -> DriftReport:
    """Compare SQLAlchemy ``metadata`` (or a declarative base) with the database ``target``.

    ``target`` is an Engine (or URL string). ``schemas`` defaults to the
    schemas the metadata's tables name (the connection's default schema for
    tables without one). ``suppress`` drops findings by code, name or object
    glob (see :mod:`dbopt.suppress`). Findings say whether the database or the models
    lack something; ``fix`` holds the SQL that makes the database match the
    models (as a comment where that would drop something). Reflection runs
    under ``lock_timeout_ms`` and reads the catalog only. Returns a
    :class:`DriftReport` (it iterates like the list of findings).
    """
    from alembic.autogenerate import produce_migrations
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import Engine
    from sqlalchemy.exc import SQLAlchemyError

    meta = getattr(metadata, "metadata", metadata)
    if not hasattr(meta, "tables"):
        raise ConfigurationError(f"diff needs a MetaData or declarative base, got {metadata!r}")
    engine = target if isinstance(target, Engine) else create_engine(target)
    try:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT set_config('lock_timeout', :v, true)"),
                {"v": f"{int(lock_timeout_ms)}ms"},
            )
            default: str = conn.dialect.default_schema_name or "public"
            named: set[str] = {str(t.schema or default) for t in meta.tables.values()}
            wanted = list(schemas) if schemas else sorted(named or {default})
            partitions = {
                (r[0], r[1])
                for r in conn.execute(
                    text(
                        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n"
                        " ON n.oid = c.relnamespace WHERE c.relispartition"
                    )
                )
            }
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "compare_server_default": compare_server_default,
                    "include_schemas": True,
                    "include_name": _filter(wanted, default, partitions, exclude_tables),
                    "target_metadata": meta,
                },
            )
            script = produce_migrations(ctx, meta)
            conn.rollback()
    except SQLAlchemyError as exc:
        raise DatabaseError(f"drift comparison failed: {exc}") from exc
    finally:
        if engine is not target:
            engine.dispose()
    findings = []
    for op in _leaves(script.upgrade_ops):
        found = op.to_diff_tuple()
        sql = _sql(op)
        code = _python(op)
        for kind, item in _split(found):
            rule = RULES[_KIND.get(kind, "DRIFT011")]
            obj, message, details = _describe(kind, item, default)
            fix = (
                sql
                if not kind.startswith("remove")
                else (
                    "-- add it to the models, or drop it to match them:\n"
                    + "\n".join(f"-- {line}" for line in sql.splitlines())
                )
            )
            findings.append(
                Finding(
                    code=rule.code,
                    severity=rule.severity,
                    object=obj,
                    message=message,
                    why=rule.why,
                    fix=fix,
                    metadata={"rule": rule.name, "kind": kind, "alembic": code, **details},
                )
            )
    kept, silenced = Suppressions.coerce(suppress).split(findings)
    return DriftReport(findings=kept, suppressed=silenced, schemas=wanted)


def _split(found: Any) -> Iterator[tuple[str, Any]]:
    """(kind, diff) pairs: a modify op lists one tuple per changed attribute."""
    if isinstance(found, list):
        for item in found:
            yield item[0], [item]
    else:
        yield found[0], found
