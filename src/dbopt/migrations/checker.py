"""The migration checker: walks statements in order, tracking what the migration did so far."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

import pglast
from pglast import ast
from pglast.enums import ConstrType, ObjectType, TransactionStmtKind

from dbopt.findings import Finding
from dbopt.migrations.alter_table import AlterTableRules
from dbopt.migrations.ddl import (
    SMALL_INT,
    TableRef,
    column_type,
    deparse,
    deparse_indirection,
    show,
    table_ref,
)
from dbopt.migrations.locks import lock_of, reindex_concurrently
from dbopt.migrations.statements import Statement
from dbopt.postgres.render import ident

__all__ = ["Checker"]

#: Rules whose finding already names a statement's blocking lock: no MIG018 besides them.
_LOCK_RULES = {
    "MIG001",
    "MIG002",
    "MIG004",
    "MIG005",
    "MIG006",
    "MIG007",
    "MIG008",
    "MIG010",
    "MIG014",
    "MIG019",
    "MIG020",
    "MIG021",
    "MIG022",
    "MIG027",
    "MIG040",
}
_VERB = {
    "ClusterStmt": "CLUSTER",
    "VacuumStmt": "VACUUM FULL",
    "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
    "TruncateStmt": "TRUNCATE",
    "LockStmt": "LOCK TABLE",
    "DropStmt": "DROP VIEW",
    "AlterTableStmt": "ALTER TABLE",
    "ReindexStmt": "REINDEX",
}
_MAX_IDENT = 63


def _ref_of(name: str) -> TableRef:
    schema, _, rel = name.rpartition(".")
    return (schema or None, rel)


def _object_ref(obj: Any) -> TableRef | None:
    if isinstance(obj, (list, tuple)) and obj and all(isinstance(p, ast.String) for p in obj):
        parts = [str(p.sval) for p in obj]
        return (parts[-2] if len(parts) > 1 else None, parts[-1])
    return None


def _target_name(target: Any) -> str:
    """The output column name PostgreSQL gives a select-list entry."""
    if target.name:
        return str(target.name)
    val = target.val
    if isinstance(val, ast.ColumnRef):
        last = (val.fields or ())[-1]
        return str(last.sval) if isinstance(last, ast.String) else "?column?"
    if isinstance(val, ast.FuncCall):
        funcname: Any = val.funcname
        return str(funcname[-1].sval)
    return "?column?"


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
        self.statements += 1
        self.cheap_not_null = set()
        self._lock = lock_of(node)
        before = len(self.suppressed)
        handler = getattr(self, "_" + type(node).__name__, None)
        if handler is not None:
            handler(node)
        self._identifiers(stmt)
        self._lock_rules(node, before)
        return self._out

    def finish(self) -> list[Finding]:
        """Findings that only the end of the migration shows (a transaction left open)."""
        self._out = []
        if self.open_begin is not None:
            self._stmt = self.open_begin
            self._lock = None
            self._report(
                "MIG029",
                "transaction",
                "BEGIN without COMMIT: the migration ends inside its transaction",
                "COMMIT;  -- at the end of the migration",
            )
        return self._out

    def _lock_rules(self, node: Any, before: int) -> None:
        """MIG011/MIG023 for any lock on an existing relation; MIG018 for a blocking one
        that no other rule reported."""
        lock = self._lock
        if lock is None or (lock.relation is None and not isinstance(node, ast.DropStmt)):
            return
        ref = _ref_of(lock.relation) if lock.relation else None
        if ref is not None and self._new(ref):
            return
        if isinstance(node, ast.DropStmt):
            objs = [_object_ref(o) for o in node.objects or ()]
            if objs and all(o is not None and self._new(o) for o in objs):
                return
            ref = next((o for o in objs if o is not None), None)
        target = ref if ref is not None else (None, "?")
        # a weaker lock in the queue does not hold up reads and writes behind it
        self._locks(target, queue=lock.blocks_writes or lock.blocks_reads)
        if self.in_transaction and (lock.blocks_writes or lock.blocks_reads) and ref:
            self.locked_in_tx.setdefault(ref[1], lock.mode)
        codes = {f.code for f in self._out} | {f.code for f in self.suppressed[before:]}
        long_held = lock.duration != "instant" or isinstance(node, (ast.TruncateStmt, ast.LockStmt))
        if isinstance(node, ast.DropStmt):
            long_held = node.removeType in (ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW)
        blocking = lock.blocks_writes or lock.blocks_reads
        if not (blocking and long_held) or codes & _LOCK_RULES:
            return
        verb = _VERB.get(type(node).__name__, type(node).__name__.removesuffix("Stmt"))
        self._report(
            "MIG018",
            show(target),
            f"{verb} takes {lock.describe()} on {show(target)}",
            table=show(target),
        )

    def feed_all(self, statements: Iterable[Statement]) -> list[Finding]:
        """Findings of every statement in order."""
        out: list[Finding] = []
        for stmt in statements:
            out.extend(self.feed(stmt))
        return out

    # -- statement kinds ----------------------------------------------------------------
    def _TransactionStmt(self, node: Any) -> None:  # noqa: N802
        if node.kind in _BEGIN:
            if self.in_transaction:
                self._report(
                    "MIG030",
                    "transaction",
                    "BEGIN inside a transaction (PostgreSQL ignores it: no nested transactions)",
                )
            else:
                self.open_begin = self._stmt
            self.in_transaction = True
        elif node.kind in _END:
            if self.open_begin is None:
                self._report(
                    "MIG030",
                    "transaction",
                    (
                        "COMMIT/ROLLBACK ends the runner's transaction: later statements run "
                        "outside it"
                    )
                    if self.in_transaction
                    else "COMMIT/ROLLBACK with no transaction open",
                )
            self.open_begin = None
            self.not_valid_in_tx.clear()
            self.locked_in_tx.clear()
            self.in_transaction = False
            if self.lock_timeout_local:
                self.lock_timeout = self.lock_timeout_local = False

    def _VariableSetStmt(self, node: Any) -> None:  # noqa: N802
        name = (node.name or "").lower()
        if name == "statement_timeout":
            self.statement_timeout = True
            return
        if name != "lock_timeout":
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
        columns = [e for e in node.tableElts or () if isinstance(e, ast.ColumnDef)]
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef):
                if any(c.contype == ConstrType.CONSTR_PRIMARY for c in elt.constraints or ()):
                    pk_cols.append(str(elt.colname))
            elif isinstance(elt, ast.Constraint) and elt.contype == ConstrType.CONSTR_PRIMARY:
                pk_cols.extend(str(k.sval) for k in elt.keys or ())
        for elt in columns:
            colname = str(elt.colname)
            types[colname] = column_type(elt.typeName)
            self._column_types(ref, elt, primary=len(pk_cols) == 1 and colname in pk_cols)
        self._duplicates(ref, [str(c.colname) for c in columns], "CREATE TABLE")
        self._schema(node.relation)
        if (
            not self.in_transaction
            and not node.if_not_exists
            and not (node.relation.relpersistence == "t" and int(node.oncommit) == 3)
        ):
            self._report_table(
                "MIG032",
                ref,
                f"CREATE TABLE {show(ref)} without IF NOT EXISTS outside a transaction",
            )
        if len(pk_cols) == 1 and types.get(pk_cols[0]) in SMALL_INT:
            col = pk_cols[0]
            self._report(
                "MIG012",
                f"{show(ref)}.{ident(col)}",
                f"primary key {col} of new table {show(ref)} is {types[col]}",
                f"{ident(col)} bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                table=show(ref),
                column=col,
                type=types[col],
            )

    def _IndexStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.relation)
        name = node.idxname or "(unnamed)"
        if node.idxname and not node.if_not_exists and (node.concurrent or not self.in_transaction):
            self._report_table(
                "MIG032",
                ref,
                f"CREATE INDEX {name} without IF NOT EXISTS "
                + ("(CONCURRENTLY can leave an invalid index behind)" if node.concurrent else ""),
                index=name,
            )
        if not node.unique and len(node.indexParams or ()) > 3:
            self._report_table(
                "MIG042",
                ref,
                f"non-unique index {name} on {show(ref)} has {len(node.indexParams)} columns",
                index=name,
            )
        if node.concurrent:
            if self.in_transaction:
                self._report_table(
                    "MIG003",
                    ref,
                    f"CREATE INDEX CONCURRENTLY {name} inside a transaction",
                    index=name,
                )
            return
        if self._new(ref):
            return
        safe = copy.copy(node)
        safe.concurrent = True
        self._report_table(
            "MIG001",
            ref,
            f"CREATE INDEX {name} on existing table {show(ref)} without CONCURRENTLY",
            deparse(safe) + ";  -- outside a transaction",
            index=name,
        )
        self._locks(ref)

    def _DropStmt(self, node: Any) -> None:  # noqa: N802
        kind = node.removeType
        if not node.missing_ok and not self.in_transaction:
            self._report(
                "MIG032",
                "drop",
                f"DROP {kind.name.removeprefix('OBJECT_')} without IF EXISTS outside a transaction",
            )
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
            for obj in node.objects or ():
                parts = [str(p.sval) for p in obj]
                if len(parts) == 1:
                    self._schema(ast.RangeVar(relname=parts[0], relpersistence="p"))
            for ref in refs:
                if self._new(ref):
                    continue
                self._report_table("MIG010", ref, f"drops table {show(ref)}")
                self._locks(ref)

    def _RenameStmt(self, node: Any) -> None:  # noqa: N802
        if node.renameType == ObjectType.OBJECT_SCHEMA:
            self._report(
                "MIG043",
                str(node.subname),
                f"renames schema {node.subname} to {node.newname}",
                schema=node.subname,
            )
            return
        if node.relation is None:
            return
        ref = table_ref(node.relation)
        if self._new(ref):
            return
        if node.renameType == ObjectType.OBJECT_TABLE:
            self._report_table(
                "MIG009",
                ref,
                f"renames table {show(ref)} to {node.newname}",
                f"ALTER TABLE {show(ref)} RENAME TO {ident(node.newname)};\n"
                f"CREATE VIEW {show(ref)} AS SELECT * FROM "
                f"{show((ref[0], node.newname))};  -- old name keeps working",
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

    # -- rules added for squawk's and strong_migrations' cases -----------------------------
    def _ClusterStmt(self, node: Any) -> None:  # noqa: N802
        self._repack("CLUSTER", node.relation)

    def _VacuumStmt(self, node: Any) -> None:  # noqa: N802
        lock = self._lock
        if lock is not None and lock.mode == "ACCESS EXCLUSIVE":
            rels = [r.relation for r in node.rels or ()]
            self._repack("VACUUM FULL", rels[0] if rels else None, len(rels))

    def _repack(self, verb: str, relation: Any, count: int = 1) -> None:
        if self.pg_version is None or self.pg_version < 19:
            return  # MIG018 reports the lock; REPACK exists from PostgreSQL 19
        ref = table_ref(relation) if relation is not None else None
        if ref is not None and self._new(ref):
            return
        target = show(ref) if ref else "every clustered table"
        lock = self._lock.describe() if self._lock else "ACCESS EXCLUSIVE"
        self._report(
            "MIG022",
            target,
            f"{verb} {target} takes {lock}",
            f"REPACK (CONCURRENTLY) {target if ref else ''};".replace(" ;", ";"),
            table=target,
        )

    def _ReindexStmt(self, node: Any) -> None:  # noqa: N802
        concurrent = reindex_concurrently(node)
        target = show(table_ref(node.relation)) if node.relation is not None else node.name
        kind = node.kind.name.removeprefix("REINDEX_OBJECT_")
        if concurrent:
            if self.in_transaction:
                self._report(
                    "MIG003", target or "reindex", "REINDEX CONCURRENTLY inside a transaction"
                )
            return
        if kind == "SYSTEM":
            return  # system catalogs cannot be reindexed concurrently
        self._report(
            "MIG020",
            target or kind.lower(),
            f"REINDEX {kind} {target or ''} without CONCURRENTLY: "
            f"{self._lock.describe() if self._lock else 'ACCESS EXCLUSIVE'}".replace("  ", " "),
            f"REINDEX {kind} CONCURRENTLY {target or ''};  -- outside a transaction",
        )

    def _TruncateStmt(self, node: Any) -> None:  # noqa: N802
        if int(node.behavior) == 1:  # DROP_CASCADE
            names = ", ".join(show(table_ref(r)) for r in node.relations or ())
            self._report(
                "MIG027",
                names,
                f"TRUNCATE {names} CASCADE also empties every table that references them",
                f"TRUNCATE {names};",
            )

    def _DropdbStmt(self, node: Any) -> None:  # noqa: N802
        self._report("MIG026", str(node.dbname), f"drops database {node.dbname}")

    def _AlterDomainStmt(self, node: Any) -> None:  # noqa: N802
        if node.subtype == "C":
            name = ".".join(str(p.sval) for p in node.typeName)
            self._report(
                "MIG024",
                name,
                f"adds a constraint to domain {name}: every column of that domain is checked",
            )

    def _CreateDomainStmt(self, node: Any) -> None:  # noqa: N802
        if any(
            c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_NOTNULL)
            for c in node.constraints or ()
        ):
            name = ".".join(str(p.sval) for p in node.domainname)
            self._report("MIG025", name, f"domain {name} is created with a constraint")

    def _AlterEnumStmt(self, node: Any) -> None:  # noqa: N802
        name = ".".join(str(p.sval) for p in node.typeName)
        if node.oldVal:
            self._report(
                "MIG043",
                name,
                f"renames value {node.oldVal!r} of enum {name} to {node.newVal!r}",
                type=name,
            )
        elif not node.newValNeighbor:
            self._report(
                "MIG033",
                name,
                f"adds value {node.newVal!r} to enum {name} without BEFORE or AFTER",
                type=name,
            )

    def _duplicates(self, ref: TableRef | None, names: list[str], where: str) -> None:
        seen: set[str] = set()
        for name in names:
            if name in seen:
                label = show(ref) if ref else where
                self._report(
                    "MIG031",
                    f"{label}.{ident(name)}",
                    f"column {name} is named twice in {where} {label}",
                    column=name,
                )
                return
            seen.add(name)

    def _assignments(self, ref: TableRef, targets: Any, where: str) -> None:
        seen: dict[str, list[str]] = {}
        for t in targets or ():
            ind = deparse_indirection(t.indirection)
            prior = seen.setdefault(str(t.name), [])
            if prior and (not ind or "" in prior or ind in prior):
                self._report(
                    "MIG031",
                    f"{show(ref)}.{ident(t.name)}",
                    f"column {t.name} is assigned twice in {where} {show(ref)}",
                    table=show(ref),
                    column=t.name,
                )
                return
            prior.append(ind)

    def _UpdateStmt(self, node: Any) -> None:  # noqa: N802
        self._assignments(table_ref(node.relation), node.targetList, "UPDATE")
        self._backfill(table_ref(node.relation), "UPDATE")

    def _DeleteStmt(self, node: Any) -> None:  # noqa: N802
        self._backfill(table_ref(node.relation), "DELETE")

    def _backfill(self, ref: TableRef, verb: str) -> None:
        mode = self.locked_in_tx.get(ref[1]) if self.in_transaction else None
        if mode is not None:
            self._report_table(
                "MIG044",
                ref,
                f"{verb} of {show(ref)} in the transaction that holds {mode} on it",
                lock=mode,
            )

    def _InsertStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.relation)
        self._assignments(ref, node.cols, "INSERT")
        conflict = node.onConflictClause
        if conflict is not None and conflict.targetList:
            self._assignments(ref, conflict.targetList, "ON CONFLICT DO UPDATE")

    def _MergeStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.relation)
        for when in node.mergeWhenClauses or ():
            if int(when.commandType) == 2:  # UPDATE
                self._assignments(ref, when.targetList, "MERGE ... UPDATE")
            elif when.targetList:
                self._assignments(ref, when.targetList, "MERGE ... INSERT")

    def _CreateForeignTableStmt(self, node: Any) -> None:  # noqa: N802
        base = node.base
        cols = [str(c.colname) for c in base.tableElts or () if isinstance(c, ast.ColumnDef)]
        self._duplicates(table_ref(base.relation), cols, "CREATE FOREIGN TABLE")

    def _ViewStmt(self, node: Any) -> None:  # noqa: N802
        ref = table_ref(node.view)
        if node.aliases:
            self._duplicates(ref, [str(a.sval) for a in node.aliases], "CREATE VIEW")
        elif isinstance(node.query, ast.SelectStmt) and node.query.targetList:
            self._duplicates(ref, [_target_name(t) for t in node.query.targetList], "CREATE VIEW")

    def _SelectStmt(self, node: Any) -> None:  # noqa: N802
        if node.intoClause is not None and node.targetList:
            ref = table_ref(node.intoClause.rel)
            self._duplicates(ref, [_target_name(t) for t in node.targetList], "SELECT INTO")

    def _CreateTableAsStmt(self, node: Any) -> None:  # noqa: N802
        self._schema(node.into.rel)

    def _identifiers(self, stmt: Statement) -> None:
        try:
            tokens = pglast.parser.scan(stmt.text)
        except pglast.parser.ParseError:  # pragma: no cover - the statement parsed
            return
        for tok in tokens:
            if tok.name != "IDENT":
                continue
            raw = stmt.text[tok.start : tok.end + 1]
            name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
            size = len(name.encode("utf-8"))
            if size > _MAX_IDENT:
                self._report(
                    "MIG037",
                    name,
                    f"identifier {name!r} is {size} bytes; PostgreSQL truncates it to {_MAX_IDENT}",
                    identifier=name,
                    bytes=size,
                )
