"""What the migration checker remembers between statements, and how it reports.

State carried from statement to statement: tables created here (exempt from
the locking rules), whether a transaction is open (CONCURRENTLY fails in
one), whether lock_timeout is set, and which ``CHECK (col IS NOT NULL)``
constraints were validated (they make SET NOT NULL cheap).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dbopt.errors import ConfigurationError
from dbopt.findings import Finding
from dbopt.migrations.ddl import SERIAL, SMALL_INT, TableRef, column_type, show
from dbopt.migrations.locks import Lock
from dbopt.migrations.rules import RULES, rule_for
from dbopt.migrations.statements import Statement
from dbopt.postgres.render import ident

__all__ = ["CheckerState", "enabled_codes", "flag_set"]


def enabled_codes(enable: Iterable[str] = ()) -> frozenset[str]:
    """Codes of the default rules plus those ``enable`` names (codes, names, or ``"all"``)."""
    on = {r.code for r in RULES.values() if r.default_enabled}
    for key in enable:
        if key.lower() == "all":
            on.update(RULES)
            continue
        rule = rule_for(key)
        if rule is None:
            raise ConfigurationError(f"unknown migration rule {key!r}")
        on.add(rule.code)
    return frozenset(on)


def flag_set(flag: Any) -> bool:
    """pglast spells an unset char field ``"\\x00"``."""
    return bool(flag) and flag != "\x00"


class CheckerState:
    """The checker's memory of the migration so far, and ``_report`` for its rules."""

    def __init__(
        self,
        *,
        in_transaction: bool = False,
        require_lock_timeout: bool = True,
        pg_version: int | None = None,
        enable: Iterable[str] = (),
    ) -> None:
        self.in_transaction = in_transaction
        self.require_lock_timeout = require_lock_timeout
        #: the target server's major version (None: any supported one, 13+)
        self.pg_version = pg_version
        self.enabled = enabled_codes(enable)
        self.created: set[TableRef] = set()
        self.lock_timeout = False
        self.lock_timeout_local = False
        self.lock_timeout_reported = False
        self.statement_timeout = False
        self.statement_timeout_reported = False
        self.pending_checks: dict[tuple[str, str], str] = {}
        self.proven_not_null: set[tuple[str, str]] = set()
        #: CHECK (col IS NOT NULL) constraints seen here: (table, name) -> column
        self.not_null_checks: dict[tuple[str, str], str] = {}
        #: constraints validated here that were not added here: (table, name)
        self.validated_elsewhere: set[tuple[str, str]] = set()
        #: constraints added NOT VALID in the open transaction: (table, name)
        self.not_valid_in_tx: set[tuple[str, str]] = set()
        #: the BEGIN of a transaction this migration opened and has not ended
        self.open_begin: Statement | None = None
        self.dropped_constraints: set[str] = set()
        #: tables the open transaction holds a read- or write-blocking lock on
        self.locked_in_tx: dict[str, str] = {}
        self.statements = 0
        #: every finding of the migration, set by the runner once it is checked
        self.findings: list[Finding] = []
        self._lock: Lock | None = None
        #: columns of the current statement whose SET NOT NULL is proven (no scan)
        self.cheap_not_null: set[str] = set()
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
        if code not in self.enabled:
            return
        if self._lock is not None and "lock" not in meta:
            meta = {**self._lock.metadata(), **meta}
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

    def _report_table(
        self, code: str, ref: TableRef, message: str, fix: str | None = None, **meta: Any
    ) -> None:
        """:meth:`_report` about table ``ref`` (object and metadata ``table``)."""
        self._report(code, show(ref), message, fix, table=show(ref), **meta)

    def _report_column(
        self,
        code: str,
        ref: TableRef,
        column: str,
        message: str,
        fix: str | None = None,
        **meta: Any,
    ) -> None:
        """:meth:`_report` about ``column`` of ``ref`` (object ``table.column``)."""
        self._report(
            code,
            f"{show(ref)}.{ident(column)}",
            message,
            fix,
            table=show(ref),
            column=column,
            **meta,
        )

    def _locks(self, ref: TableRef, *, queue: bool | None = None) -> None:
        """MIG011/MIG023 at the first statement that locks an existing table.

        ``queue``: the lock conflicts with reads or writes, so waiting for it
        queues them (MIG011); any lock taken without statement_timeout is MIG023.
        """
        lock = f" ({self._lock.mode})" if self._lock is not None else ""
        if queue is None:
            queue = self._lock is None or self._lock.blocks_writes or self._lock.blocks_reads
        missing = []
        if (
            queue
            and self.require_lock_timeout
            and not self.lock_timeout
            and not self.lock_timeout_reported
        ):
            self.lock_timeout_reported = True
            missing.append(("MIG011", "lock_timeout"))
        if not self.statement_timeout and not self.statement_timeout_reported:
            self.statement_timeout_reported = True
            missing.append(("MIG023", "statement_timeout"))
        for code, setting in missing:
            self._report_table(
                code,
                ref,
                f"locks {show(ref)}{lock} with no {setting} set earlier in the migration",
                f"SET {setting} = '5s';  -- first statement of the migration",
            )

    def _schema(self, relation: Any) -> None:
        if relation is not None and not relation.schemaname and relation.relpersistence != "t":
            self._report(
                "MIG038",
                str(relation.relname),
                f"table {relation.relname} is named without a schema",
                table=str(relation.relname),
            )

    def _column_conventions(
        self, ref: TableRef, col: Any, name: str | None = None, *, primary: bool = False
    ) -> None:
        """MIG034-036, 039, 041: serial, varchar(n), char(n), integer and json columns."""
        name = name or col.colname
        typ = column_type(col.typeName)
        base = typ.removesuffix("[]")
        for code, found, what in (
            ("MIG034", base in SERIAL, typ),
            ("MIG035", base == "varchar" and col.typeName.typmods, "varchar(n)"),
            ("MIG036", base == "bpchar", "char(n)"),
            ("MIG041", base == "json", "json, not jsonb"),
            ("MIG039", base in SMALL_INT and not primary, f"{typ}, not bigint"),
        ):
            if found:
                self._report_column(
                    code, ref, name, f"column {name} of {show(ref)} is {what}", type=typ
                )

    def _column_types(self, ref: TableRef, col: Any, *, primary: bool = False) -> None:
        self._column_conventions(ref, col, primary=primary)
        if column_type(col.typeName) in ("timestamp", "timestamp[]"):
            self._report_column(
                "MIG013",
                ref,
                col.colname,
                f"column {col.colname} of {show(ref)} is timestamp without time zone",
                f"{ident(col.colname)} timestamptz",
            )
