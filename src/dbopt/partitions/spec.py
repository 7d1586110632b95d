"""``PartitionSpec``: what a partitioned table should look like (the *what*; no SQL here)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dbopt.partitions.errors import PartitionSpecError
from dbopt.partitions.grid import (
    INTERVALS,
    Age,
    Grid,
    IntegerGrid,
    KeyKind,
    TimeGrid,
    parse_age,
)

__all__ = ["DEFAULT_NAMING", "PartitionSpec", "RetentionMode", "Strategy"]

Strategy = Literal["range", "list", "hash"]
RetentionMode = Literal["detach", "detach_then_drop", "drop"]

#: Naming templates used when the spec gives none and none was learned from the table.
DEFAULT_NAMING: Mapping[str, str] = {
    "hour": "{parent}_p{start:%Y%m%d_%H}",
    "day": "{parent}_p{start:%Y%m%d}",
    "week": "{parent}_p{isoyear}w{week:02d}",
    "month": "{parent}_p{start:%Y%m}",
    "quarter": "{parent}_p{start:%Y}q{quarter}",
    "year": "{parent}_p{start:%Y}",
    "integer": "{parent}_p{start}",
    "list": "{parent}_{label}",
    "hash": "{parent}_p{remainder}",
    "default": "{parent}_default",
}
_OPTION = re.compile(r"[a-z_][a-z0-9_.]*")


@dataclass(frozen=True)
class PartitionSpec:
    """How one table is partitioned and kept: strategy, ranges ahead, retention, naming.

    ``table`` is ``"name"`` or ``"schema.name"`` (or pass ``schema``). Range
    specs take ``interval`` (hour, day, week, month, quarter, year) for a
    ``timestamptz``/``timestamp``/``date`` key, or ``width`` for an integer
    key. ``premake`` ranges are kept ahead of the current one; ``start``
    backfills ranges from an earlier value. Retention is by ``retention``
    (an age: ``"12 months"``, a ``timedelta``, or an int distance for integer
    keys) or by ``retention_count`` (ranges kept, the current one included);
    ``retention_mode`` says whether expired partitions are detached, detached
    and dropped after ``grace``, or dropped. Time bounds are computed in
    ``timezone``. ``naming`` is a ``str.format`` template with ``parent``,
    ``start``, ``end`` (local datetimes/dates or ints), ``quarter``,
    ``isoyear``, ``week``, ``mon`` (``jan``...), ``label`` (list) and
    ``remainder`` (hash). List specs map labels to value lists in
    ``values``; hash specs give ``modulus``. ``default`` (None: on for range
    and list, off for hash) adds a DEFAULT partition. ``storage_parameters``
    (e.g. ``{"fillfactor": 90}``) are set on every partition created, since
    PostgreSQL does not copy them from the parent.
    """

    table: str
    key: str
    strategy: Strategy = "range"
    interval: str | None = None
    width: int | None = None
    premake: int = 4
    start: datetime | date | int | None = None
    retention: str | timedelta | int | None = None
    retention_count: int | None = None
    retention_mode: RetentionMode = "detach"
    grace: timedelta = timedelta(days=7)
    default: bool | None = None
    naming: str | None = None
    tablespace: str | None = None
    timezone: str = "UTC"
    storage_parameters: Mapping[str, str | int | float | bool] | None = None
    values: Mapping[str, Sequence[Any]] | None = None
    modulus: int | None = None
    schema: str | None = None
    _age: Age | timedelta | int | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.schema is None and "." in self.table:
            schema, table = self.table.split(".", 1)
            object.__setattr__(self, "schema", schema)
            object.__setattr__(self, "table", table)
        if not self.table or not self.key:
            raise PartitionSpecError("a PartitionSpec needs a table and a key column")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PartitionSpecError(f"unknown time zone {self.timezone!r}") from exc
        if self.retention_mode not in ("detach", "detach_then_drop", "drop"):
            raise PartitionSpecError(f"unknown retention_mode {self.retention_mode!r}")
        for name in self.storage_parameters or {}:
            if not _OPTION.fullmatch(name):
                raise PartitionSpecError(f"not a storage parameter name: {name!r}")
        check = {"range": self._check_range, "list": self._check_list, "hash": self._check_hash}
        if self.strategy not in check:
            raise PartitionSpecError(f"strategy must be range, list or hash: {self.strategy!r}")
        check[self.strategy]()
        age: Age | timedelta | int | None = None
        if isinstance(self.retention, str):
            age = parse_age(self.retention)
        elif isinstance(self.retention, (timedelta, int)):
            age = self.retention
        object.__setattr__(self, "_age", age)

    def _check_range(self) -> None:
        if (self.interval is None) == (self.width is None):
            raise PartitionSpecError("a range spec takes an interval (time keys) or a width")
        if self.interval is not None and self.interval not in INTERVALS:
            raise PartitionSpecError(f"interval must be one of {INTERVALS}: {self.interval!r}")
        if self.width is not None and self.width < 1:
            raise PartitionSpecError("width must be a positive integer")
        if self.premake < 0:
            raise PartitionSpecError("premake cannot be negative")
        if self.retention is not None and self.retention_count is not None:
            raise PartitionSpecError("give retention (an age) or retention_count, not both")
        if self.retention_count is not None and self.retention_count < 1:
            raise PartitionSpecError("retention_count keeps at least the current partition")
        if self.values is not None or self.modulus is not None:
            raise PartitionSpecError("values and modulus belong to list and hash specs")
        if isinstance(self.retention, int) and self.width is None:
            raise PartitionSpecError("a time key's retention is an age ('12 months') or timedelta")

    def _check_list(self) -> None:
        if not self.values:
            raise PartitionSpecError("a list spec needs values: {label: [value, ...]}")
        self._check_not_range()

    def _check_hash(self) -> None:
        if self.modulus is None or self.modulus < 1:
            raise PartitionSpecError("a hash spec needs modulus >= 1")
        if self.default:
            raise PartitionSpecError("PostgreSQL allows no default partition under hash")
        self._check_not_range()

    def _check_not_range(self) -> None:
        ranged = (self.interval, self.width, self.retention, self.retention_count, self.start)
        if any(item is not None for item in ranged):
            raise PartitionSpecError(
                f"interval, width, start and retention apply to range specs, not {self.strategy}"
            )

    @property
    def schema_name(self) -> str:
        """The parent's schema (``public`` unless given)."""
        return self.schema or "public"

    @property
    def qualified(self) -> str:
        """``schema.table`` as text (for messages and state records; not quoted)."""
        return f"{self.schema_name}.{self.table}"

    @property
    def has_default(self) -> bool:
        """Whether the spec wants a DEFAULT partition."""
        return self.default if self.default is not None else self.strategy != "hash"

    @property
    def age(self) -> Age | timedelta | int | None:
        """Retention by age, parsed (None when retention is by count or absent)."""
        return self._age

    @property
    def zone(self) -> ZoneInfo:
        """The time zone bounds are computed in."""
        return ZoneInfo(self.timezone)

    def grid(self, kind: KeyKind) -> Grid:
        """The range grid for a key of ``kind``; raises PartitionSpecError on a mismatch."""
        if self.strategy != "range":
            raise PartitionSpecError(f"a {self.strategy} spec has no range grid")
        if self.width is not None:
            if kind != "integer":
                raise PartitionSpecError(f"width needs an integer key; {self.key} is {kind}")
            return IntegerGrid(self.width)
        return TimeGrid(self.interval or "", self.zone, kind)

    def naming_for(self, kind: str, learned: str | None = None) -> str:
        """Template for partitions of ``kind`` (interval, integer, list, hash, default)."""
        if kind != "default" and self.naming:
            return self.naming
        if kind != "default" and learned:
            return learned
        return DEFAULT_NAMING[kind]

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready data (datetimes ISO, timedeltas in seconds)."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name.startswith("_"):
                continue
            value = getattr(self, name)
            if isinstance(value, (datetime, date)):
                value = value.isoformat()
            elif isinstance(value, timedelta):
                value = value.total_seconds()
            elif isinstance(value, Mapping):
                value = {
                    k: list(v) if isinstance(v, (list, tuple)) else v for k, v in value.items()
                }
            out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PartitionSpec:
        """A spec from ``to_dict()`` output or hand-written JSON/TOML (ISO dates, seconds)."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k[0] != "_"}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise PartitionSpecError(f"unknown PartitionSpec fields: {', '.join(unknown)}")
        if isinstance(fields.get("grace"), (int, float)):
            fields["grace"] = timedelta(seconds=fields["grace"])
        timed = fields.get("interval") is not None
        if timed and isinstance(fields.get("retention"), (int, float)):
            fields["retention"] = timedelta(seconds=fields["retention"])
        start = fields.get("start")
        if timed and isinstance(start, str):
            fields["start"] = (
                date.fromisoformat(start) if len(start) == 10 else (datetime.fromisoformat(start))
            )
        return cls(**fields)
