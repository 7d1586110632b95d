"""The partitioned-index helper: ON ONLY, each partition CONCURRENTLY, then ATTACH."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import psycopg
import pytest
from psycopg import sql

from dbopt.partitions import PartitionManager, PartitionSpec
from dbopt.testing import libpq_url
from test_partitions_support import EVENTS_COLUMNS, connect

pytestmark = pytest.mark.postgres
UTC = timezone.utc


def attached_indexes(pg_url: str, schema: str, index: str) -> dict[str, tuple[str, bool]]:
    """Partition → (its index attached under ``index``, valid?)."""
    with connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT t.relname, c.relname, x.indisvalid FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_index x ON x.indexrelid = c.oid"
            " JOIN pg_class t ON t.oid = x.indrelid WHERE i.inhparent = %s::regclass",
            (f'"{schema}"."{index}"',),
        ).fetchall()
    return {r[0]: (r[1], bool(r[2])) for r in rows}


def test_index_without_a_long_lock(pg_url: str, schema: str, manager: PartitionManager) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="month", premake=2)
    manager.create(spec, columns=EVENTS_COLUMNS, now=datetime(2024, 1, 10, tzinfo=UTC))
    with connect(pg_url) as conn:
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (created_at, payload) SELECT '2024-01-01'::timestamptz"
                " + (g % 80) * interval '1 day', 'p' || (g % 97) FROM generate_series(1, 20000) g"
            ).format(sql.Identifier(schema, "ev"))
        )
        # A failed earlier build left an INVALID index where the helper will want one.
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                sql.SQL(
                    "CREATE UNIQUE INDEX CONCURRENTLY ev_p202401_payload_idx ON {} (payload)"
                ).format(sql.Identifier(schema, "ev_p202401"))
            )
    stop = threading.Event()
    written = [0]
    failures: list[BaseException] = []

    def writer() -> None:
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {} (created_at, payload) VALUES ('2024-02-10', 'w')"
                        ).format(sql.Identifier(schema, "ev"))
                    )
                    written[0] += 1
                except psycopg.Error as exc:
                    failures.append(exc)
                    return

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = manager.create_index(
            f"{schema}.ev", "ev_payload_idx", ["payload"], where="payload <> ''"
        )
    finally:
        stop.set()
        thread.join(10)
    assert failures == []
    assert written[0] > 0
    assert result.valid, result.describe()
    assert result.rebuilt_invalid == (f"{schema}.ev_p202401_payload_idx",)
    assert (
        sorted(result.built)
        == sorted(result.attached)
        == [
            f"{schema}.ev_default_payload_idx",
            f"{schema}.ev_p202401_payload_idx",
            f"{schema}.ev_p202402_payload_idx",
            f"{schema}.ev_p202403_payload_idx",
        ]
    )
    indexes = attached_indexes(pg_url, schema, "ev_payload_idx")
    assert set(indexes) == {"ev_default", "ev_p202401", "ev_p202402", "ev_p202403"}
    assert all(valid for _, valid in indexes.values())
    with connect(pg_url) as conn:
        row = conn.execute(
            "SELECT pg_get_indexdef(%s::regclass)", (f'"{schema}"."ev_p202402_payload_idx"',)
        ).fetchone()
    assert row is not None
    assert "WHERE (payload <> ''::text)" in row[0]

    again = manager.create_index(
        f"{schema}.ev", "ev_payload_idx", ["payload"], where="payload <> ''"
    )
    assert again.valid
    assert again.built == ()
    assert len(again.present) == 4

    # Partitions made later get the index through ATTACH PARTITION.
    manager.maintain(spec, now=datetime(2024, 3, 5, tzinfo=UTC))
    assert "ev_p202405" in attached_indexes(pg_url, schema, "ev_payload_idx")
