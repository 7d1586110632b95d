"""Peers' published test scenarios, ported to SQLAlchemy 2 on PostgreSQL, and dbopt's verdicts.

Each scenario keeps the peer's models, fixture data and statement shape and
notes its source (repository, file, test name) and the peer's verdict: does
the peer report something? dbopt runs it in one ``dbopt.scope`` with a fresh
``NPlusOneDetector`` (and the opt-in checks), then again with
``checks=["potential"]``. A scenario either agrees with
the peer, or names the documented design difference (docs/nplusone.md,
"Against the peers") under which dbopt's verdict is the opposite; the test
fails when a verdict moves either way, so the agreement table stays true.

Ported so far: nplusone's SQLAlchemy tests (jmcarp/nplusone
``tests/test_sqlalchemy.py``, models from ``tests/utils.py``: one User with
one Address and one Hobby). prosopite's and bullet's are in
tests/test_nplusone_peers_prosopite.py and tests/test_nplusone_peers_bullet.py,
django-zeal's in tests/test_nplusone_peers_zeal.py, queryspy's and
pytest-queryguard's in tests/test_nplusone_peers_pyguards.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, Table, select
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    subqueryload,
)

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneFinding

NPLUSONE = "jmcarp/nplusone tests/test_sqlalchemy.py"


class Base(DeclarativeBase):
    pass


users_hobbies = Table(
    "npp_users_hobbies",
    Base.metadata,
    Column("user_id", Integer, ForeignKey("npp_user.user_id")),
    Column("hobby_id", Integer, ForeignKey("npp_hobby.id")),
)


class User(Base):
    __tablename__ = "npp_user"
    id: Mapped[int] = mapped_column("user_id", primary_key=True)
    addresses: Mapped[list[Address]] = relationship(back_populates="user")
    hobbies: Mapped[list[Hobby]] = relationship(secondary=users_hobbies, back_populates="users")


class Address(Base):
    __tablename__ = "npp_address"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("npp_user.user_id"))
    user: Mapped[User | None] = relationship(back_populates="addresses")


class Hobby(Base):
    __tablename__ = "npp_hobby"
    id: Mapped[int] = mapped_column(primary_key=True)
    users: Mapped[list[User]] = relationship(secondary=users_hobbies, back_populates="hobbies")


@pytest.fixture(scope="module")
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    # nplusone's `objects` fixture: one user with one address and one hobby
    with Session(pg_engine) as session:
        session.add(User(addresses=[Address()], hobbies=[Hobby()]))
        session.commit()
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


#: The peer reports a lazy load on an object of a multi-row-capable result even
#: when the fixture holds a single parent row; dbopt needs two loads.
ONE_PARENT_ROW = "one-parent-row"


@dataclass(frozen=True)
class Scenario:
    source: str
    test: str
    body: Callable[[Session], object]
    peer_reports: bool
    difference: str | None = None
    allow: tuple[str, ...] = ()


SCENARIOS = [
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one",
        lambda s: s.scalars(select(User)).all()[0].addresses,
        True,
        ONE_PARENT_ROW,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_ignore",
        lambda s: s.scalars(select(User)).all()[0].addresses,
        False,
        allow=("relationship:User.addresses",),  # signals.ignore(lazy_load)
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_subquery",
        lambda s: s.scalars(select(User).options(subqueryload(User.addresses))).all()[0].addresses,
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_joined",
        lambda s: (
            s.scalars(select(User).options(joinedload(User.addresses))).unique().all()[0].addresses
        ),
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_reverse",
        lambda s: s.scalars(select(Address)).all()[0].user,
        True,
        ONE_PARENT_ROW,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_reverse_subquery",
        lambda s: s.scalars(select(Address).options(subqueryload(Address.user))).all()[0].user,
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToOne::test_many_to_one_reverse_joined",
        lambda s: s.scalars(select(Address).options(joinedload(Address.user))).first().user,  # type: ignore[union-attr]
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many",
        lambda s: s.scalars(select(User)).all()[0].hobbies,
        True,
        ONE_PARENT_ROW,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many_subquery",
        lambda s: s.scalars(select(User).options(subqueryload(User.hobbies))).first().hobbies,  # type: ignore[union-attr]
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many_joined",
        lambda s: (
            s.scalars(select(User).options(joinedload(User.hobbies))).unique().first().hobbies
        ),  # type: ignore[union-attr]
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many_reverse",
        lambda s: s.scalars(select(Hobby)).all()[0].users,
        True,
        ONE_PARENT_ROW,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many_reverse_subquery",
        lambda s: s.scalars(select(Hobby).options(subqueryload(Hobby.users))).first().users,  # type: ignore[union-attr]
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestManyToMany::test_many_to_many_reverse_joined",
        lambda s: s.scalars(select(Hobby).options(joinedload(Hobby.users))).unique().first().users,  # type: ignore[union-attr]
        False,
    ),
    Scenario(
        NPLUSONE,
        "test_non_orm_query",
        lambda s: s.execute(select(Address.id)).all(),
        False,
    ),
    Scenario(
        NPLUSONE,
        "TestProfile::test_profile",
        lambda s: s.scalars(select(User)).all()[0].addresses,
        True,
        ONE_PARENT_ROW,
    ),
    Scenario(
        NPLUSONE,
        "TestProfile::test_profile_whitelist",
        lambda s: s.scalars(select(User)).all()[0].addresses,
        False,
        allow=("relationship:User.*",),  # whitelist=[{'model': 'User'}]
    ),
]


def verdict(
    engine: Engine, scenario: Scenario, *, potential: bool = False
) -> list[NPlusOneFinding]:
    found: list[NPlusOneFinding] = []
    detector = NPlusOneDetector(
        action=found.append,
        allow=scenario.allow,
        checks=("write_loops", "unbounded_queries") + (("potential",) if potential else ()),
    )
    with dbopt.instrument(engine, detector), Session(engine) as session, dbopt.scope(scenario.test):
        scenario.body(session)
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s.source}::{s.test}" for s in SCENARIOS])
def test_verdict_agrees_with_the_peer_or_is_a_documented_difference(
    engine: Engine, scenario: Scenario
) -> None:
    reports = bool(verdict(engine, scenario))
    if scenario.difference is None:
        assert reports == scenario.peer_reports
    else:
        assert reports != scenario.peer_reports, f"{scenario.difference} no longer differs"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s.source}::{s.test}" for s in SCENARIOS])
def test_potential_mode_agrees_with_the_peer_on_one_parent_row(
    engine: Engine, scenario: Scenario
) -> None:
    """``checks=["potential"]``: the one-parent-row differences become agreements."""
    found = verdict(engine, scenario, potential=True)
    assert bool(found) == scenario.peer_reports
    if scenario.difference == ONE_PARENT_ROW:
        assert [f.count for f in found] == [1]
        assert found[0].suggestion.startswith("potential N+1")
        assert found[0].loader_option is not None


def test_agreement_table() -> None:
    """The figures docs/nplusone.md gives ("Against the peers")."""
    rows: dict[str, list[int]] = {}
    for scenario in SCENARIOS:
        agree, total = rows.setdefault(scenario.source, [0, 0])
        rows[scenario.source] = [agree + (scenario.difference is None), total + 1]
    assert rows == {NPLUSONE: [11, 16]}
    assert {s.difference for s in SCENARIOS if s.difference} == {ONE_PARENT_ROW}
    # with checks=["potential"], every scenario agrees (the test above)
    assert sum(s.difference == ONE_PARENT_ROW for s in SCENARIOS) == 5
