"""The migration checker: walks statements in order, tracking what the migration did so far."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pglast import ast
from pglast.enums import ConstrType, ObjectType, TransactionStmtKind

from dbopt.findings import Finding
from dbopt.migrations.alter_table import AlterTableRules
from dbopt.migrations.ddl import SMALL_INT, TableRef, column_type, deparse, show, table_ref
from dbopt.migrations.statements import Statement
from dbopt.postgres.render import ident

__all__ = ["Checker"]

_BEGIN = {TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START}
_END = {
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_PREPARE,
}


class Checker(AlterTableRules):
    """Feed statements in order with :meth:`feed`; each returns its findings.

    Findings silenced by inline comments collect in :attr:`suppressed`.
    ``in_transaction``: the runner wraps the migration in a transaction
    (Alembic does; psql -1 and Flyway do). ``require_lock_timeout``: report
    MIG011 (turn off when the runner sets lock_timeout itself, e.g. env.py).
    """

    def feed(self, stmt: Statement) -> list[Finding]:
        """Check one statement (in migration order) and return its findings."""
        self._out, self._stmt = [], stmt
        node = stmt.node
        if node is None:
            if stmt.problem is not None:
                self._report(stmt.problem, stmt.path or "<sql>", stmt.error or stmt.problem)
            else:
                self._report("MIG000", stmt.path or "<sql>", f"cannot parse: {stmt.error}")
            return self._out
        handler = getattr(self, "_" + type(node).__name__, None)
        if handler is not None:
            handler(node)
        return self._out

    def feed_all(self, statements: Iterable[Statement]) -> list[Finding]:
        """Findings of every statement in order."""
        out: list[Finding] = []
        for stmt in statements:
            out.extend(self.feed(stmt))
        return out

    # -- statement kinds ----------------------------------------------------------------
    def _TransactionStmt(self, node: Any) -> None:  # noqa: N802
        if node.kind in _BEGIN:
            self.in_transaction = True
        elif node.kind in _END:
            self.in_transaction = False
            if self.lock_timeout_local:
                self.lock_timeout = self.lock_timeout_local = False

    def _VariableSetStmt(self, node: Any) -> None:  # noqa: N802
        if (node.name or "").lower() != "lock_timeout":
            return
        value = ""
        if node.args:
            arg = node.args[0]
            val = getattr(arg, "val", None)
            value = str(getattr(val, "sval", None) or getattr(val, "ival", "") or "")
        on = int(node.kind) == 0 and value not in ("", "0", "0s", "0ms")
        self.lock_timeout = on
        self.lock_timeout_local = on and bool(node.is_local)

    def _CreateStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.relation)
        self.created.add(ref)
        pk_cols: list[str] = []
        types: dict[str, str] = {}
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                colname = str(elt.colname)
                types[colname] = column_type(elt.typeName)
                self._column_types(ref, elt)
                if any(c.contype == ConstrType.CONSTR_PRIMARY for c in elt.constraints or ()):
                    pk_cols.append(colname)
            elif isinstance(elt, ast.Constraint) and elt.contype == ConstrType.CONSTR_PRIMARY:
                pk_cols.extend(str(k.sval) for k in elt.keys or ())
        if len(pk_cols) == 1 and types.get(pk_cols[0]) in SMALL_INT:
            col = pk_cols[0]
            self._report(
                "MIG012",
                f"{show(ref)}.{ident(col)}",
                f"primary key {col} of new table {show(ref)} is {types[col]}",
                f"{ident(col)} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                table=show(ref),
                column=col,
            )

    def _IndexStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.relation)
        name = node.idxname or "(unnamed)"
        if node.concurrent:
            if self.in_transaction:
                self._report(
                    "MIG003",
                    show(ref),
                    f"CREATE INDEX CONCURRENTLY {name} inside a transaction",
                    table=show(ref),
                    index=name,
                )
            return
        if self._new(ref):
            return
        safe = copy.copy(node)
        safe.concurrent = True
        self._report(
            "MIG001",
            show(ref),
            f"CREATE INDEX {name} on existing table {show(ref)} without CONCURRENTLY",
            deparse(safe) + ";  -- outside a transaction",
            table=show(ref),
            index=name,
        )
        self._locks(ref)

    def _DropStmt(self, node: Any) -> None:  # noqa: N802
        kind = node.removeType
        refs: list[TableRef] = []
        for obj in node.objects or ():
            if isinstance(obj, (list, tuple)) and obj:
                parts = [str(p.sval) for p in obj]
                refs.append((parts[-2] if len(parts) > 1 else None, parts[-1]))
        if kind == ObjectType.OBJECT_INDEX:
            for ref in refs:
                name = show(ref)
                if node.concurrent and self.in_transaction:
                    self._report(
                        "MIG003",
                        name,
                        f"DROP INDEX CONCURRENTLY {name} inside a transaction",
                        index=ref[1],
                    )
                elif not node.concurrent:
                    self._report(
                        "MIG002",
                        name,
                        f"DROP INDEX {name} without CONCURRENTLY",
                        f"DROP INDEX CONCURRENTLY {name};  -- outside a transaction",
                        index=ref[1],
                    )
        elif kind == ObjectType.OBJECT_TABLE:
            for ref in refs:
                if self._new(ref):
                    continue
                self._report("MIG010", show(ref), f"drops table {show(ref)}", table=show(ref))
                self._locks(ref)

    def _ReindexStmt(self, node: Any) -> None:  # noqa: N802
        concurrent = any(getattr(p, "defname", "") == "concurrently" for p in node.params or ())
        if concurrent and self.in_transaction:
            self._report(
                "MIG003", node.name or "reindex", "REINDEX CONCURRENTLY inside a transaction"
            )

    def _RenameStmt(self, node: Any) -> None:  # noqa: N802
        if node.relation is None:
            return
        ref = table_ref(node.relation)
        if self._new(ref):
            return
        if node.renameType == ObjectType.OBJECT_TABLE:
            self._report(
                "MIG009",
                show(ref),
                f"renames table {show(ref)} to {node.newname}",
                f"ALTER TABLE {show(ref)} RENAME TO {ident(node.newname)};\n"
                f"CREATE VIEW {show(ref)} AS SELECT * FROM "
                f"{show((ref[0], node.newname))};  -- old name keeps working",
                table=show(ref),
            )
        elif node.renameType == ObjectType.OBJECT_COLUMN:
            self._report(
                "MIG009",
                f"{show(ref)}.{ident(node.subname)}",
                f"renames column {node.subname} of {show(ref)} to {node.newname}",
                table=show(ref),
                column=node.subname,
            )
        self._locks(ref)
