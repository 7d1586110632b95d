"""Index advisor for PostgreSQL: workload-wide, priced with hypothetical indexes.

``IndexAdvisor(engine).advise(workload)`` returns an :class:`AdvisorReport`
with the indexes to create (DDL, Alembic migration), the findings on
existing indexes, and the statements it could not parse or explain.
"""

from __future__ import annotations

from dbopt.advisor.advisor import IndexAdvisor
from dbopt.advisor.existing import ExistingOptions
from dbopt.advisor.report import (
    AdvisorError,
    AdvisorReport,
    Measurement,
    Recommendation,
    StatementImpact,
    StatementResult,
)
from dbopt.advisor.workload import PgStatStatements, Workload, WorkloadStatement

__all__ = [
    "AdvisorError",
    "AdvisorReport",
    "ExistingOptions",
    "IndexAdvisor",
    "Measurement",
    "PgStatStatements",
    "Recommendation",
    "StatementImpact",
    "StatementResult",
    "Workload",
    "WorkloadStatement",
]
