"""The lock each DDL statement takes: which mode, for how long, and what it blocks.

``lock_of(node)`` reads a pglast statement node and returns a :class:`Lock`:
the strongest table-level lock the statement takes on an existing relation
(PostgreSQL's documentation, "Explicit Locking", and each command's page),
how long it is held (``instant``: catalog change only; ``scan``: the table
is read under the lock; ``rewrite``: the table and its indexes are
rewritten; ``build``: an index is built; ``transaction``: until the
transaction ends, as LOCK TABLE), and whether it blocks reads and writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

__all__ = ["MODES", "Lock", "lock_of", "reindex_concurrently"]

#: Lock modes in order of strength (LOCKMODE 1..8 in PostgreSQL's lockdefs.h).
MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
_ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"
_DURATIONS = ("instant", "scan", "build", "rewrite", "transaction")


@dataclass(frozen=True)
class Lock:
    """A table-level lock: ``mode`` (one of :data:`MODES`), ``duration``, ``relation``."""

    mode: str
    duration: str
    relation: str | None = None
    #: False for a materialized view: only REFRESH writes it, so a lock that blocks
    #: writes blocks nothing else that runs
    writable: bool = True

    @property
    def strength(self) -> int:
        """1 (ACCESS SHARE) .. 8 (ACCESS EXCLUSIVE)."""
        return MODES.index(self.mode) + 1

    @property
    def blocks_writes(self) -> bool:
        """SHARE and stronger conflict with ROW EXCLUSIVE (INSERT/UPDATE/DELETE)."""
        return self.writable and self.strength >= 5

    @property
    def blocks_reads(self) -> bool:
        """Only ACCESS EXCLUSIVE conflicts with ACCESS SHARE (SELECT)."""
        return self.mode == _ACCESS_EXCLUSIVE

    @property
    def blocks(self) -> list[str]:
        """What waits while the lock is held: ``reads``, ``writes``, ``schema changes``."""
        out = ["reads"] if self.blocks_reads else []
        if self.blocks_writes or (self.blocks_reads and self.writable):
            out.append("writes")
        return [*out, "schema changes"]

    def describe(self) -> str:
        """``ACCESS EXCLUSIVE (blocks reads, writes; held for a table rewrite)``."""
        held = {
            "instant": "held briefly",
            "scan": "held through a full scan",
            "build": "held through an index build",
            "rewrite": "held through a table rewrite",
            "transaction": "held until the transaction ends",
        }[self.duration]
        return f"{self.mode} (blocks {', '.join(self.blocks)}; {held})"

    def metadata(self) -> dict[str, Any]:
        """Finding metadata: ``lock``, ``lock_duration``, ``blocks``."""
        return {"lock": self.mode, "lock_duration": self.duration, "blocks": self.blocks}


def _rel(relation: Any) -> str | None:
    if relation is None:
        return None
    schema = getattr(relation, "schemaname", None)
    return f"{schema}.{relation.relname}" if schema else str(relation.relname)


def _longer(a: str, b: str) -> str:
    return a if _DURATIONS.index(a) >= _DURATIONS.index(b) else b


# ALTER TABLE sub-commands taking less than ACCESS EXCLUSIVE (AlterTableGetLockLevel).
_SUE = {
    "AT_SetStatistics",
    "AT_SetOptions",
    "AT_ResetOptions",
    "AT_SetRelOptions",
    "AT_ResetRelOptions",
    "AT_ClusterOn",
    "AT_DropCluster",
    "AT_ValidateConstraint",
    "AT_DetachPartitionFinalize",
}
_SRE = {
    "AT_EnableTrig",
    "AT_EnableAlwaysTrig",
    "AT_EnableReplicaTrig",
    "AT_EnableTrigAll",
    "AT_EnableTrigUser",
    "AT_DisableTrig",
    "AT_DisableTrigAll",
    "AT_DisableTrigUser",
}


def _alter_cmd(cmd: Any, proven: frozenset[str]) -> tuple[str, str]:
    name = cmd.subtype.name
    if name in _SUE:
        return "SHARE UPDATE EXCLUSIVE", "scan" if name == "AT_ValidateConstraint" else "instant"
    if name in _SRE:
        return "SHARE ROW EXCLUSIVE", "instant"
    if name == "AT_DetachPartition":
        return ("SHARE UPDATE EXCLUSIVE" if cmd.def_.concurrent else _ACCESS_EXCLUSIVE), "instant"
    if name == "AT_AttachPartition":
        return "SHARE UPDATE EXCLUSIVE", "scan"
    if cmd.subtype in (AlterTableType.AT_AddConstraint,) and isinstance(cmd.def_, ast.Constraint):
        con = cmd.def_
        scan = "instant" if con.skip_validation else "scan"
        if con.contype == ConstrType.CONSTR_FOREIGN:
            return "SHARE ROW EXCLUSIVE", scan
        if con.contype in (
            ConstrType.CONSTR_UNIQUE,
            ConstrType.CONSTR_PRIMARY,
            ConstrType.CONSTR_EXCLUSION,
        ):
            return _ACCESS_EXCLUSIVE, "instant" if con.indexname else "build"
        return _ACCESS_EXCLUSIVE, scan
    if name == "AT_AlterColumnType":
        return _ACCESS_EXCLUSIVE, "rewrite"
    if name == "AT_SetNotNull":
        # a validated CHECK (col IS NOT NULL) spares the scan (PostgreSQL 12+)
        return _ACCESS_EXCLUSIVE, "instant" if cmd.name in proven else "scan"
    if name in ("AT_SetAccessMethod", "AT_SetTableSpace", "AT_SetLogged", "AT_SetUnLogged"):
        return _ACCESS_EXCLUSIVE, "rewrite"
    return _ACCESS_EXCLUSIVE, "instant"


def lock_of(node: Any, proven_not_null: frozenset[str] = frozenset()) -> Lock | None:
    """The lock statement ``node`` takes on an existing relation, or None (none / not a table).

    ``proven_not_null``: columns of an ALTER TABLE's table that a validated
    ``CHECK (col IS NOT NULL)`` covers (their SET NOT NULL does not scan).
    """
    kind = type(node).__name__
    if isinstance(node, ast.AlterTableStmt):
        mode, duration = "ACCESS SHARE", "instant"
        for cmd in node.cmds or ():
            m, d = _alter_cmd(cmd, proven_not_null)
            if MODES.index(m) > MODES.index(mode):
                mode = m
            duration = _longer(duration, d)
        return Lock(mode, duration, _rel(node.relation))
    if isinstance(node, ast.IndexStmt):
        if node.concurrent:
            return Lock("SHARE UPDATE EXCLUSIVE", "build", _rel(node.relation))
        return Lock("SHARE", "build", _rel(node.relation))
    if isinstance(node, ast.DropStmt):
        if node.removeType == ObjectType.OBJECT_INDEX:
            mode = "SHARE UPDATE EXCLUSIVE" if node.concurrent else _ACCESS_EXCLUSIVE
            return Lock(mode, "instant")
        if node.removeType in (
            ObjectType.OBJECT_TABLE,
            ObjectType.OBJECT_VIEW,
            ObjectType.OBJECT_MATVIEW,
            ObjectType.OBJECT_FOREIGN_TABLE,
        ):
            return Lock(_ACCESS_EXCLUSIVE, "instant")
        return None
    if isinstance(node, ast.ClusterStmt):
        return Lock(_ACCESS_EXCLUSIVE, "rewrite", _rel(node.relation))
    if isinstance(node, ast.VacuumStmt):
        full = any(
            o.defname == "full" and (o.arg is None or _truthy(o.arg)) for o in node.options or ()
        )
        rel = _rel(node.rels[0].relation) if node.rels else None
        if full:
            return Lock(_ACCESS_EXCLUSIVE, "rewrite", rel)
        return Lock("SHARE UPDATE EXCLUSIVE", "scan", rel) if node.is_vacuumcmd else None
    if isinstance(node, ast.RefreshMatViewStmt):
        # CONCURRENTLY takes EXCLUSIVE: reads go on (a materialized view takes no writes)
        mode = "EXCLUSIVE" if node.concurrent else _ACCESS_EXCLUSIVE
        return Lock(mode, "rewrite", _rel(node.relation), writable=False)
    if isinstance(node, ast.ReindexStmt):
        concurrent = reindex_concurrently(node)
        rel = _rel(node.relation)
        if concurrent:
            return Lock("SHARE UPDATE EXCLUSIVE", "build", rel)
        # SHARE on the table, ACCESS EXCLUSIVE on each index rebuilt: index scans wait too
        return Lock(_ACCESS_EXCLUSIVE, "build", rel)
    if isinstance(node, ast.TruncateStmt):
        return Lock(
            _ACCESS_EXCLUSIVE, "instant", _rel(node.relations[0]) if node.relations else None
        )
    if isinstance(node, ast.LockStmt):
        rels: Any = node.relations or ()
        mode = MODES[int(node.mode or 8) - 1]
        return Lock(mode, "transaction", _rel(rels[0]) if rels else None)
    if kind == "CommentStmt":
        parts: Any = node.object if isinstance(node.object, tuple) else ()
        names = [str(p.sval) for p in parts if isinstance(p, ast.String)]
        if node.objtype == ObjectType.OBJECT_COLUMN:
            names = names[:-1]
        elif node.objtype not in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_MATVIEW):
            names = []
        return Lock("SHARE UPDATE EXCLUSIVE", "instant", ".".join(names) or None)
    if isinstance(node, ast.RenameStmt) and node.relation is not None:
        return Lock(_ACCESS_EXCLUSIVE, "instant", _rel(node.relation))
    if isinstance(node, ast.CreateTrigStmt):
        return Lock("SHARE ROW EXCLUSIVE", "instant", _rel(node.relation))
    return None


def reindex_concurrently(node: Any) -> bool:
    """REINDEX ... CONCURRENTLY, or ``(CONCURRENTLY [true])`` but not ``(CONCURRENTLY false)``."""
    return any(
        getattr(p, "defname", "") == "concurrently" and (p.arg is None or _truthy(p.arg))
        for p in node.params or ()
    )


def _truthy(arg: Any) -> bool:
    val = getattr(arg, "sval", None)
    if val is None:
        val = getattr(arg, "boolval", None)
        if val is None:
            val = getattr(arg, "ival", 1)
    return str(val).lower() not in ("false", "off", "0", "no")
