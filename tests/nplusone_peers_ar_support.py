"""Shared plumbing for the ports of ActiveRecord peers' N+1 tests (prosopite, bullet).

A :class:`Scenario` keeps the peer's source (repository, file, test name),
its fixture (``seed``), the statement shape (``body``) and the peer's
verdict: does the peer report an N+1? :func:`verdict` runs the body in one
``dbopt.scope`` under a fresh ``NPlusOneDetector`` on PostgreSQL and returns
the findings. A scenario agrees with the peer, or names the documented design
difference (docs/nplusone.md, "Against the peers") under which dbopt's
N+1 verdict is the opposite. Findings of other kinds (a repeated query) are
listed in ``also`` so that they cannot come or go unnoticed either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine, MetaData, text
from sqlalchemy.orm import Session

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding

#: A per-row lookup that the peer exempts because its framework issues it
#: (Rails' uniqueness validation); in SQLAlchemy the same lookup is the
#: application's own code, and dbopt reports it.
FRAMEWORK_QUERY = "framework-query"
#: The peer reports a lazy load on an object of a multi-row result even when
#: it ran once (one parent row, or SQLAlchemy's identity map answered the
#: others); dbopt needs two loads with different values, or ``checks=["potential"]``.
ONE_LOAD = "one-load"
#: A per-row COUNT that the peer's counter-cache check leaves alone because a
#: Rails ``counter_cache`` could not serve it; dbopt reports every per-row
#: aggregate as an N+1 with a grouped-count fix.
PER_ROW_COUNT = "per-row-count"


@dataclass(frozen=True)
class Scenario:
    source: str
    test: str
    body: Callable[[Session], object]
    peer_reports: bool
    seed: Callable[[Session], object] | None = None
    difference: str | None = None
    allow: tuple[str | dbopt.NPlusOneAllow, ...] = ()
    threshold: int = 2
    #: False: the peer's detection is turned off (``Prosopite.enabled = false``,
    #: ``Bullet.n_plus_one_query_enable = false``): dbopt's detector is not attached.
    instrumented: bool = True
    #: Relationships dbopt's N+1 findings must name (when the peer names them).
    relationships: frozenset[str] = frozenset()
    #: Kinds of the other findings dbopt reports here (e.g. ``repeated_query``).
    also: frozenset[str] = frozenset()


def reset(engine: Engine, metadata: MetaData) -> None:
    """Empty every table of ``metadata`` and restart its sequences."""
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


def verdict(
    engine: Engine,
    metadata: MetaData,
    scenario: Scenario,
    *,
    potential: bool = False,
) -> list[NPlusOneFinding]:
    """dbopt's findings for ``scenario``, run on freshly seeded tables."""
    reset(engine, metadata)
    if scenario.seed is not None:
        with Session(engine) as session:
            scenario.seed(session)
            session.commit()
    found: list[NPlusOneFinding] = []
    detector = NPlusOneDetector(
        scenario.threshold,
        action=found.append,
        allow=scenario.allow,
        checks=("potential",) if potential else (),
    )
    with Session(engine) as session:
        if scenario.instrumented:
            with dbopt.instrument(engine, detector), dbopt.scope(scenario.test):
                scenario.body(session)
        else:
            with dbopt.scope(scenario.test):
                scenario.body(session)
    return found


def check(found: Sequence[NPlusOneFinding], scenario: Scenario) -> None:
    """Assert dbopt's verdict agrees with the peer's, or differs as documented."""
    n_plus_ones = [f for f in found if f.kind == "n_plus_one"]
    reports = bool(n_plus_ones)
    others = {f.kind for f in found if f.kind != "n_plus_one"}
    detail = [str(f) for f in found]
    if scenario.difference is None:
        assert reports == scenario.peer_reports, detail
    else:
        assert reports != scenario.peer_reports, f"{scenario.difference} no longer differs"
    assert others == set(scenario.also), detail
    if scenario.relationships and reports:
        assert scenario.relationships <= {f.relationship for f in n_plus_ones}, detail


def table(scenarios: Sequence[Scenario]) -> dict[str, list[int]]:
    """source → [agreements, scenarios]."""
    rows: dict[str, list[int]] = {}
    for scenario in scenarios:
        agree, total = rows.setdefault(scenario.source, [0, 0])
        rows[scenario.source] = [agree + (scenario.difference is None), total + 1]
    return rows
