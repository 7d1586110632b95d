"""PostgreSQL tools: EXPLAIN, and (as they land) the index advisor, linter,
health report and partition manager. They read the catalog and the workload
and return typed results; they never print.
"""

from __future__ import annotations

from dbopt.postgres.advisor import (
    AdvisorError,
    AdvisorReport,
    ExistingOptions,
    IndexAdvisor,
    Measurement,
    PgStatStatements,
    Recommendation,
    StatementImpact,
    StatementResult,
    Workload,
    WorkloadStatement,
)
from dbopt.postgres.explain import Explainer

__all__ = [
    "AdvisorError",
    "AdvisorReport",
    "ExistingOptions",
    "Explainer",
    "IndexAdvisor",
    "Measurement",
    "PgStatStatements",
    "Recommendation",
    "StatementImpact",
    "StatementResult",
    "Workload",
    "WorkloadStatement",
]
