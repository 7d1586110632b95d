"""pool.ping (was health_check): up against the real server, down in time when it is not."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import create_async_engine

from dbopt import ConfigurationError
from dbopt.pool import PingResult, health_check, health_check_async, ping, ping_async
from dbopt.testing import libpq_url

SLACK = 0.5  # thread scheduling on a loaded CI machine


class SilentServer:
    """A loopback socket that accepts connections and never says a word."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()
    # probes stuck on the silent server now fail and end; wait for them
    for thread in threading.enumerate():
        if thread.name == "dbopt-health":
            thread.join(timeout=10)


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_up_against_the_real_server(pg_engine: Engine) -> None:
    result = ping(pg_engine, timeout=5.0)
    assert result.status == "up"
    assert result.error is None
    assert 0 < result.latency_ms < 5000
    assert result.pool["kind"] == "QueuePool"
    assert result.pool["checked_out"] == 0
    json.dumps(result.to_dict())


def test_down_fast_when_nothing_listens(free_port: int) -> None:
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{free_port}/x")
    started = time.perf_counter()
    result = ping(engine, timeout=2.0)
    elapsed = time.perf_counter() - started
    engine.dispose()
    assert result.status == "down"
    assert "refused" in result.error.lower()
    assert elapsed < 2.0 + SLACK


def test_down_in_time_when_the_server_never_answers(silent: SilentServer) -> None:
    # no connect_timeout: without the deadline this connect would wait forever
    engine = create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/x")
    for _ in range(3):
        started = time.perf_counter()
        result = ping(engine, timeout=0.5)
        elapsed = time.perf_counter() - started
        assert result.status == "down"
        assert "no answer within 0.5 s" in result.error
        assert 0.5 <= elapsed < 0.5 + SLACK
    # the later calls waited for the stuck probe instead of opening more connections
    assert len(silent.accepted) == 1
    engine.dispose()


def test_an_exhausted_pool_is_not_ready(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0, pool_timeout=30)
    try:
        with engine.connect():
            started = time.perf_counter()
            result = ping(engine, timeout=0.5)
            assert time.perf_counter() - started < 0.5 + SLACK
            assert result.status == "down"
            assert result.pool["checked_out"] == 1
        # once the connection is back the stuck probe completes and the next is up
        for _ in range(20):
            if ping(engine, timeout=2.0).status == "up":
                break
        else:
            pytest.fail("the pool never became ready again")
    finally:
        engine.dispose()


def test_psycopg_pool(pg_url: str, silent: SilentServer) -> None:
    with ConnectionPool(libpq_url(pg_url), min_size=1, max_size=2, open=True) as good:
        result = ping(good, timeout=5.0)
        assert result.status == "up"
        assert result.pool["capacity"] == 2
    with ConnectionPool(
        f"postgresql://postgres@127.0.0.1:{silent.port}/x", min_size=0, max_size=1, open=True
    ) as bad:
        started = time.perf_counter()
        result = ping(bad, timeout=0.5)
        assert time.perf_counter() - started < 0.5 + SLACK
        assert result.status == "down"
        bad.close(timeout=0)


def test_async_engine(pg_url: str, silent: SilentServer) -> None:
    async def run() -> tuple[PingResult, PingResult, float]:
        good = create_async_engine(pg_url)
        bad = create_async_engine(f"postgresql+psycopg://postgres@127.0.0.1:{silent.port}/x")
        try:
            up = await ping_async(good, timeout=5.0)
            started = time.perf_counter()
            down = await ping_async(bad, timeout=0.5)
            return up, down, time.perf_counter() - started
        finally:
            await good.dispose()
            await bad.dispose()

    up, down, elapsed = asyncio.run(run())
    assert up.status == "up"
    assert down.status == "down"
    assert elapsed < 0.5 + SLACK


def test_async_psycopg_pool(pg_url: str) -> None:
    async def run() -> PingResult:
        async with AsyncConnectionPool(libpq_url(pg_url), min_size=1, open=False) as p:
            return await ping_async(p, timeout=5.0)

    assert asyncio.run(run()).status == "up"


def test_bad_arguments(pg_url: str) -> None:
    engine = create_async_engine(pg_url)
    with pytest.raises(ConfigurationError, match="ping_async"):
        ping(engine)
    with pytest.raises(ConfigurationError):
        ping(create_engine("sqlite://"), timeout=0)


def test_the_old_names_warn_and_return_the_old_dict(pg_engine: Engine, pg_url: str) -> None:
    with pytest.warns(DeprecationWarning, match="ping"):
        old = health_check(pg_engine, timeout=5.0)
    assert isinstance(old, dict)
    assert old["status"] == "up"
    assert set(old) == {"status", "latency_ms", "error", "timeout_s", "checked_at", "pool"}

    async def run() -> dict[str, object]:
        good = create_async_engine(pg_url)
        try:
            with pytest.warns(DeprecationWarning, match="ping_async"):
                return await health_check_async(good, timeout=5.0)
        finally:
            await good.dispose()

    assert asyncio.run(run())["status"] == "up"


def test_indexing_a_ping_result_warns(pg_engine: Engine) -> None:
    result = ping(pg_engine, timeout=5.0)
    assert result.up
    with pytest.warns(DeprecationWarning, match="attributes"):
        assert result["status"] == "up"
    with pytest.warns(DeprecationWarning, match="attribute"):
        assert result.get("error") is None
    with pytest.warns(DeprecationWarning, match="attribute"):
        assert result.get("missing", 7) == 7
    assert result.to_dict()["checked_at"].endswith("+00:00")
