"""``AdvisorReport``: the advisor's result as data, SQL, an Alembic migration or text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from dbopt._json import FieldsDict
from dbopt.advisor.model import KeyElem
from dbopt.findings import Finding
from dbopt.postgres.render import comment

__all__ = [
    "AdvisorError",
    "AdvisorReport",
    "Hotspot",
    "Measurement",
    "Recommendation",
    "Rejection",
    "StatementImpact",
    "StatementResult",
]


@dataclass(frozen=True)
class _Statement(FieldsDict):
    """A workload statement and how many times it ran."""

    sql: str
    calls: int


@dataclass(frozen=True)
class StatementImpact(_Statement):
    """One statement a recommendation helps: estimated cost before and after (per call)."""

    _ROUND: ClassVar[dict[str, int]] = {"cost_before": 2, "cost_after": 2}

    cost_before: float
    cost_after: float
    callsites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Recommendation:
    """One index to create, with its DDL and what it buys.

    ``saving`` is in planner cost units weighted by calls; ``saving_share`` is
    its part of the total saving of all recommendations (0..1);
    ``write_cost`` is the charged write overhead in the same units;
    ``size_bytes`` is the evaluator's size: hypopg's estimate, statistics, or
    measured (real evaluation); ``built_bytes`` is dbopt's estimate of the
    built B-tree with deduplication (None for other methods), the size the
    ``max_total_bytes`` budget counts. ``time_saved_s`` is the measured time
    (seconds, over the workload's window) it is estimated to save, when the
    workload measured time: each helped statement's total time times its
    relative cost reduction. ``ddl`` creates it (several statements for a partitioned
    table); ``drop_ddl`` undoes it.
    """

    schema: str
    table: str
    name: str
    method: str
    keys: tuple[KeyElem, ...]
    include: tuple[str, ...]
    predicate: str | None
    ddl: tuple[str, ...]
    drop_ddl: tuple[str, ...]
    size_bytes: int
    statements: tuple[StatementImpact, ...]
    saving: float
    saving_share: float
    write_cost: float
    evaluated_by: str
    partitioned: bool = False
    built_bytes: int | None = None
    time_saved_s: float | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        """Key columns or expressions as text (``user_id``, ``lower(email)``, ``x DESC``)."""
        return tuple(k.label() for k in self.keys)

    @property
    def label(self) -> str:
        """``schema.table (cols)`` plus method, INCLUDE and WHERE when present."""
        text = f"{self.schema}.{self.table} ({', '.join(self.columns)})"
        if self.method != "btree":
            text += f" USING {self.method}"
        if self.include:
            text += f" INCLUDE ({', '.join(self.include)})"
        if self.predicate:
            text += f" WHERE {self.predicate}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "schema": self.schema,
            "table": self.table,
            "name": self.name,
            "method": self.method,
            "columns": list(self.columns),
            "include": list(self.include),
            "predicate": self.predicate,
            "ddl": list(self.ddl),
            "drop_ddl": list(self.drop_ddl),
            "size_bytes": self.size_bytes,
            "built_bytes": self.built_bytes,
            "statements": [s.to_dict() for s in self.statements],
            "saving": round(self.saving, 2),
            "saving_share": round(self.saving_share, 4),
            "write_cost": round(self.write_cost, 2),
            "evaluated_by": self.evaluated_by,
            "partitioned": self.partitioned,
            "time_saved_s": None if self.time_saved_s is None else round(self.time_saved_s, 3),
        }


@dataclass(frozen=True)
class StatementResult(_Statement):
    """What happened to one workload statement.

    ``status``: ``improved`` (a recommendation lowers its cost), ``unchanged``,
    ``skipped`` (nothing an index can serve; ``reason`` says why) or
    ``error`` (could not be parsed or explained).
    """

    _ROUND: ClassVar[dict[str, int]] = {"cost_before": 2, "cost_after": 2}

    status: str
    reason: str | None = None
    cost_before: float | None = None
    cost_after: float | None = None
    indexes: tuple[str, ...] = ()
    callsites: tuple[str, ...] = ()


@dataclass(frozen=True)
class Hotspot(_Statement):
    """A statement that takes much of the measured time and that no candidate index fixes.

    ``total_time_s`` and ``time_share`` are its measured time over the
    workload's window and its part of the workload's; ``best_cost`` is its
    plan cost with every candidate index that could serve it present
    (``candidates`` of them); ``dominant`` is the node of its current plan
    with the largest own cost (``Seq Scan on posts``, ``HashAggregate``)
    and ``dominant_share`` that node's part of the plan's cost.
    """

    _ROUND: ClassVar[dict[str, int]] = {
        "total_time_s": 3,
        "time_share": 4,
        "cost_before": 2,
        "best_cost": 2,
        "dominant_share": 4,
    }

    total_time_s: float
    time_share: float
    cost_before: float
    best_cost: float
    dominant: str | None
    dominant_share: float
    candidates: int
    callsites: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdvisorError(FieldsDict):
    """A statement (or source) that could not be parsed or explained.

    ``line`` is the statement's first line in a ``.sql`` workload file.
    """

    sql: str
    message: str
    line: int | None = None


@dataclass(frozen=True)
class Rejection(FieldsDict):
    """A candidate index that was considered and not recommended, and why.

    ``reason`` is a short code: ``covered`` (by an existing or a chosen
    index), ``write_cost`` (maintenance over the workload's window exceeds
    the saving), ``storage`` (its size charge exceeds the saving),
    ``min_saving`` (saves less than ``min_saving`` of its statements' cost),
    ``budget`` (``max_indexes``/``max_total_bytes`` reached), ``unused`` (no
    plan uses it or gets cheaper), ``superseded`` (the chosen indexes already
    serve its statements), ``probe_risk`` (its saving comes from repeated
    nested-loop probes that read many scattered heap pages; priced with
    those reads it saves too little or nothing, see :mod:`dbopt.advisor.risk`),
    ``error`` (cannot be created), ``not_evaluated``;
    ``message`` says it in words. ``saving`` and ``write_cost`` are planner
    units weighted by calls, as in :class:`Recommendation`.
    """

    _ROUND: ClassVar[dict[str, int]] = {"saving": 2, "write_cost": 2}

    label: str
    reason: str
    message: str
    saving: float = 0.0
    write_cost: float = 0.0
    size_bytes: int = 0
    statements: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; the label is under ``index``."""
        data = super().to_dict()
        return {"index": data.pop("label"), **data}


@dataclass(frozen=True)
class Measurement(_Statement):
    """EXPLAIN ANALYZE times (ms per call) of one statement without and with the indexes."""

    _ROUND: ClassVar[dict[str, int]] = {"before_ms": 3, "after_ms": 3}

    before_ms: float
    after_ms: float


@dataclass
class AdvisorReport:
    """Everything :meth:`IndexAdvisor.advise` found.

    ``method`` says how costs were obtained (``hypopg``, ``real`` or
    ``heuristic``). Costs are planner units; ``total_cost_*`` weight each
    statement by its calls. ``measurements`` is filled by ``verify=True``.
    ``rejected`` lists every candidate index not recommended, with its
    reason; ``writes`` says which writes were charged (see
    :mod:`dbopt.advisor.writes`). When the workload measured time,
    recommendations are ranked by the time they save and ``hotspots``
    lists the statements taking most of it that no index fixes (see
    :mod:`dbopt.advisor.hotspots`).
    """

    method: str
    recommendations: list[Recommendation] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    statements: list[StatementResult] = field(default_factory=list)
    errors: list[AdvisorError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    total_cost_before: float = 0.0
    total_cost_after: float = 0.0
    elapsed_s: float = 0.0
    evaluations: int = 0
    measurements: list[Measurement] | None = None
    rejected: list[Rejection] = field(default_factory=list)
    writes: dict[str, Any] = field(default_factory=dict)
    hotspots: list[Hotspot] = field(default_factory=list)

    @property
    def total_size_bytes(self) -> int:
        """Estimated size of all recommended indexes."""
        return sum(r.size_bytes for r in self.recommendations)

    @property
    def measured_before_ms(self) -> float | None:
        """Measured workload time without the indexes (ms, calls-weighted), if verified."""
        if self.measurements is None:
            return None
        return sum(m.before_ms * m.calls for m in self.measurements)

    @property
    def measured_after_ms(self) -> float | None:
        """Measured workload time with the indexes (ms, calls-weighted), if verified."""
        if self.measurements is None:
            return None
        return sum(m.after_ms * m.calls for m in self.measurements)

    def to_sql(self) -> str:
        """A SQL script creating every recommendation (run it outside a transaction)."""
        lines = [
            comment(
                f"dbopt index advisor: {len(self.recommendations)} index(es), method {self.method}"
            ),
            comment("CREATE INDEX CONCURRENTLY cannot run inside a transaction block."),
        ]
        for rec in self.recommendations:
            lines.append("")
            lines.append(comment(f"{rec.label}: {rec.saving_share:.0%} of the estimated saving"))
            lines.extend(f"{stmt};" for stmt in rec.ddl)
        return "\n".join(lines) + "\n"

    def to_alembic(
        self,
        *,
        revision: str | None = None,
        down_revision: str | None = None,
        message: str = "add indexes recommended by dbopt",
    ) -> str:
        """The text of an Alembic migration creating the recommendations concurrently."""
        from dbopt.advisor.migration import render_migration

        return render_migration(self, revision, down_revision, message)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole report."""
        return {
            "method": self.method,
            "recommendations": [r.to_dict() for r in self.recommendations],
            "findings": [f.to_dict() for f in self.findings],
            "statements": [s.to_dict() for s in self.statements],
            "errors": [e.to_dict() for e in self.errors],
            "notes": list(self.notes),
            "total_cost_before": round(self.total_cost_before, 2),
            "total_cost_after": round(self.total_cost_after, 2),
            "total_size_bytes": self.total_size_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            "evaluations": self.evaluations,
            "measurements": None
            if self.measurements is None
            else [m.to_dict() for m in self.measurements],
            "rejected": [r.to_dict() for r in self.rejected],
            "writes": self.writes,
            "hotspots": [h.to_dict() for h in self.hotspots],
        }

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self) -> str:
        """A readable summary: a table of recommendations, then findings and errors."""
        from dbopt.advisor.text import render_text

        return render_text(self)
