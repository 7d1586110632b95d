"""What the migration checker remembers between statements, and how it reports.

State carried from statement to statement: tables created here (exempt from
the locking rules), whether a transaction is open (CONCURRENTLY fails in
one), whether lock_timeout is set, and which ``CHECK (col IS NOT NULL)``
constraints were validated (they make SET NOT NULL cheap).
"""

from __future__ import annotations

from typing import Any

from dbopt.findings import Finding
from dbopt.migrations.ddl import TableRef, column_type, show
from dbopt.migrations.rules import RULES
from dbopt.migrations.statements import Statement
from dbopt.postgres.render import ident

__all__ = ["CheckerState", "flag_set"]


def flag_set(flag: Any) -> bool:
    """pglast spells an unset char field ``"\\x00"``."""
    return bool(flag) and flag != "\x00"


class CheckerState:
    """The checker's memory of the migration so far, and ``_report`` for its rules."""

    def __init__(self, *, in_transaction: bool = False, require_lock_timeout: bool = True) -> None:
        self.in_transaction = in_transaction
        self.require_lock_timeout = require_lock_timeout
        self.created: set[TableRef] = set()
        self.lock_timeout = False
        self.lock_timeout_local = False
        self.lock_timeout_reported = False
        self.pending_checks: dict[tuple[str, str], str] = {}
        self.proven_not_null: set[tuple[str, str]] = set()
        self.suppressed: list[Finding] = []
        self._out: list[Finding] = []
        self._stmt: Statement | None = None

    # -- helpers ------------------------------------------------------------------------
    def _new(self, ref: TableRef) -> bool:
        return any(
            name == ref[1] and (schema is None or ref[0] is None or schema == ref[0])
            for schema, name in self.created
        )

    def _report(
        self, code: str, obj: str, message: str, fix: str | None = None, **meta: Any
    ) -> None:
        stmt = self._stmt
        if stmt is None:  # pragma: no cover - _report is only called from feed()
            raise RuntimeError("_report outside feed()")
        rule = RULES[code]
        finding = Finding(
            code=rule.code,
            severity=rule.severity,
            object=obj,
            message=message,
            why=rule.why,
            fix=fix or rule.recipe,
            metadata={"rule": rule.name, "recipe": rule.recipe, **stmt.location(), **meta},
        )
        if stmt.ignores(rule.code, rule.name):
            self.suppressed.append(finding)
        else:
            self._out.append(finding)

    def _locks(self, ref: TableRef) -> None:
        if self.require_lock_timeout and not self.lock_timeout and not self.lock_timeout_reported:
            self.lock_timeout_reported = True
            self._report(
                "MIG011",
                show(ref),
                f"locks {show(ref)} with no lock_timeout set earlier in the migration",
                "SET lock_timeout = '5s';  -- first statement of the migration",
                table=show(ref),
            )

    def _column_types(self, ref: TableRef, col: Any) -> None:
        if column_type(col.typeName) in ("timestamp", "timestamp[]"):
            self._report(
                "MIG013",
                f"{show(ref)}.{ident(col.colname)}",
                f"column {col.colname} of {show(ref)} is timestamp without time zone",
                f"{ident(col.colname)} timestamptz",
                table=show(ref),
                column=col.colname,
            )
