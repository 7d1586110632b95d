"""``FieldsDict``: the ``to_dict`` of the report and result dataclasses, from their fields."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from dbopt._json import FieldsDict
from dbopt.advisor.report import Hotspot, Rejection, StatementResult
from dbopt.partitions.apply import OperationResult
from dbopt.partitions.check import CheckReport
from dbopt.partitions.plan import DropPartition, Name
from dbopt.pool.budget import ConnectionBudget
from dbopt.replicas import ReplicaStatus


@dataclass(frozen=True)
class _Inner(FieldsDict):
    value: float


@dataclass(frozen=True)
class _Outer(FieldsDict):
    _ROUND: ClassVar[dict[str, int]] = {"ratio": 2, "maybe": 1}

    name: str
    ratio: float
    maybe: float | None
    pairs: tuple[tuple[int, int], ...]
    inner: _Inner
    mapping: dict[str, Any]
    at: dt.datetime | None = None


def test_fields_in_order_rounded_with_tuples_as_lists_and_nested_dicts() -> None:
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    outer = _Outer("a", 1.23456, None, ((1, 2), (3, 4)), _Inner(0.123456), {"k": (1,)}, at)
    data = outer.to_dict()
    assert list(data) == ["name", "ratio", "maybe", "pairs", "inner", "mapping", "at"]
    assert data["ratio"] == 1.23
    assert data["maybe"] is None
    assert data["pairs"] == [[1, 2], [3, 4]]
    assert data["inner"] == {"value": 0.123456}  # only the named fields are rounded
    assert data["mapping"] == {"k": (1,)}
    assert data["mapping"] is not outer.mapping  # a copy: changing it leaves the record alone
    assert data["at"] == "2026-01-02T03:04:05+00:00"


def test_a_rounding_for_no_field_fails_at_class_definition() -> None:
    with pytest.raises(TypeError, match="_ROUND names no field: ratoi"):

        @dataclass(frozen=True)
        class _Typo(FieldsDict):
            _ROUND: ClassVar[dict[str, int]] = {"ratoi": 2}

            ratio: float


def test_the_converted_classes_keep_their_json_form() -> None:
    hotspot = Hotspot("select 1", 3, 1.23456, 0.123456, 10.555, 2.0, None, 0.99999, 2, ("a.py:1",))
    assert hotspot.to_dict() == {
        "sql": "select 1",
        "calls": 3,
        "total_time_s": 1.235,
        "time_share": 0.1235,
        "cost_before": 10.55,  # round() of the float 10.555
        "best_cost": 2.0,
        "dominant": None,
        "dominant_share": 1.0,
        "candidates": 2,
        "callsites": ["a.py:1"],
    }
    assert StatementResult("s", 1, "error").to_dict()["cost_before"] is None
    assert list(Rejection("t (a)", "covered", "m", 1.005).to_dict()) == [
        "index",
        "reason",
        "message",
        "saving",
        "write_cost",
        "size_bytes",
        "statements",
    ]
    op = DropPartition(Name("s", "t"), Name("s", "t_1"), "old", oid=7)
    result = OperationResult(op, "done", seconds=0.1234567).to_dict()
    assert result == {
        **op.to_dict(),
        "status": "done",
        "message": "",
        "seconds": 0.123457,
        "attempts": 1,
    }
    assert ConnectionBudget(100).to_dict() == {
        "max_connections": 100,
        "superuser_reserved": 3,
        "reserved": 0,
        "headroom": 10,
        "server_available": 97,
        "available": 87,
    }


def test_the_ones_that_rename_or_add_keep_their_order() -> None:
    report = CheckReport("s.t", 3, None, 2, 2, (("a", "b"),), (), (), None, 0, (), (("p", "x"),))
    data = report.to_dict()
    assert list(data)[:3] == ["table", "ok", "partitions"]
    assert data["gaps"] == [["a", "b"]]
    assert data["lacking"] == [{"partition": "p", "missing": "x"}]
    assert data["last_maintenance_at"] is None
    status = ReplicaStatus("r1", True, 0.5, 123.0)
    assert status.to_dict() == {"name": "r1", "available": True, "lag_s": 0.5, "error": None}
