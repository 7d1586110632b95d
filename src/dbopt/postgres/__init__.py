"""PostgreSQL tools: EXPLAIN, the index advisor, the schema linter, the health
report and the partition manager. They read the catalog and the workload and
return typed results; they never print.
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
from dbopt.postgres.health import HealthReport, HealthStatus, HealthThresholds, health
from dbopt.postgres.lint import LintConfig, LintReport, lint
from dbopt.postgres.partitions import (
    ApplyResult,
    CheckReport,
    ConversionError,
    ConversionResult,
    DrainResult,
    IndexResult,
    LockTimeoutError,
    PartitionLockedError,
    PartitionManager,
    PartitionSpec,
    PartitionSpecError,
    Plan,
)

__all__ = [
    "AdvisorError",
    "AdvisorReport",
    "ApplyResult",
    "CheckReport",
    "ConversionError",
    "ConversionResult",
    "DrainResult",
    "ExistingOptions",
    "Explainer",
    "HealthReport",
    "HealthStatus",
    "HealthThresholds",
    "IndexAdvisor",
    "IndexResult",
    "LintConfig",
    "LintReport",
    "LockTimeoutError",
    "Measurement",
    "PartitionLockedError",
    "PartitionManager",
    "PartitionSpec",
    "PartitionSpecError",
    "PgStatStatements",
    "Plan",
    "Recommendation",
    "StatementImpact",
    "StatementResult",
    "Workload",
    "WorkloadStatement",
    "health",
    "lint",
]
