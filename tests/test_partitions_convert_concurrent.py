"""Online conversion against TRUNCATE, DML and ALTER TABLE from other sessions, at each phase.

The model is a plain table ``shadow`` that every other session's statement
changes together with ``interactions`` (one statement: a data-modifying CTE,
or ``TRUNCATE interactions, shadow``), so after the conversion, and after the
revert, ``interactions`` must equal ``shadow`` row by row. The ``on_phase``
hook of ``convert()`` says when to act: after a copied batch (``copy``),
between catch-up replay batches (``replay``), just before the swap (``swap``)
and inside the swap transaction once it holds its lock (``locked``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql

from dbopt.partitions import ConversionError, PartitionManager, PartitionSpec
from dbopt.partitions.convert import PHASES
from dbopt.testing import libpq_url
from test_partitions_convert import Writers, relkind, same_rows, setup_tables
from test_partitions_support import connect, make_manager

pytestmark = pytest.mark.postgres
UTC = timezone.utc
NOW = datetime(2024, 6, 1, tzinfo=UTC)
ROWS = 60_000
BATCH = 1_500


@pytest.fixture
def manager(pg_url: str, schema: str) -> PartitionManager:
    return make_manager(pg_url, schema, lock_timeout=0.5, retries=30, backoff=0.05, max_backoff=0.3)


def spec_for(schema: str) -> PartitionSpec:
    return PartitionSpec(f"{schema}.interactions", key="created_at", interval="month", premake=2)


class Truncater:
    """Another session: ``TRUNCATE interactions, shadow`` then 10 single-row inserts into both."""

    def __init__(self, pg_url: str, schema: str, *, restart: bool) -> None:
        self.conn = psycopg.connect(libpq_url(pg_url), autocommit=True)
        self.conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        self.restart = restart
        self.done = threading.Event()
        self.failures: list[BaseException] = []
        self.thread: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.conn.info.backend_pid

    def run(self) -> None:
        try:
            for _ in range(50):  # a deadlock with a writer rolls the TRUNCATE back: again
                try:
                    self.conn.execute(
                        "TRUNCATE interactions, shadow"
                        + (" RESTART IDENTITY" if self.restart else "")
                    )
                    break
                except errors.DeadlockDetected:
                    continue
            else:
                raise AssertionError("TRUNCATE lost 50 deadlocks in a row")
            for i in range(10):
                self.conn.execute(
                    "WITH i AS (INSERT INTO interactions (user_id, created_at, kind, score)"
                    " VALUES (%s, '2024-05-01'::timestamptz + %s * interval '1 hour', 'after', 1)"
                    " RETURNING *) INSERT INTO shadow SELECT * FROM i",
                    (i, i),
                )
        except BaseException as exc:
            self.failures.append(exc)
        finally:
            self.done.set()

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def finish(self) -> None:
        if self.thread is not None:
            self.thread.join(60)
            assert not self.thread.is_alive(), "the TRUNCATE session never finished"
        self.conn.close()
        assert self.failures == []
        assert self.done.is_set()


def at(phase: str, nth: int, action: Callable[[], None]) -> Callable[[str], None]:
    """An ``on_phase`` hook running ``action`` the ``nth`` time ``phase`` comes (1-based)."""
    assert phase in PHASES
    seen = {"n": 0}

    def hook(name: str) -> None:
        assert name in PHASES
        if name == phase:
            seen["n"] += 1
            if seen["n"] == nth:
                action()

    return hook


def wait_until_blocked(pg_url: str, pid: int, timeout: float = 10.0) -> None:
    """Return once backend ``pid`` waits for a lock (it is queued behind the swap)."""
    deadline = time.monotonic() + timeout
    with connect(pg_url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row is not None and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} did not queue for the lock within {timeout}s")


def leftovers(pg_url: str, schema: str) -> list[str]:
    """Anything a conversion leaves behind: aux relations, capture triggers and functions."""
    with connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT 'relation ' || c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname LIKE '%%\\_\\_dbopt\\_%%'"
            " UNION ALL SELECT 'trigger ' || t.tgname FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND t.tgname LIKE 'dbopt%%'"
            " UNION ALL SELECT 'function ' || p.proname FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = %s",
            (schema, schema, schema),
        ).fetchall()
    return sorted(r[0] for r in rows)


def check_equal(pg_url: str, schema: str) -> int:
    count, diff = same_rows(pg_url, schema)
    assert diff == []
    return count


def convert(
    manager: PartitionManager, schema: str, hook: Callable[[str], None], **options: Any
) -> Any:
    options.setdefault("batch_size", BATCH)
    options.setdefault("catch_up", 20)
    return manager.convert(
        f"{schema}.interactions", spec_for(schema), now=NOW, on_phase=hook, **options
    )


def revert_with_truncate(pg_url: str, schema: str, manager: PartitionManager) -> None:
    """TRUNCATE the partitioned table (and the model) after the swap, then revert under writes."""
    with Writers(pg_url, schema) as writers:
        truncater = Truncater(pg_url, schema, restart=False)
        truncater.run()
        truncater.finish()
        reverted = manager.revert(f"{schema}.interactions")
        time.sleep(0.2)
    assert writers.failures == []
    assert reverted.status == "reverted"
    assert relkind(pg_url, schema, "interactions") == "r"
    check_equal(pg_url, schema)
    assert leftovers(pg_url, schema) == []


@pytest.mark.parametrize("seed", range(4))
def test_truncate_during_copy(
    pg_url: str, schema: str, manager: PartitionManager, seed: int
) -> None:
    """The issue's case: TRUNCATE + 10 inserts while the copy runs, with writers going on."""
    rnd = random.Random(seed)
    setup_tables(pg_url, schema, ROWS)
    truncater = Truncater(pg_url, schema, restart=seed % 2 == 1)
    nth = rnd.randrange(2, ROWS // BATCH - 5)
    sync = seed < 2  # wait for it between two batches, or let it race the next ones

    def act() -> None:
        truncater.start()
        if sync:
            assert truncater.done.wait(30)

    with Writers(pg_url, schema) as writers:
        result = convert(manager, schema, at("copy", nth, act))
        time.sleep(0.2)
    truncater.finish()
    assert writers.failures == []
    assert result.status == "swapped"
    assert relkind(pg_url, schema, "interactions") == "p"
    count = check_equal(pg_url, schema)
    assert count < ROWS // 2  # the truncated rows did not come back
    print(f"copy: {result.copied} rows, {result.rows_per_second:,.0f} rows/s")
    revert_with_truncate(pg_url, schema, manager)


@pytest.mark.parametrize("restart", [False, True])
def test_truncate_between_catch_up_batches(
    pg_url: str, schema: str, manager: PartitionManager, restart: bool
) -> None:
    setup_tables(pg_url, schema, ROWS // 3)
    truncater = Truncater(pg_url, schema, restart=restart)
    with Writers(pg_url, schema) as writers:
        result = convert(manager, schema, at("replay", 1, truncater.run), catch_up=5)
        time.sleep(0.2)
    truncater.finish()
    assert writers.failures == []
    assert result.status == "swapped"
    assert result.replayed >= 11  # the marker and the ten inserts at least
    check_equal(pg_url, schema)
    revert_with_truncate(pg_url, schema, manager)


def test_truncate_just_before_the_swap(pg_url: str, schema: str, manager: PartitionManager) -> None:
    """Captured but not yet replayed when the swap starts: the swap's own replay applies it."""
    setup_tables(pg_url, schema, ROWS // 3)
    truncater = Truncater(pg_url, schema, restart=True)
    with Writers(pg_url, schema) as writers:
        result = convert(manager, schema, at("swap", 1, truncater.run))
        time.sleep(0.2)
    truncater.finish()
    assert writers.failures == []
    assert result.status == "swapped"
    assert check_equal(pg_url, schema) >= 10
    revert_with_truncate(pg_url, schema, manager)


def test_truncate_queued_behind_the_swap_lock(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    """A TRUNCATE waiting for the swap's lock runs on the new table, and revert() replays it."""
    setup_tables(pg_url, schema, ROWS // 3)
    truncater = Truncater(pg_url, schema, restart=False)

    def act() -> None:
        truncater.start()
        wait_until_blocked(pg_url, truncater.pid)

    with Writers(pg_url, schema) as writers:
        result = convert(manager, schema, at("locked", 1, act))
        truncater.finish()
        time.sleep(0.2)
    assert writers.failures == []
    assert result.status == "swapped"
    assert relkind(pg_url, schema, "interactions") == "p"
    count = check_equal(pg_url, schema)
    assert count < ROWS // 6
    with Writers(pg_url, schema) as writers:
        reverted = manager.revert(f"{schema}.interactions")
        time.sleep(0.2)
    assert writers.failures == []
    assert reverted.status == "reverted"
    assert check_equal(pg_url, schema) >= 10
    assert leftovers(pg_url, schema) == []


def execute_through(conn: psycopg.Connection[Any], statement: str) -> None:
    """Run ``statement`` until it commits: the writers' row locks can make it a
    deadlock victim, and a hook that raised would be retried by the swap's lock
    policy without the change (the test would then see no change at all)."""
    for _ in range(50):
        try:
            conn.execute(statement)
            return
        except errors.DeadlockDetected:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.rollback()
            time.sleep(0.05)
    raise AssertionError(f"could not run {statement!r}")


def both(statement: str) -> str:
    """``statement`` on the table and its model, in one transaction."""
    return f"BEGIN; {statement.format(t='interactions')}; {statement.format(t='shadow')}; COMMIT"


@pytest.mark.parametrize(
    ("phase", "statement", "message", "writes"),
    [
        ("copy", both("ALTER TABLE {t} ADD COLUMN extra int DEFAULT 7"), "'extra' added", True),
        (
            "replay",
            both("ALTER TABLE {t} ALTER COLUMN kind TYPE varchar(40)"),
            "'kind' changed type from text to character varying(40)",
            True,
        ),
        (
            "swap",
            both("ALTER TABLE {t} ALTER COLUMN score SET DEFAULT 5"),
            "'score' changed its default",
            True,
        ),
        ("swap", "CREATE INDEX interactions_kind ON interactions (kind)", "index", True),
        (
            "copy",
            both("ALTER TABLE {t} RENAME COLUMN kind TO sort"),
            "'sort' added",
            False,
        ),
        ("copy", "ALTER TABLE interactions DROP COLUMN score", "'score' dropped", False),
    ],
)
def test_changes_the_capture_cannot_see_stop_the_conversion(
    pg_url: str,
    schema: str,
    manager: PartitionManager,
    phase: str,
    statement: str,
    message: str,
    writes: bool,
) -> None:
    setup_tables(pg_url, schema, ROWS // 6)
    writers = Writers(pg_url, schema, threads=3 if writes else 0)
    with connect(pg_url) as other:
        other.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        hook = at(phase, 2 if phase == "copy" else 1, lambda: execute_through(other, statement))
        with writers, pytest.raises(ConversionError, match="changed during its conversion") as err:
            convert(manager, schema, hook, batch_size=1000)
    assert message in str(err.value)
    assert writers.failures == []
    assert relkind(pg_url, schema, "interactions") == "r"
    assert leftovers(pg_url, schema) == []  # nothing built is left, the table untouched
    with pytest.raises(ConversionError, match="no conversion"):
        manager.revert(f"{schema}.interactions")
    if writes:  # the model had the same change: every write kept
        check_equal(pg_url, schema)
        again = convert(manager, schema, lambda phase: None)
        assert again.status == "swapped"
        check_equal(pg_url, schema)


@pytest.mark.parametrize("what", ["rename", "drop"])
def test_table_renamed_or_dropped_during_the_copy(
    pg_url: str, schema: str, manager: PartitionManager, what: str
) -> None:
    setup_tables(pg_url, schema, ROWS // 6)
    with connect(pg_url) as conn:
        conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        before = conn.execute("SELECT * FROM interactions ORDER BY id").fetchall()
    statement = (
        "ALTER TABLE interactions RENAME TO moved"
        if what == "rename"
        else "DROP TABLE interactions"
    )
    with connect(pg_url) as other:
        other.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
        hook = at("copy", 3, lambda: other.execute(statement))
        with pytest.raises(ConversionError, match=r"renamed to|was dropped"):
            convert(manager, schema, hook, batch_size=1000)
    assert leftovers(pg_url, schema) == []
    assert relkind(pg_url, schema, "interactions") is None
    if what == "rename":
        with connect(pg_url) as conn:
            conn.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))
            after = conn.execute("SELECT * FROM moved ORDER BY id").fetchall()
        assert after == before


def test_changes_just_before_the_lock_are_replayed_under_it(
    pg_url: str, schema: str, manager: PartitionManager
) -> None:
    """Inserts, updates and deletes made after the last replay outside the lock.

    The swap replays them under its lock with set-based statements in the
    same pipeline as its DDL; every change row is counted, none is lost.
    """
    setup_tables(pg_url, schema, ROWS // 6)
    statements = [
        "WITH i AS (INSERT INTO interactions (user_id, created_at, kind, score)"
        " SELECT g, '2024-05-01'::timestamptz + g * interval '1 hour', 'late', 3"
        " FROM generate_series(1, 40) g RETURNING *) INSERT INTO shadow SELECT * FROM i",
        "WITH u AS (UPDATE interactions SET score = score + 100, created_at = created_at"
        " + interval '1 month' WHERE id % 997 = 0 RETURNING *)"
        " UPDATE shadow s SET score = u.score, created_at = u.created_at FROM u WHERE s.id = u.id",
        "WITH d AS (DELETE FROM interactions WHERE id % 991 = 1 RETURNING id)"
        " DELETE FROM shadow WHERE id IN (SELECT id FROM d)",
    ]
    counts: list[int] = []
    with connect(pg_url) as other:
        other.execute(sql.SQL("SET search_path = {}").format(sql.Identifier(schema)))

        def act() -> None:
            for statement in statements:
                counts.append(other.execute(statement).rowcount)

        result = convert(manager, schema, at("swap", 1, act))
    inserted, updated, deleted = counts
    assert inserted == 40
    assert updated > 0
    assert deleted > 0
    assert result.status == "swapped"
    assert result.replayed == inserted + 2 * updated + deleted  # an UPDATE logs old and new keys
    assert relkind(pg_url, schema, "interactions") == "p"
    count = check_equal(pg_url, schema)
    assert count == ROWS // 6 + inserted - deleted
    reverted = manager.revert(f"{schema}.interactions")
    assert reverted.status == "reverted"
    assert relkind(pg_url, schema, "interactions") == "r"
    check_equal(pg_url, schema)
    assert leftovers(pg_url, schema) == []
