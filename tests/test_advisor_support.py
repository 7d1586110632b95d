"""Helpers shared by the index advisor's tests (this module holds no tests)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg


def wait_for_load(conn: psycopg.Connection[Any]) -> None:
    """Wait until every loaded table's inserts show in ``pg_stat_user_tables``.

    A session's counters reach the statistics when it ends, a moment after the
    client closed it.
    """
    for _ in range(200):
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid "
            "WHERE c.relkind = 'r' AND c.reltuples > 0 AND s.n_tup_ins = 0"
        ).fetchone()
        if row == (0,):
            break
        time.sleep(0.05)


def forget_load(conn: psycopg.Connection[Any], keep: Sequence[str] = ()) -> None:
    """Reset the write counters of the loaded tables (but ``keep``) once the load is counted.

    Resetting before the load is counted (see :func:`wait_for_load`) would leave it counted.
    """
    wait_for_load(conn)
    conn.execute(
        "SELECT pg_stat_reset_single_table_counters(relid) FROM pg_stat_user_tables "
        "WHERE relname <> ALL(%s)",
        (list(keep),),
    )
