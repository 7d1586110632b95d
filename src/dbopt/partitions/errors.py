"""Errors of the partition manager, each under :class:`dbopt.DboptError`.

::

    ConfigurationError
    └── PartitionSpecError        a PartitionSpec is inconsistent or does not fit the table
    DatabaseError
    ├── PartitionLockedError      another maintainer holds the parent's advisory lock
    ├── LockTimeoutError          a DDL statement could not get its locks after every retry
    └── ConversionError           an online conversion cannot start, continue or be reverted
"""

from __future__ import annotations

from typing import Any

from dbopt.errors import ConfigurationError, DatabaseError

__all__ = ["ConversionError", "LockTimeoutError", "PartitionLockedError", "PartitionSpecError"]


class PartitionSpecError(ConfigurationError):
    """A :class:`PartitionSpec` is inconsistent, or does not match the table it names."""


class PartitionLockedError(DatabaseError):
    """Another maintainer held the parent's advisory lock for longer than the wait allowed."""


class LockTimeoutError(DatabaseError):
    """A statement did not get its locks within ``lock_timeout`` after every retry.

    ``result`` holds what was applied before the failure (an ``ApplyResult``)
    when the error comes from :meth:`PartitionManager.apply`.
    """

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class ConversionError(DatabaseError):
    """An online conversion cannot start, continue or be reverted (the message says why)."""
