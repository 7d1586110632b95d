"""Write cost in the workload's window: which writes an index is charged for.

A recommendation must pay for the index maintenance it causes over the same
period its savings are counted in. The workload's statements are weighted
by their calls over some window; the table counters of
``pg_stat_user_tables`` cover another (since the last statistics reset,
which after a bulk load holds every loaded row). Charging the second against
the first vetoes every index on a freshly loaded table.

``write_window`` (an :class:`IndexAdvisor` option) says which writes count:

* ``"auto"`` (default): pg_stat_statements with the table counters when both
  were reset at the same time (else the writes pg_stat_statements itself
  recorded); a QueryStats with the table counters' rate over its recorded
  duration (else the writes it recorded); a SQL list or file is charged
  nothing. The table counters are shown as information either way.
* ``"counters"``: the table counters since the last reset, as they are.
* ``"workload"``: only the workload's own INSERT/UPDATE/DELETE statements.
* ``"none"``: nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from dbopt.advisor.catalog import Catalog
from dbopt.advisor.workload import Workload
from dbopt.errors import ConfigurationError

__all__ = ["WRITE_WINDOWS", "TableWrites", "WriteWindow", "choose_window"]

WRITE_WINDOWS = ("auto", "counters", "workload", "none")
_SAME_RESET_S = 60.0


@dataclass
class TableWrites:
    """Rows written to one table in the charged window."""

    inserted: float = 0.0
    updated: float = 0.0
    hot_updated: float = 0.0
    deleted: float = 0.0

    def scaled(self, factor: float) -> TableWrites:
        """These writes times ``factor``."""
        return TableWrites(
            self.inserted * factor,
            self.updated * factor,
            self.hot_updated * factor,
            self.deleted * factor,
        )

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return {
            "inserted": round(self.inserted, 1),
            "updated": round(self.updated, 1),
            "hot_updated": round(self.hot_updated, 1),
            "deleted": round(self.deleted, 1),
        }


@dataclass
class WriteWindow:
    """How writes are charged: ``mode`` (``counters``, ``scaled``, ``workload``, ``none``).

    ``tables`` maps a table oid to the rows charged; ``reason`` says why
    this window was chosen, in words.
    """

    mode: str
    reason: str
    scale: float = 1.0
    tables: dict[int, TableWrites] = field(default_factory=dict)

    def writes(self, oid: int) -> TableWrites:
        """Rows charged for table ``oid`` (zero when none)."""
        return self.tables.get(oid, TableWrites())


def counters(catalog: Catalog, oid: int) -> TableWrites:
    """The table's counters since the last statistics reset."""
    rel = catalog.relations[oid]
    return TableWrites(
        float(rel.n_tup_ins), float(rel.n_tup_upd), float(rel.n_tup_hot_upd), float(rel.n_tup_del)
    )


def choose_window(
    mode: str,
    catalog: Catalog,
    workload: Workload,
    own: dict[int, TableWrites],
    tables: set[int],
) -> WriteWindow:
    """The writes to charge for ``tables`` (root oids) under ``mode`` (see the module doc).

    ``own`` are the workload's own write statements' rows per table.
    """
    if mode not in WRITE_WINDOWS:
        raise ConfigurationError(f"write_window must be one of {', '.join(WRITE_WINDOWS)}")
    if mode == "none":
        return WriteWindow("none", "write_window='none': writes are not charged")
    if mode == "counters":
        return _from_counters(catalog, tables, 1.0, "write_window='counters'")
    workload_window = WriteWindow("workload", "", tables=dict(own))
    if mode == "workload":
        workload_window.reason = "write_window='workload': the workload's own write statements"
        return workload_window
    db_since = catalog.stats_reset
    db_age = catalog.stats_age_s
    if workload.source == "pg_stat_statements":
        if workload.since is not None and db_since is not None:
            gap = abs((_aware(workload.since) - _aware(db_since)).total_seconds())
            span = max(workload.window_s or 0.0, db_age or 0.0)
            if gap <= max(_SAME_RESET_S, 0.01 * span):
                return _from_counters(
                    catalog,
                    tables,
                    1.0,
                    "pg_stat_statements and the table counters were reset together "
                    f"({_when(db_since)})",
                )
        workload_window.reason = (
            "pg_stat_statements (reset "
            f"{_when(workload.since)}) and the table counters (reset {_when(db_since)}) "
            "cover different periods: charging the writes pg_stat_statements recorded"
        )
        return workload_window
    if workload.source == "querystats":
        if workload.window_s is None:
            workload_window.reason = (
                "the QueryStats snapshot has no recorded period: charging the writes it recorded"
            )
            return workload_window
        if db_age is not None and db_age > 0:
            scale = min(1.0, workload.window_s / db_age)
            return _from_counters(
                catalog,
                tables,
                scale,
                f"the table counters' write rate (since {_when(db_since)}) over the "
                f"QueryStats' {workload.window_s:,.0f} s",
            )
        workload_window.reason = (
            "the table counters were never reset (their period is unknown): charging "
            "the writes the QueryStats recorded"
        )
        return workload_window
    return WriteWindow(
        "none",
        "a SQL workload has no time window: writes are not charged "
        "(write_window='workload' charges its own write statements, 'counters' the "
        "table counters since their reset)",
    )


def _from_counters(catalog: Catalog, tables: set[int], scale: float, reason: str) -> WriteWindow:
    charged = {oid: counters(catalog, oid).scaled(scale) for oid in tables}
    return WriteWindow("counters" if scale == 1.0 else "scaled", reason, scale, charged)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _when(value: Any) -> str:
    if value is None:
        return "never"
    if isinstance(value, dt.datetime):
        return _aware(value).astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)


def observed(catalog: Catalog, tables: set[int]) -> list[str]:
    """The table counters of ``tables`` in words, with a rate per hour when the period is known."""
    age = catalog.stats_age_s
    since = _when(catalog.stats_reset) if catalog.stats_reset is not None else "statistics start"
    out = []
    for oid in sorted(tables, key=lambda o: catalog.relations[o].qualified):
        w = counters(catalog, oid)
        total = w.inserted + w.updated + w.deleted
        if total <= 0:
            continue
        rel = catalog.relations[oid]
        text = (
            f"{rel.qualified}: {w.inserted:,.0f} inserted, {w.updated:,.0f} updated, "
            f"{w.deleted:,.0f} deleted since {since}"
        )
        if age:
            text += f" ({total / age * 3600:,.0f} rows/h)"
        out.append(text)
    return out
