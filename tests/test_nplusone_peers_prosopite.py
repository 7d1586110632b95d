"""prosopite's published tests, ported to SQLAlchemy 2 on PostgreSQL, and dbopt's verdicts.

Source: charkost/prosopite (commit 6266a71) ``test/test_queries.rb`` and
``test/test_local_raise.rb``; models and factories from ``test/test_helper.rb``:
``Chair has_many :legs`` (and ``has_many :feet, class_name: 'Leg'``),
``Leg belongs_to :chair``, ``ArmChair < Chair``, ``validates_uniqueness_of
:name``. ``test/test_mysql_fingerprint.rb`` tests prosopite's MySQL
fingerprint function, not N+1 detection, and is not ported.

How prosopite's API maps to dbopt's (docs/nplusone.md, "Against the peers"):

* ``Prosopite.scan`` ... ``Prosopite.finish`` (``raise = true``) is a
  ``dbopt.scope`` under ``NPlusOneDetector(action="raise")``; the block form
  is the ``with`` block; ``Prosopite.enabled = false`` is a detector that is
  not attached.
* ``allow_stack_paths`` (a string or regex over the frames) is a ``path:`` or
  ``function:`` allowlist rule; ``ignore_queries`` (a regex or the exact SQL)
  is a ``sql:`` glob; ``min_n_queries`` is ``threshold``.
* ``Prosopite.pause`` / ``resume`` (statements in between are not scanned)
  is an allowlist rule naming the function that runs them (dbopt has no
  pause switch); ``ignore_pauses = true`` is the detector without that rule.
* prosopite's "same call stack" rule (a group is the whole ``caller_locations``
  of a SELECT) is dbopt's call-site key (the innermost three application
  frames), with one more condition: different values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, ForeignKey, String, literal, select
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    make_transient_to_detached,
    mapped_column,
    object_session,
    relationship,
    selectinload,
    validates,
)

import dbopt
from dbopt.core.nplusone import NPlusOneDetector
from dbopt.core.nplusone_findings import NPlusOneError
from nplusone_peers_ar_support import (
    FRAMEWORK_QUERY,
    Scenario,
    check,
    table,
    verdict,
)

QUERIES = "charkost/prosopite test/test_queries.rb"
LOCAL_RAISE = "charkost/prosopite test/test_local_raise.rb"


class Base(DeclarativeBase):
    pass


class Chair(Base):
    __tablename__ = "npr_chairs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String)
    legs: Mapped[list[Leg]] = relationship(back_populates="chair", order_by="Leg.id")
    feet: Mapped[list[Leg]] = relationship(order_by="Leg.id", viewonly=True)

    @validates("name")
    def _unique_name(self, key: str, value: str) -> str:
        # validates_uniqueness_of :name, as ActiveRecord runs it on update:
        # SELECT 1 AS one FROM chairs WHERE name = ? AND id != ? LIMIT 1
        session = object_session(self)
        if session is not None and self.id is not None:
            taken = session.scalar(
                select(literal(1))
                .select_from(Chair)
                .where(Chair.name == value, Chair.id != self.id)
                .limit(1)
            )
            if taken:
                raise ValueError(f"name {value!r} has already been taken")
        return value


class ArmChair(Chair):
    """``class ArmChair < Chair`` (no type column: single table, no discriminator)."""


class Leg(Base):
    __tablename__ = "npr_legs"
    id: Mapped[int] = mapped_column(primary_key=True)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("npr_chairs.id"))
    chair: Mapped[Chair | None] = relationship(back_populates="legs")


@pytest.fixture(scope="module")
def engine(pg_engine: Engine) -> Iterator[Engine]:
    Base.metadata.drop_all(pg_engine)
    Base.metadata.create_all(pg_engine)
    yield pg_engine
    Base.metadata.drop_all(pg_engine)


# FactoryBot: create_list(:chair, n) (names "name1", ...), each with create_list(:leg, 4)


def chairs_with_legs(chairs: int, legs: int = 4) -> Callable[[Session], None]:
    def seed(s: Session) -> None:
        s.add_all(
            Chair(name=f"name{i}", legs=[Leg() for _ in range(legs)]) for i in range(1, chairs + 1)
        )

    return seed


def legs_each_with_a_chair(s: Session) -> None:
    """``create_list(:leg, 10)``: the leg factory creates a chair for each leg."""
    s.add_all(Leg(chair=Chair(name=f"name{i}")) for i in range(1, 11))


def last(s: Session, n: int) -> list[Chair]:
    """``Chair.last(n)``: the last n by id, in ascending order."""
    return list(reversed(s.scalars(select(Chair).order_by(Chair.id.desc()).limit(n)).all()))


def legs_first(s: Session, c: Chair) -> Leg | None:
    """``c.legs.first`` on an unloaded association: ``... ORDER BY id LIMIT 1``."""
    return s.scalars(select(Leg).where(Leg.chair_id == c.id).order_by(Leg.id).limit(1)).first()


def legs_last(s: Session, c: Chair) -> Leg | None:
    """``c.legs.last``: ``... ORDER BY id DESC LIMIT 1``."""
    return s.scalars(
        select(Leg).where(Leg.chair_id == c.id).order_by(Leg.id.desc()).limit(1)
    ).first()


def legs_pluck_id(s: Session, c: Chair) -> list[int]:
    """``c.legs.pluck(:id)``."""
    return list(s.scalars(select(Leg.id).where(Leg.chair_id == c.id)))


def times(n: int, block: Callable[[], Any]) -> None:
    """Ruby's ``n.times { ... }``: the block is a frame of its own."""
    for _ in range(n):
        block()


def last_in_loop(s: Session) -> None:
    for c in last(s, 20):
        legs_last(s, c)


def first_in_loop(s: Session) -> None:
    for c in last(s, 20):
        legs_first(s, c)


def pluck_in_loop(s: Session) -> None:
    for c in last(s, 20):
        legs_pluck_id(s, c)


def separate_queries_in_and_out_of_block(s: Session) -> None:
    # Chair.last.legs.pluck(:id); 1.times { Chair.last.legs.pluck };
    legs_pluck_id(s, last(s, 1)[0])
    times(1, lambda: list(s.scalars(select(Leg).where(Leg.chair_id == last(s, 1)[0].id))))


def class_change(s: Session) -> None:
    # Chair.last(20).map { |c| c.becomes(ArmChair) }.each { |ac| ac.legs.map(&:id) }
    arm_chairs = []
    for c in last(s, 20):
        s.expunge(c)
        ac = ArmChair(id=c.id)
        make_transient_to_detached(ac)
        s.add(ac)
        arm_chairs.append(ac)
    for ac in arm_chairs:
        [leg.id for leg in ac.legs]


def assoc_in_loop(s: Session) -> None:
    legs = list(reversed(s.scalars(select(Leg).order_by(Leg.id.desc()).limit(10)).all()))
    for leg in legs:
        _ = leg.chair


def uniqueness_validations(s: Session) -> None:
    for c in last(s, 10):
        c.name = f"{c.name} + 1"  # c.update(name: ...): validation, then UPDATE
        s.flush()


def preloading_multiple_assocs_with_same_class(s: Session) -> None:
    # Chair.includes(:legs, :feet).last(20)
    s.scalars(
        select(Chair)
        .options(selectinload(Chair.legs), selectinload(Chair.feet))
        .order_by(Chair.id.desc())
        .limit(20)
    ).all()


def preloader_loop(s: Session) -> None:
    # Preloader.new(records: [chair], associations: [:legs]).call; chair.legs
    for chair in last(s, 20):
        s.refresh(chair, ["legs"])
        _ = chair.legs


def paused(block: Callable[[Session], None]) -> Callable[[Session], None]:
    """``Prosopite.pause { ... }``: the statements run in ``paused_block``."""

    def paused_block(s: Session) -> None:
        block(s)

    return paused_block


def scan_then(*steps: Callable[[Session], None]) -> Callable[[Session], None]:
    def body(s: Session) -> None:
        for step in steps:
            step(s)

    return body


def nothing(s: Session) -> None:
    pass


def raise_and_rescue(s: Session) -> None:
    # Prosopite.pause { raise ArgumentError } rescued inside the scan
    with contextlib.suppress(ArgumentError):
        paused(lambda _: (_ for _ in ()).throw(ArgumentError))(s)


class ArgumentError(Exception):
    pass


def allow_stack_paths_with_regex(s: Session) -> None:
    for c in last(s, 20):
        legs_first(s, c)


def sent(stmt: Any) -> str:
    """The exact text SQLAlchemy sends for ``stmt`` through psycopg (casts and all)."""
    return str(stmt.compile(dialect=psycopg.dialect()))


#: prosopite's ignore_queries strings: the exact SQL its ORM sends for the loop's
#: query (``legs.last``), and for another one (``Chair.last``)
LEGS_LAST_SQL = sent(select(Leg).where(Leg.chair_id == 1).order_by(Leg.id.desc()).limit(1))
CHAIRS_LAST_SQL = sent(select(Chair).order_by(Chair.id.desc()).limit(1))
PAUSE = "function:paused_block"

SCENARIOS = [
    Scenario(QUERIES, "test_first_in_has_many_loop", first_in_loop, True, chairs_with_legs(20)),
    Scenario(QUERIES, "test_last_in_has_many_loop", last_in_loop, True, chairs_with_legs(20)),
    Scenario(QUERIES, "test_pluck_in_has_many_loop", pluck_in_loop, True, chairs_with_legs(20)),
    Scenario(
        QUERIES,
        "test_separate_queries_in_and_out_of_block",
        separate_queries_in_and_out_of_block,
        False,
        chairs_with_legs(20),
        # Chair.last runs twice with the same values: a repeated query, not an N+1
        also=frozenset({"repeated_query"}),
    ),
    Scenario(QUERIES, "test_class_change", class_change, True, chairs_with_legs(20)),
    Scenario(
        QUERIES,
        "test_assoc_in_loop",
        assoc_in_loop,
        True,
        legs_each_with_a_chair,
        relationships=frozenset({"Leg.chair"}),
    ),
    Scenario(
        QUERIES,
        "test_uniqueness_validations",
        uniqueness_validations,
        False,
        chairs_with_legs(10, 0),
        FRAMEWORK_QUERY,
    ),
    Scenario(
        QUERIES,
        "test_preloading_multiple_assocs_with_same_class",
        preloading_multiple_assocs_with_same_class,
        False,
        chairs_with_legs(20),
    ),
    Scenario(QUERIES, "test_preloader_loop", preloader_loop, True, chairs_with_legs(20)),
    Scenario(QUERIES, "test_scan_with_block", first_in_loop, True, chairs_with_legs(20)),
    # nested scans: the loop runs in the inner dbopt.scope (see the test below)
    Scenario(QUERIES, "test_nested_scan_with_block", first_in_loop, True, chairs_with_legs(20)),
    Scenario(
        QUERIES,
        "test_scan_with_block_when_not_enabled",
        last_in_loop,
        False,
        chairs_with_legs(20),
        instrumented=False,
    ),
    Scenario(
        QUERIES,
        "test_pause_with_no_error_after_resume",
        scan_then(paused(last_in_loop)),
        False,
        chairs_with_legs(20),
        allow=(PAUSE,),
    ),
    Scenario(
        QUERIES,
        "test_pause_with_ignore_pauses",
        scan_then(paused(last_in_loop)),
        True,
        chairs_with_legs(20),
    ),
    Scenario(
        QUERIES,
        "test_pause_with_error_after_resume",
        scan_then(paused(nothing), last_in_loop),
        True,
        chairs_with_legs(20),
        allow=(PAUSE,),
    ),
    Scenario(
        QUERIES,
        "test_pause_and_do_not_resume",
        scan_then(paused(last_in_loop)),
        False,
        chairs_with_legs(20),
        allow=(PAUSE,),
    ),
    Scenario(
        QUERIES,
        "test_pause_with_a_block",
        scan_then(paused(last_in_loop)),
        False,
        chairs_with_legs(20),
        allow=(PAUSE,),
    ),
    Scenario(
        QUERIES,
        "test_nested_pause_blocks",
        scan_then(paused(scan_then(paused(nothing), last_in_loop))),
        False,
        chairs_with_legs(10),
        allow=(PAUSE,),
    ),
    Scenario(
        QUERIES,
        "test_pause_with_a_block_raising_error",
        raise_and_rescue,
        False,
        allow=(PAUSE,),
    ),
    Scenario(QUERIES, "test_scan_with_block_raising_error", nothing, False),
    Scenario(QUERIES, "test_scan_with_block_returns_result", nothing, False),
    Scenario(
        QUERIES,
        "test_allow_stack_paths",
        first_in_loop,
        False,
        chairs_with_legs(20),
        allow=("path:tests/test_nplusone_peers_prosopite.py",),
    ),
    Scenario(
        QUERIES,
        "test_allow_stack_paths_with_regex",
        allow_stack_paths_with_regex,
        False,
        chairs_with_legs(20),
        allow=(
            dbopt.NPlusOneAllow(
                path="*test_nplusone_peers_prosopite.py", function="allow_stack_paths_with_regex"
            ),
        ),
    ),
    Scenario(
        QUERIES,
        "test_allow_stack_paths_does_not_match_query_source",
        first_in_loop,
        True,
        chairs_with_legs(20),
        allow=("path:some_random_path.py",),
    ),
    Scenario(
        QUERIES,
        "test_ignore_queries",
        last_in_loop,
        False,
        chairs_with_legs(20),
        allow=("sql:*legs*",),
    ),
    Scenario(
        QUERIES,
        "test_ignore_queries_with_exact_match",
        last_in_loop,
        False,
        chairs_with_legs(20),
        allow=(f"sql:{LEGS_LAST_SQL}",),
    ),
    Scenario(
        QUERIES,
        "test_ignore_queries_mismatch",
        last_in_loop,
        True,
        chairs_with_legs(20),
        allow=("sql:*arms*",),
    ),
    Scenario(
        QUERIES,
        "test_ignore_queries_with_incorrect_query_match",
        last_in_loop,
        True,
        chairs_with_legs(20),
        allow=(f"sql:{CHAIRS_LAST_SQL}",),
    ),
    Scenario(
        QUERIES,
        "test_min_n_queries",
        last_in_loop,
        False,
        chairs_with_legs(4),
        threshold=5,
    ),
    Scenario(
        LOCAL_RAISE,
        "test_local_raise_raises_even_when_config_is_false",
        last_in_loop,
        True,
        chairs_with_legs(20),
    ),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.test for s in SCENARIOS])
def test_verdict_agrees_with_prosopite_or_is_a_documented_difference(
    engine: Engine, scenario: Scenario
) -> None:
    check(verdict(engine, Base.metadata, scenario), scenario)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.test for s in SCENARIOS])
def test_potential_mode_moves_no_prosopite_verdict(engine: Engine, scenario: Scenario) -> None:
    """prosopite's fixtures loop over 4 to 20 rows: ``checks=["potential"]`` changes nothing."""
    found = verdict(engine, Base.metadata, scenario, potential=True)
    check(found, scenario)


def test_uniqueness_validation_is_an_n_plus_one_of_the_validator(engine: Engine) -> None:
    """The one difference: the per-row uniqueness SELECT, found at the validator's line."""
    scenario = next(s for s in SCENARIOS if s.difference == FRAMEWORK_QUERY)
    [finding] = verdict(engine, Base.metadata, scenario)
    assert finding.count == 10
    assert finding.callsite is not None
    assert finding.callsite.function == "_unique_name"
    assert "npr_chairs.name" in finding.sql


def test_scan_and_finish_raise_at_the_end_of_the_scope(engine: Engine) -> None:
    """``Prosopite.raise = true``; scan/finish and the block form: NPlusOneError at scope end."""
    scenario = SCENARIOS[0]
    verdict(engine, Base.metadata, Scenario(QUERIES, "seed", lambda s: None, False, scenario.seed))
    detector = NPlusOneDetector(action="raise")
    with dbopt.instrument(engine, detector), Session(engine) as session:
        with pytest.raises(NPlusOneError), dbopt.scope("scan"):
            first_in_loop(session)
        # nested scans: the inner scope is a unit of work of its own and raises
        with pytest.raises(NPlusOneError), dbopt.scope("outer"), dbopt.scope("inner"):
            first_in_loop(session)

        # scan { raise ArgumentError }: the application's error propagates
        with pytest.raises(ArgumentError), dbopt.scope("scan"):
            raise ArgumentError

        # scan { :result_of_block }: the result comes back
        @dbopt.scope("scan")
        def block() -> str:
            return "result_of_block"

        assert block() == "result_of_block"
        assert dbopt.current_scope() is None


def test_agreement_table() -> None:
    """The figures docs/nplusone.md gives ("Against the peers")."""
    assert table(SCENARIOS) == {QUERIES: [28, 29], LOCAL_RAISE: [1, 1]}
    assert [s.test for s in SCENARIOS if s.difference] == ["test_uniqueness_validations"]
