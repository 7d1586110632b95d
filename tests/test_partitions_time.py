"""Range partitions on time keys: every interval, time zones, DST and leap years, on a real server.

Expected bounds are written out by hand (as PostgreSQL prints them in the
spec's zone), and rows inserted through the parent must land where the
local calendar says.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from psycopg import sql

from dbopt.partitions import PartitionManager, PartitionSpec, PartitionSpecError
from dbopt.partitions.grid import TimeGrid, add_months, parse_age
from test_partitions_support import (
    EVENTS_COLUMNS,
    bounds,
    connect,
    routed,
)

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def insert(pg_url: str, schema: str, table: str, *stamps: str) -> None:
    with connect(pg_url) as conn:
        for stamp in stamps:
            conn.execute(
                sql.SQL("INSERT INTO {} (created_at) VALUES (%s::timestamptz)").format(
                    sql.Identifier(schema, table)
                ),
                (stamp,),
            )


def test_hourly_across_the_fall_back_night(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="hour",
        premake=3,
        timezone="Europe/Berlin",
        default=False,
    )
    # 02:30 CEST on 2024-10-27, the first of the two 02:xx hours of that night.
    now = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)
    manager.create(spec, columns=EVENTS_COLUMNS, now=now)
    assert bounds(pg_url, schema, "ev", "UTC") == [
        (
            "ev_p20241027_02",
            "FOR VALUES FROM ('2024-10-27 00:00:00+00') TO ('2024-10-27 01:00:00+00')",
        ),
        (
            "ev_p20241027_02_1",
            "FOR VALUES FROM ('2024-10-27 01:00:00+00') TO ('2024-10-27 02:00:00+00')",
        ),
        (
            "ev_p20241027_03",
            "FOR VALUES FROM ('2024-10-27 02:00:00+00') TO ('2024-10-27 03:00:00+00')",
        ),
        (
            "ev_p20241027_04",
            "FOR VALUES FROM ('2024-10-27 03:00:00+00') TO ('2024-10-27 04:00:00+00')",
        ),
    ]
    insert(
        pg_url, schema, "ev", "2024-10-27 02:15+02", "2024-10-27 02:15+01", "2024-10-27 03:59+01"
    )
    assert routed(pg_url, schema, "ev") == {
        "ev_p20241027_02": 1,
        "ev_p20241027_02_1": 1,
        "ev_p20241027_03": 1,
    }
    assert manager.plan(spec, now=now).converged


def test_daily_in_new_york_has_a_23_hour_day(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="day",
        premake=1,
        timezone="America/New_York",
        default=False,
    )
    manager.create(
        spec,
        columns=EVENTS_COLUMNS,
        now=datetime(2024, 3, 10, 12, tzinfo=ZoneInfo("America/New_York")),
    )
    assert bounds(pg_url, schema, "ev", "America/New_York") == [
        (
            "ev_p20240310",
            "FOR VALUES FROM ('2024-03-10 00:00:00-05') TO ('2024-03-11 00:00:00-04')",
        ),
        (
            "ev_p20240311",
            "FOR VALUES FROM ('2024-03-11 00:00:00-04') TO ('2024-03-12 00:00:00-04')",
        ),
    ]
    # 23:30 local on March 10 is 03:30 UTC on March 11: it belongs to the 10th.
    insert(pg_url, schema, "ev", "2024-03-11 03:30+00", "2024-03-11 04:00+00")
    assert routed(pg_url, schema, "ev") == {"ev_p20240310": 1, "ev_p20240311": 1}


def test_weekly_names_use_the_iso_year(pg_url: str, schema: str, manager: PartitionManager) -> None:
    spec = PartitionSpec(
        f"{schema}.ev", key="created_at", interval="week", premake=1, default=False
    )
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 12, 31, 10, tzinfo=UTC))
    assert bounds(pg_url, schema, "ev") == [
        ("ev_p2025w01", "FOR VALUES FROM ('2024-12-30 00:00:00+00') TO ('2025-01-06 00:00:00+00')"),
        ("ev_p2025w02", "FOR VALUES FROM ('2025-01-06 00:00:00+00') TO ('2025-01-13 00:00:00+00')"),
    ]


def test_monthly_leap_february_in_berlin(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(
        f"{schema}.ev",
        key="created_at",
        interval="month",
        premake=1,
        timezone="Europe/Berlin",
        start=datetime(2024, 1, 20),
    )
    manager.create(
        spec,
        columns=EVENTS_COLUMNS,
        now=datetime(2024, 2, 29, 23, 30, tzinfo=ZoneInfo("Europe/Berlin")),
    )
    assert bounds(pg_url, schema, "ev", "Europe/Berlin") == [
        ("ev_default", "DEFAULT"),
        ("ev_p202401", "FOR VALUES FROM ('2024-01-01 00:00:00+01') TO ('2024-02-01 00:00:00+01')"),
        ("ev_p202402", "FOR VALUES FROM ('2024-02-01 00:00:00+01') TO ('2024-03-01 00:00:00+01')"),
        ("ev_p202403", "FOR VALUES FROM ('2024-03-01 00:00:00+01') TO ('2024-04-01 00:00:00+02')"),
    ]
    # Feb 29 23:30 Berlin is 22:30 UTC; March 1 00:30 Berlin is Feb 29 23:30 UTC.
    insert(pg_url, schema, "ev", "2024-02-29 22:30+00", "2024-02-29 23:30+00")
    assert routed(pg_url, schema, "ev") == {"ev_p202402": 1, "ev_p202403": 1}


def test_quarterly_and_yearly_in_a_half_hour_zone(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    quarterly = PartitionSpec(
        f"{schema}.q",
        key="created_at",
        interval="quarter",
        premake=1,
        timezone="Asia/Kolkata",
        default=False,
    )
    yearly = PartitionSpec(
        f"{schema}.y",
        key="created_at",
        interval="year",
        premake=1,
        timezone="Asia/Kolkata",
        default=False,
    )
    now = datetime(2024, 5, 5, tzinfo=UTC)
    manager.create(quarterly, columns=EVENTS_COLUMNS, now=now)
    manager.create(yearly, columns=EVENTS_COLUMNS, now=now)
    assert bounds(pg_url, schema, "q") == [
        ("q_p2024q2", "FOR VALUES FROM ('2024-03-31 18:30:00+00') TO ('2024-06-30 18:30:00+00')"),
        ("q_p2024q3", "FOR VALUES FROM ('2024-06-30 18:30:00+00') TO ('2024-09-30 18:30:00+00')"),
    ]
    assert bounds(pg_url, schema, "y") == [
        ("y_p2024", "FOR VALUES FROM ('2023-12-31 18:30:00+00') TO ('2024-12-31 18:30:00+00')"),
        ("y_p2025", "FOR VALUES FROM ('2024-12-31 18:30:00+00') TO ('2025-12-31 18:30:00+00')"),
    ]
    lengths = [p.upper - p.lower for p in manager.partitions(f"{schema}.y")]  # type: ignore[operator]
    assert lengths == [timedelta(days=366), timedelta(days=365)]  # 2024 is a leap year


def test_timestamp_and_date_keys(pg_url: str, schema: str, manager: PartitionManager) -> None:
    naive = PartitionSpec(
        f"{schema}.logs",
        key="at",
        interval="day",
        premake=1,
        default=False,
        timezone="Europe/Berlin",
    )
    manager.create(
        naive,
        columns="at timestamp NOT NULL, line text",
        now=datetime(2024, 3, 30, 23, 30, tzinfo=UTC),
    )  # March 31 00:30 in Berlin
    assert bounds(pg_url, schema, "logs") == [
        ("logs_p20240331", "FOR VALUES FROM ('2024-03-31 00:00:00') TO ('2024-04-01 00:00:00')"),
        ("logs_p20240401", "FOR VALUES FROM ('2024-04-01 00:00:00') TO ('2024-04-02 00:00:00')"),
    ]
    dates = PartitionSpec(
        f"{schema}.days",
        key="day",
        interval="month",
        premake=0,
        default=False,
        retention="2 months",
        retention_mode="drop",
    )
    manager.create(dates, columns="day date NOT NULL, n int", now=datetime(2024, 2, 10, tzinfo=UTC))
    assert bounds(pg_url, schema, "days") == [
        ("days_p202402", "FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')"),
    ]
    result = manager.maintain(dates, now=datetime(2024, 5, 1, 12, tzinfo=UTC))
    assert [r.status for r in result.results] == ["done", "done", "done", "done"]
    assert bounds(pg_url, schema, "days") == [
        ("days_p202403", "FOR VALUES FROM ('2024-03-01') TO ('2024-04-01')"),
        ("days_p202404", "FOR VALUES FROM ('2024-04-01') TO ('2024-05-01')"),
        ("days_p202405", "FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')"),
    ]


def test_hour_interval_on_a_date_key_is_refused(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    spec = PartitionSpec(f"{schema}.d", key="day", interval="hour", default=False)
    with pytest.raises(PartitionSpecError, match="hourly"):
        manager.create(spec, columns="day date NOT NULL")


# -- the arithmetic itself, against the calendar ------------------------------------


@pytest.mark.parametrize(
    ("interval", "zone", "now", "lower", "upper"),
    [
        (
            "day",
            "Europe/London",
            datetime(2024, 3, 31, 12, tzinfo=UTC),
            datetime(2024, 3, 31, 0, tzinfo=UTC),
            datetime(2024, 3, 31, 23, tzinfo=UTC),
        ),
        (
            "day",
            "Europe/London",
            datetime(2024, 10, 27, 12, tzinfo=UTC),
            datetime(2024, 10, 26, 23, tzinfo=UTC),
            datetime(2024, 10, 28, 0, tzinfo=UTC),
        ),
        (
            "month",
            "Australia/Sydney",
            datetime(2024, 4, 10, tzinfo=UTC),
            datetime(2024, 3, 31, 13, tzinfo=UTC),
            datetime(2024, 4, 30, 14, tzinfo=UTC),
        ),
        (
            "year",
            "UTC",
            datetime(2100, 6, 1, tzinfo=UTC),
            datetime(2100, 1, 1, tzinfo=UTC),
            datetime(2101, 1, 1, tzinfo=UTC),
        ),
        # Santiago skips midnight on 2024-09-08: the day starts at 01:00 local (04:00 UTC).
        (
            "day",
            "America/Santiago",
            datetime(2024, 9, 8, 15, tzinfo=UTC),
            datetime(2024, 9, 8, 4, tzinfo=UTC),
            datetime(2024, 9, 9, 3, tzinfo=UTC),
        ),
    ],
)
def test_range_bounds(
    interval: str, zone: str, now: datetime, lower: datetime, upper: datetime
) -> None:
    grid = TimeGrid(interval, ZoneInfo(zone), "timestamptz")
    start = grid.floor(grid.key_value(now))
    assert (start, grid.shift(start, 1)) == (lower, upper)
    assert grid.shift(grid.shift(start, 1), -1) == start


def test_calendar_ages() -> None:
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2023, 3, 31), -1) == date(2023, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert parse_age("12 Months").count == 12
    with pytest.raises(PartitionSpecError):
        parse_age("a year")
    grid = TimeGrid("month", ZoneInfo("Europe/Berlin"), "timestamptz")
    # One month before 2024-03-31 12:00 Berlin (CEST) is 2024-02-29 12:00 Berlin (CET).
    at = datetime(2024, 3, 31, 10, tzinfo=UTC)
    assert grid.minus(at, parse_age("1 month")) == datetime(2024, 2, 29, 11, tzinfo=UTC)
