"""``PartitionManager.session()``: one connection for many calls, replaced when it breaks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dbopt.errors import DboptError
from dbopt.partitions import PartitionSpec
from test_partitions_support import EVENTS_COLUMNS, connect, make_manager

pytestmark = pytest.mark.postgres


def test_calls_in_a_session_share_one_connection(pg_url: str, schema: str) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    with manager.connect() as conn:
        outside = conn.info.backend_pid
    with manager.session():
        with manager.connect() as conn:
            first = conn.info.backend_pid
        assert manager.maintain(spec).ok
        assert len(manager.maintain(replace(spec, premake=2)).done) == 1
        with manager.session(), manager.connect() as conn:  # nested: the same one
            assert conn.info.backend_pid == first
            assert not conn.closed
        with manager.connect() as conn:
            assert conn.info.backend_pid == first
    assert first != outside
    assert conn.closed  # the session's end closed it
    assert manager.plan(replace(spec, premake=2)).converged


def test_a_broken_session_connection_is_replaced(pg_url: str, schema: str) -> None:
    spec = PartitionSpec(f"{schema}.ev", key="created_at", interval="day", premake=1)
    manager = make_manager(pg_url, schema)
    manager.create(spec, columns=EVENTS_COLUMNS)
    with manager.session():
        with manager.connect() as conn:
            pid = conn.info.backend_pid
        with connect(pg_url) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(DboptError):
            manager.maintain(spec)  # the call that finds it dead fails...
        assert manager.maintain(spec).ok  # ...the next one runs on a new connection
        with manager.connect() as conn:
            assert conn.info.backend_pid != pid
