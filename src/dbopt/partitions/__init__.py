"""PostgreSQL partition manager: declarative partitions kept to a spec, no extension needed.

``PartitionSpec`` says what (strategy, key, ranges ahead, retention, naming);
``PartitionManager.plan`` turns it into a ``Plan`` of typed operations with
reasons; ``apply``/``maintain`` carry it out under an advisory lock per
parent and ``lock_timeout`` with retry. See ``docs/partitions.md``.
"""

from __future__ import annotations

from dbopt.partitions.apply import ApplyResult, OperationResult
from dbopt.partitions.catalog import Partition, PartitionedTable
from dbopt.partitions.check import CheckReport
from dbopt.partitions.conversion import ConversionResult
from dbopt.partitions.drain import DrainResult
from dbopt.partitions.errors import (
    ConversionError,
    LockTimeoutError,
    PartitionLockedError,
    PartitionSpecError,
)
from dbopt.partitions.indexes import IndexResult
from dbopt.partitions.manager import PartitionManager
from dbopt.partitions.plan import (
    AdoptPartition,
    CreatePartition,
    DetachPartition,
    DropPartition,
    FinalizeDetach,
    ForgetPartition,
    MarkDetached,
    Note,
    Operation,
    Plan,
)
from dbopt.partitions.spec import PartitionSpec

__all__ = [
    "AdoptPartition",
    "ApplyResult",
    "CheckReport",
    "ConversionError",
    "ConversionResult",
    "CreatePartition",
    "DetachPartition",
    "DrainResult",
    "DropPartition",
    "FinalizeDetach",
    "ForgetPartition",
    "IndexResult",
    "LockTimeoutError",
    "MarkDetached",
    "Note",
    "Operation",
    "OperationResult",
    "Partition",
    "PartitionLockedError",
    "PartitionManager",
    "PartitionSpec",
    "PartitionSpecError",
    "PartitionedTable",
    "Plan",
]
