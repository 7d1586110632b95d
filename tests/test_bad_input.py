"""Bad input never reaches the application as a dbopt error, and loses nothing."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import sqlite3
import uuid

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import bindparam

import dbopt

ODD_VALUES: dict[str, object] = {
    "none": None,
    "bytes": b"\xff\xfe\x00 not utf-8",
    "decimal": decimal.Decimal("12345.678901234567890"),
    "datetime": dt.datetime(2026, 11, 21, 12, 30, tzinfo=dt.timezone.utc),
    "uuid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    "list": [1, 2, 3],
    "dict": {"a": [1, {"b": None}]},
}


def all_sinks() -> tuple[dbopt.QueryStats, dbopt.QueryLogger]:
    return dbopt.QueryStats(), dbopt.QueryLogger(params="keep", slow_ms=0)


def test_odd_parameter_types_on_postgres(
    pg_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    stats, log = all_sinks()
    stmt = text(
        "SELECT CAST(:none AS text), :bytes, :decimal, :datetime, :uuid, "
        "CAST(:list AS int[]), CAST(:dict AS jsonb)"
    ).bindparams(bindparam("dict", type_=JSONB))
    with dbopt.instrument(pg_engine, stats, log), pg_engine.connect() as c:
        row = c.execute(stmt, ODD_VALUES).one()
    assert row[1] == ODD_VALUES["bytes"]
    assert row[2] == ODD_VALUES["decimal"]
    assert row[4] == ODD_VALUES["uuid"]
    assert row[6] == ODD_VALUES["dict"]
    (entry,) = stats.statements()
    json.dumps(entry.to_dict())  # everything kept is JSON-safe after conversion
    (record,) = [r for r in caplog.records if r.name == "dbopt.sql"]
    json.dumps(record.params)  # type: ignore[attr-defined]
    assert record.params["decimal"] == "12345.678901234567890"  # type: ignore[attr-defined]


def test_odd_parameter_types_on_sqlite(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    stats, log = all_sinks()
    raw = sqlite3.connect(":memory:")
    conn = dbopt.wrap_dbapi(raw, stats, log)
    values = (None, b"\xff\xfe", str(ODD_VALUES["decimal"]), "2026-11-21", str(ODD_VALUES["uuid"]))
    assert conn.execute("SELECT ?, ?, ?, ?, ?", values).fetchone() == values
    conn.detach()
    raw.close()
    assert stats.total_calls == 1


def test_hostile_repr_in_parameters(caplog: pytest.LogCaptureFixture) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

        def __conform__(self, protocol: object) -> str:  # sqlite3 adaptation
            return "ok"

    caplog.set_level(logging.DEBUG, logger="dbopt.sql")
    stats, log = all_sinks()
    raw = sqlite3.connect(":memory:")
    conn = dbopt.wrap_dbapi(raw, stats, log)
    assert conn.execute("SELECT ?", (Hostile(),)).fetchone() == ("ok",)
    conn.detach()
    raw.close()
    json.dumps(stats.to_dict())


def test_malformed_sql_reaches_the_app_unchanged(pg_engine: Engine) -> None:
    stats, log = all_sinks()
    with dbopt.instrument(pg_engine, stats, log), pg_engine.connect() as c:
        with pytest.raises(DBAPIError) as info:
            c.execute(text("SELEKT * FROM 'nowhere"))
        assert not isinstance(info.value, dbopt.DboptError)
        c.rollback()
        assert c.execute(text("SELECT 1")).scalar() == 1
    failed = [s for s in stats.statements() if s.errors]
    assert len(failed) == 1


def test_one_megabyte_statement(pg_engine: Engine) -> None:
    stats, log = all_sinks()
    values = ",".join(str(i) for i in range(150_000))
    sql = f"SELECT count(*) FROM unnest(ARRAY[{values}]) AS x WHERE x IN ({values})"
    assert len(sql) > 1_000_000
    with dbopt.instrument(pg_engine, stats, log), pg_engine.connect() as c:
        assert c.execute(text(sql)).scalar() == 150_000
    (entry,) = stats.statements()
    assert entry.calls == 1
    assert len(entry.fingerprint) == 16


def test_unreachable_server_for_explain_is_a_clear_dbopt_error() -> None:
    from dbopt.postgres import Explainer

    explainer = Explainer("postgresql://postgres@127.0.0.1:1/postgres", connect_timeout_s=2)
    with pytest.raises(dbopt.ServerUnavailableError):
        explainer.explain("SELECT 1")
