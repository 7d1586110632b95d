"""Range arithmetic: where a partition starts and ends, for time and integer keys.

Time bounds are computed in the spec's time zone: a month of a
``timestamptz`` key in ``Europe/Berlin`` runs from local midnight of the 1st
to local midnight of the next 1st, so its length in hours changes with DST.
Days and longer step by the calendar, hours by absolute time from a local
hour boundary (the repeated hour of a fall-back night is its own partition).
``timestamptz`` values are kept as UTC-aware datetimes (one canonical form
to compare with the catalog), ``timestamp`` values as naive local
datetimes, ``date`` values as dates, integer values as ints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Literal, TypeAlias, Union

from dbopt.partitions.errors import PartitionSpecError

__all__ = [
    "INTERVALS",
    "Age",
    "Grid",
    "IntegerGrid",
    "KeyKind",
    "TimeGrid",
    "Value",
    "add_months",
    "parse_age",
]

#: One end of a range: ``None`` stands for MINVALUE (lower) or MAXVALUE (upper).
Value: TypeAlias = Union[datetime, date, int]  # noqa: UP007 (a runtime alias)
KeyKind = Literal["timestamptz", "timestamp", "date", "integer"]
INTERVALS = ("hour", "day", "week", "month", "quarter", "year")
_UNIT_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_AGE = re.compile(r"^\s*(\d+)\s*(hour|day|week|month|quarter|year)s?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Age:
    """A calendar amount, e.g. ``Age(12, "month")`` (parsed from ``"12 months"``)."""

    count: int
    unit: str

    def __str__(self) -> str:
        return f"{self.count} {self.unit}{'s' if self.count != 1 else ''}"


def parse_age(text: str) -> Age:
    """``"12 months"`` → ``Age(12, "month")``; raises PartitionSpecError when unreadable."""
    match = _AGE.match(text)
    if not match:
        raise PartitionSpecError(
            f"cannot read the age {text!r}: write e.g. '12 months', '90 days', '2 years'"
        )
    return Age(int(match.group(1)), match.group(2).lower())


def add_months(day: date, months: int) -> date:
    """``day`` moved by ``months`` calendar months, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def _add_units(day: date, unit: str, n: int) -> date:
    if unit == "day":
        return day + timedelta(days=n)
    if unit == "week":
        return day + timedelta(weeks=n)
    return add_months(day, n * _UNIT_MONTHS[unit])


def _truncate(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    if unit == "year":
        return date(day.year, 1, 1)
    return day


class Grid:
    """The partition grid of one key: align a value, step ranges, name them."""

    kind: KeyKind

    def floor(self, value: Value) -> Value:
        """Start of the range that holds ``value``."""
        raise NotImplementedError

    def shift(self, start: Value, n: int) -> Value:
        """The range start ``n`` ranges after (``n < 0``: before) the aligned ``start``."""
        raise NotImplementedError

    def key_value(self, now: datetime | date | int) -> Value:
        """``now`` (a wall-clock time, or a key value) in the key's own domain."""
        raise NotImplementedError

    def minus(self, value: Value, age: Age | timedelta | int) -> Value:
        """``value`` moved back by a retention ``age`` (calendar units in the time zone)."""
        raise NotImplementedError

    def name_fields(self, lower: Value, upper: Value | None) -> dict[str, object]:
        """Fields a naming template may use for the range ``[lower, upper)``."""
        raise NotImplementedError


class IntegerGrid(Grid):
    """Ranges of ``width`` on an integer key, aligned to multiples of ``width``."""

    kind: KeyKind = "integer"

    def __init__(self, width: int) -> None:
        self.width = width

    def floor(self, value: Value) -> int:
        number = _as_int(value)
        return number - number % self.width

    def shift(self, start: Value, n: int) -> int:
        return _as_int(start) + n * self.width

    def key_value(self, now: datetime | date | int) -> int:
        return _as_int(now)

    def minus(self, value: Value, age: Age | timedelta | int) -> int:
        if not isinstance(age, int):
            raise PartitionSpecError("retention of an integer key is an int (a key distance)")
        return _as_int(value) - age

    def name_fields(self, lower: Value, upper: Value | None) -> dict[str, object]:
        return {"start": lower, "end": upper}


class TimeGrid(Grid):
    """Calendar ranges (hour ... year) of a ``timestamptz``, ``timestamp`` or ``date`` key."""

    def __init__(self, interval: str, tz: tzinfo, kind: KeyKind) -> None:
        if interval not in INTERVALS:
            raise PartitionSpecError(f"interval must be one of {INTERVALS}, got {interval!r}")
        if kind == "date" and interval == "hour":
            raise PartitionSpecError("a date key cannot have hourly partitions")
        if kind == "integer":
            raise PartitionSpecError("an integer key takes a width, not an interval")
        self.interval = interval
        self.tz = tz
        self.kind = kind

    def local(self, value: Value) -> datetime | date:
        """``value`` as the time zone's wall clock (aware for timestamptz)."""
        if self.kind == "timestamptz":
            return _as_datetime(value).astimezone(self.tz)
        if self.kind == "timestamp":
            return _as_datetime(value)
        return _as_date(value)

    def _from_day(self, day: date) -> Value:
        if self.kind == "date":
            return day
        midnight = datetime(day.year, day.month, day.day)
        if self.kind == "timestamp":
            return midnight
        return midnight.replace(tzinfo=self.tz).astimezone(timezone.utc)

    def floor(self, value: Value) -> Value:
        local = self.local(value)
        if self.interval == "hour":
            hour = _as_datetime(local).replace(minute=0, second=0, microsecond=0)
            return hour.astimezone(timezone.utc) if self.kind == "timestamptz" else hour
        day = local.date() if isinstance(local, datetime) else local
        return self._from_day(_truncate(day, self.interval))

    def shift(self, start: Value, n: int) -> Value:
        if self.interval == "hour":
            return _as_datetime(start) + timedelta(hours=n)
        local = self.local(start)
        day = local.date() if isinstance(local, datetime) else local
        return self._from_day(_add_units(day, self.interval, n))

    def key_value(self, now: datetime | date | int) -> Value:
        if isinstance(now, int):
            raise PartitionSpecError("a time key needs a datetime for now, not an int")
        if not isinstance(now, datetime):
            now = datetime(now.year, now.month, now.day, tzinfo=self.tz)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=self.tz)
        if self.kind == "timestamptz":
            return now.astimezone(timezone.utc)
        wall = now.astimezone(self.tz).replace(tzinfo=None)
        return wall if self.kind == "timestamp" else wall.date()

    def minus(self, value: Value, age: Age | timedelta | int) -> Value:
        if isinstance(age, int):
            raise PartitionSpecError("retention of a time key is an age ('12 months') or timedelta")
        if isinstance(age, timedelta):
            if self.kind == "date":
                return _as_date(value) - timedelta(days=age.days)
            return _as_datetime(value) - age
        if age.unit == "hour":
            if self.kind == "date":
                return _as_date(value) - timedelta(days=-(-age.count // 24))
            return _as_datetime(value) - timedelta(hours=age.count)
        local = self.local(value)
        if isinstance(local, datetime):
            day = _add_units(local.date(), age.unit, -age.count)
            moved = datetime.combine(day, local.time(), local.tzinfo)
            return moved.astimezone(timezone.utc) if self.kind == "timestamptz" else moved
        return _add_units(local, age.unit, -age.count)

    def name_fields(self, lower: Value, upper: Value | None) -> dict[str, object]:
        start = self.local(lower)
        day = start.date() if isinstance(start, datetime) else start
        iso = day.isocalendar()
        return {
            "start": start,
            "end": None if upper is None else self.local(upper),
            "quarter": (day.month - 1) // 3 + 1,
            "isoyear": iso[0],
            "week": iso[1],
            "mon": _MONTHS[day.month - 1],
        }


def _as_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PartitionSpecError(f"expected an integer key value, got {value!r}")
    return value


def _as_datetime(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise PartitionSpecError(f"expected a datetime key value, got {value!r}")
    return value


def _as_date(value: object) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise PartitionSpecError(f"expected a date key value, got {value!r}")
    return value
