"""The partition manager's public surface: curated, importable, one error root."""

from __future__ import annotations

import dbopt
from dbopt import partitions


def test_all_is_sorted_complete_and_importable() -> None:
    assert list(partitions.__all__) == sorted(set(partitions.__all__))
    for name in partitions.__all__:
        assert hasattr(partitions, name), name


def test_errors_derive_from_the_dbopt_root() -> None:
    errors = [
        getattr(partitions, name)
        for name in partitions.__all__
        if isinstance(getattr(partitions, name), type)
        and issubclass(getattr(partitions, name), Exception)
    ]
    assert {e.__name__ for e in errors} == {
        "ConversionError",
        "LockTimeoutError",
        "PartitionLockedError",
        "PartitionSpecError",
    }
    assert all(issubclass(e, dbopt.DboptError) for e in errors)
    assert issubclass(partitions.PartitionSpecError, dbopt.ConfigurationError)
    assert issubclass(partitions.LockTimeoutError, dbopt.DatabaseError)
