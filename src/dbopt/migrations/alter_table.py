"""ALTER TABLE: the sub-commands that lock, rewrite or scan an existing table."""

from __future__ import annotations

import copy
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from dbopt.migrations.ddl import (
    SERIAL,
    SMALL_INT,
    TableRef,
    column_type,
    deparse,
    is_not_null_check,
    show,
    table_ref,
    volatility,
)
from dbopt.migrations.locks import lock_of
from dbopt.migrations.state import CheckerState, flag_set
from dbopt.postgres.render import ident, index_name

__all__ = ["AlterTableRules"]


class AlterTableRules(CheckerState):
    """MIG004-008, 010, 012-015 as they apply to ``ALTER TABLE`` sub-commands."""

    def _AlterTableStmt(self, node: Any) -> None:  # noqa: N802
        if node.objtype != ObjectType.OBJECT_TABLE or node.relation is None:
            return
        ref = table_ref(node.relation)
        new = self._new(ref)
        self._schema(node.relation)
        for cmd in node.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                primary = any(
                    c.contype == ConstrType.CONSTR_PRIMARY for c in cmd.def_.constraints or ()
                )
                self._column_types(ref, cmd.def_, primary=primary)
            self._robust_cmd(ref, cmd)
            if cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(
                cmd.def_, ast.Constraint
            ):
                self._note_constraint(ref, cmd.def_)
            if new:
                continue
            handler = getattr(self, f"_at_{cmd.subtype.name[3:].lower()}", None)
            if handler is not None:
                handler(ref, node, cmd)
        if not new:
            self._locks(ref)

    # -- ALTER TABLE sub-commands ------------------------------------------------------
    def _at_addcolumn(self, ref: TableRef, node: Any, cmd: Any) -> None:
        col = cmd.def_
        name = col.colname
        typ = column_type(col.typeName)
        cons = list(col.constraints or ())
        default = next((c for c in cons if c.contype == ConstrType.CONSTR_DEFAULT), None)
        if typ in SERIAL:
            self._report_column(
                "MIG007",
                ref,
                name,
                f"adds {typ} column {name} to {show(ref)}: every row "
                "gets a nextval() (table rewrite)",
            )
        elif (
            flag_set(col.identity)
            or flag_set(col.generated)
            or any(
                c.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED) for c in cons
            )
        ):
            self._report_column(
                "MIG007",
                ref,
                name,
                f"adds identity or stored generated column {name} to {show(ref)} (table rewrite)",
            )
        elif default is not None:
            verdict, funcs = volatility(default.raw_expr)
            if verdict != "stable":
                calls = ", ".join(f"{f}()" for f in funcs) or "an expression"
                self._report_column(
                    "MIG007",
                    ref,
                    name,
                    f"adds column {name} to {show(ref)} with default {calls}"
                    + (
                        " (volatile: table rewrite)"
                        if verdict == "volatile"
                        else ", which rewrites the table unless it is STABLE or IMMUTABLE"
                    ),
                    functions=funcs,
                    volatility=verdict,
                )
        if (
            default is not None
            and self.pg_version is not None
            and self.pg_version < 11
            and not any(f.code == "MIG007" for f in self._out)
        ):
            self._report_column(
                "MIG007",
                ref,
                name,
                f"adds column {name} to {show(ref)} with a default: before PostgreSQL 11 "
                "every default rewrites the table",
            )
        not_null = col.is_not_null or any(c.contype == ConstrType.CONSTR_NOTNULL for c in cons)
        generated = flag_set(col.generated) or any(
            c.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED) for c in cons
        )
        # a stored generated or identity column is filled for existing rows: no failure
        if not_null and default is None and typ not in SERIAL and not generated:
            self._report_column(
                "MIG015",
                ref,
                name,
                f"adds NOT NULL column {name} to {show(ref)} without a default",
            )
        for con in cons:
            self._constraint(ref, node, con, column=name)
        if any(c.contype == ConstrType.CONSTR_PRIMARY for c in cons) and typ in SMALL_INT:
            self._report_column(
                "MIG012",
                ref,
                name,
                f"primary key {name} of {show(ref)} is {typ}",
                type=typ,
            )

    def _at_addconstraint(self, ref: TableRef, node: Any, cmd: Any) -> None:
        self._constraint(ref, node, cmd.def_)

    def _constraint(self, ref: TableRef, node: Any, con: Any, column: str | None = None) -> None:
        if not isinstance(con, ast.Constraint):
            return
        label = con.conname or "(unnamed)"
        obj = f"{show(ref)}.{ident(con.conname)}" if con.conname else show(ref)
        if con.contype == ConstrType.CONSTR_EXCLUSION:
            self._report(
                "MIG040",
                obj,
                f"adds exclusion constraint {label} to {show(ref)}: index build and check of "
                "every row under ACCESS EXCLUSIVE",
                table=show(ref),
                constraint=con.conname,
            )
            return
        if con.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK):
            checked = is_not_null_check(con)
            if con.skip_validation:
                if checked and con.conname:
                    self.pending_checks[(ref[1], con.conname)] = checked
                if con.conname and self.in_transaction:
                    self.not_valid_in_tx.add((ref[1], con.conname))
                return
            if checked:
                self.proven_not_null.add((ref[1], checked))
            code = "MIG004" if con.contype == ConstrType.CONSTR_FOREIGN else "MIG005"
            kind = "foreign key" if code == "MIG004" else "CHECK"
            fix = None
            if column is None and con.conname:
                safe_node = copy.copy(node)
                safe_con = copy.copy(con)
                safe_con.skip_validation, safe_con.initially_valid = True, False
                cmd = copy.copy(node.cmds[0])
                cmd.def_ = safe_con
                safe_node.cmds = (cmd,)
                fix = (
                    f"{deparse(safe_node)};\n-- then, in a separate transaction:\n"
                    f"ALTER TABLE {show(ref)} VALIDATE CONSTRAINT {ident(con.conname)};"
                )
            self._report(
                code,
                obj,
                f"adds {kind} {label} to {show(ref)} without NOT VALID",
                fix,
                table=show(ref),
                constraint=con.conname,
            )
        elif con.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY):
            if con.indexname:
                return
            kind = "UNIQUE" if con.contype == ConstrType.CONSTR_UNIQUE else "PRIMARY KEY"
            keys = [str(k.sval) for k in con.keys or ()] or ([column] if column else [])
            fix = None
            if keys and column is None:
                index = con.conname or f"{ref[1]}_{'_'.join(keys)}_key"
                fix = (
                    f"CREATE UNIQUE INDEX CONCURRENTLY {ident(index)} ON {show(ref)} "
                    f"({', '.join(ident(k) for k in keys)});\n"
                    f"ALTER TABLE {show(ref)} ADD CONSTRAINT {ident(index)} {kind} "
                    f"USING INDEX {ident(index)};"
                )
            self._report(
                "MIG014",
                obj,
                f"adds {kind} {label} to {show(ref)}, building its index under ACCESS EXCLUSIVE",
                fix,
                table=show(ref),
                constraint=con.conname,
            )

    def _note_constraint(self, ref: TableRef, con: Any) -> None:
        checked = is_not_null_check(con)
        if checked and con.conname:
            self.not_null_checks[(ref[1], con.conname)] = checked

    def _at_validateconstraint(self, ref: TableRef, node: Any, cmd: Any) -> None:
        key = (ref[1], cmd.name)
        if key in self.not_valid_in_tx:
            self._report(
                "MIG019",
                f"{show(ref)}.{ident(cmd.name)}",
                f"validates {cmd.name} of {show(ref)} in the transaction that added it NOT "
                "VALID: the ADD CONSTRAINT's lock is held through the validating scan",
                f"COMMIT;  -- before:\nALTER TABLE {show(ref)} VALIDATE CONSTRAINT "
                f"{ident(cmd.name)};",
                table=show(ref),
                constraint=cmd.name,
            )
        col = self.pending_checks.pop(key, None)
        if col is not None:
            self.proven_not_null.add((ref[1], col))
        elif key not in self.not_null_checks:
            self.validated_elsewhere.add(key)

    def _at_detachpartition(self, ref: TableRef, node: Any, cmd: Any) -> None:
        if cmd.def_.concurrent:
            if self.in_transaction:
                self._report_table(
                    "MIG003",
                    ref,
                    f"DETACH PARTITION CONCURRENTLY from {show(ref)} inside a transaction",
                )
            return
        part = table_ref(cmd.def_.name)
        self._report_table(
            "MIG021",
            ref,
            f"detaches partition {show(part)} from {show(ref)} without CONCURRENTLY "
            "(ACCESS EXCLUSIVE on the partitioned table)",
            f"ALTER TABLE {show(ref)} DETACH PARTITION {show(part)} CONCURRENTLY;  "
            "-- outside a transaction",
            partition=show(part),
        )

    def _at_dropnotnull(self, ref: TableRef, node: Any, cmd: Any) -> None:
        self._report_column(
            "MIG028",
            ref,
            cmd.name,
            f"drops NOT NULL from {cmd.name} of {show(ref)}",
        )

    def _proven(self, ref: TableRef, column: str) -> bool:
        """A validated CHECK (column IS NOT NULL) exists (PostgreSQL 12+ uses it)."""
        if self.pg_version is not None and self.pg_version < 12:
            return False
        if (ref[1], column) in self.proven_not_null:
            return True
        # VALIDATE of a constraint added by an earlier migration, named after the column
        return any(
            table == ref[1] and column.lower() in name.lower()
            for table, name in self.validated_elsewhere
        )

    def _robust_cmd(self, ref: TableRef, cmd: Any) -> None:
        if self.in_transaction:
            if cmd.subtype == AlterTableType.AT_DropConstraint and cmd.name:
                self.dropped_constraints.add(cmd.name)
            return
        what = None
        if cmd.subtype == AlterTableType.AT_DropConstraint:
            if cmd.name:
                self.dropped_constraints.add(cmd.name)
            what = None if cmd.missing_ok else "DROP CONSTRAINT without IF EXISTS"
        elif cmd.subtype == AlterTableType.AT_AddColumn:
            what = None if cmd.missing_ok else "ADD COLUMN without IF NOT EXISTS"
        elif cmd.subtype == AlterTableType.AT_DropColumn:
            what = None if cmd.missing_ok else "DROP COLUMN without IF EXISTS"
        elif (
            cmd.subtype == AlterTableType.AT_AddConstraint
            and isinstance(cmd.def_, ast.Constraint)
            and cmd.def_.conname not in self.dropped_constraints
        ):
            what = "ADD CONSTRAINT outside a transaction, not preceded by its DROP IF EXISTS"
        if what is not None:
            self._report_table("MIG032", ref, f"{what} on {show(ref)}")

    def _at_setnotnull(self, ref: TableRef, node: Any, cmd: Any) -> None:
        if self._proven(ref, cmd.name):
            self.cheap_not_null.add(cmd.name)
            self._lock = lock_of(node, frozenset(self.cheap_not_null))
            return
        con = index_name(ref[1], [cmd.name], "not_null")
        tbl, col = show(ref), ident(cmd.name)
        fix = (
            f"ALTER TABLE {tbl} ADD CONSTRAINT {ident(con)} CHECK ({col} IS NOT NULL) "
            f"NOT VALID;\n-- separate transaction:\n"
            f"ALTER TABLE {tbl} VALIDATE CONSTRAINT {ident(con)};\n"
            f"ALTER TABLE {tbl} ALTER COLUMN {col} SET NOT NULL;\n"
            f"ALTER TABLE {tbl} DROP CONSTRAINT {ident(con)};"
        )
        self._report(
            "MIG006",
            f"{tbl}.{col}",
            f"sets {cmd.name} of {tbl} NOT NULL without a validated CHECK (it IS NOT NULL) first",
            fix,
            table=tbl,
            column=cmd.name,
        )

    def _at_altercolumntype(self, ref: TableRef, node: Any, cmd: Any) -> None:
        col = cmd.def_
        typ = column_type(col.typeName) if col is not None else "?"
        using = " with USING" if col is not None and col.raw_default is not None else ""
        self._report_column(
            "MIG008",
            ref,
            cmd.name,
            f"changes the type of {cmd.name} of {show(ref)} to {typ}{using}",
            type=typ,
        )
        if col is not None:
            self._column_conventions(ref, col, cmd.name)
        if typ in ("timestamp", "timestamp[]"):
            self._report_column(
                "MIG013",
                ref,
                cmd.name,
                f"changes {cmd.name} of {show(ref)} to timestamp without time zone",
            )

    def _at_dropcolumn(self, ref: TableRef, node: Any, cmd: Any) -> None:
        self._report_column(
            "MIG010",
            ref,
            cmd.name,
            f"drops column {cmd.name} of {show(ref)}",
        )
