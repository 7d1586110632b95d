"""The public surface is curated: ``__all__`` sorted, complete, and importable."""

from __future__ import annotations

import dbopt


def test_all_is_sorted_and_unique() -> None:
    assert list(dbopt.__all__) == sorted(set(dbopt.__all__))


def test_every_exported_name_exists() -> None:
    for name in dbopt.__all__:
        assert hasattr(dbopt, name), name


def test_public_objects_are_exported() -> None:
    exported = set(dbopt.__all__)
    public = {
        name
        for name, value in vars(dbopt).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("dbopt")
    }
    assert public <= exported, sorted(public - exported)


def test_one_error_root() -> None:
    for name in dbopt.__all__:
        value = getattr(dbopt, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, dbopt.DboptError), name
