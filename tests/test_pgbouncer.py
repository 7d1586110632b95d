"""The PgBouncer preset through a real PgBouncer in transaction mode, with psycopg 3.

The test starts PgBouncer itself on a free loopback port (Debian package
``pgbouncer``) in front of the test server, and shows both the preset
working and the failures it prevents.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool
from sqlalchemy import Engine, create_engine, exc, text
from sqlalchemy.engine import make_url

from dbopt import pool
from dbopt.pool.config import quote_ident

QUERY = "SELECT %s::int + 1"


def _pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Bouncer:
    port: int
    database: str
    role: str  # for the failures
    app_role: str  # gets the preset's settings (ALTER ROLE reaches new server sessions only)

    def url(self, user: str | None = None, driver: str = "") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{user or self.role}@127.0.0.1:{self.port}/{self.database}"

    def spread(self, user: str | None = None, n: int = 3) -> None:
        """Make PgBouncer open ``n`` server connections (concurrent transactions need them)."""
        conns = [psycopg.connect(self.url(user)) for _ in range(n)]
        for conn in conns:
            conn.execute("SELECT 1")
        for conn in conns:
            conn.commit()
            conn.close()


@pytest.fixture(scope="module")
def bouncer(pg_url: str) -> Iterator[Bouncer]:
    binary = _pgbouncer_binary()
    if binary is None:
        pytest.skip("pgbouncer is not installed (Debian: apt-get install pgbouncer)")
    server = make_url(pg_url)
    if not server.host or server.host.startswith("/"):
        pytest.skip("the test server is not on TCP; PgBouncer here forwards to host:port")
    role, app_role = (f"dbopt_pgb_{secrets.token_hex(4)}" for _ in range(2))
    admin_dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for name in (role, app_role):
            admin.execute(f"CREATE ROLE {quote_ident(name)} LOGIN")
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="dbopt-pgb-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        (directory / "users.txt").write_text(
            "".join(f'"{name}" ""\n' for name in (server.username, role, app_role))
        )
        (directory / "pgbouncer.ini").write_text(
            f"""[databases]
* = host={server.host} port={server.port or 5432}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
pool_mode = transaction
default_pool_size = 4
server_round_robin = 1
logfile =
pidfile =
"""
        )
        for name in ("users.txt", "pgbouncer.ini"):
            (directory / name).chmod(0o644)
        command = [binary]
        if os.geteuid() == 0:  # PgBouncer refuses to run as root
            user = next((u for u in ("postgres", "nobody") if _user_exists(u)), None)
            if user is None:
                pytest.skip("running as root with no unprivileged user for PgBouncer")
            command += ["-u", user]
        log = (directory / "out.log").open("w")
        process = subprocess.Popen(  # noqa: S603 - our own binary and config
            [*command, str(directory / "pgbouncer.ini")], stdout=log, stderr=log
        )
        try:
            _wait_listening(port, process, directory / "out.log")
            yield Bouncer(port, server.database or "postgres", role, app_role)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            log.close()
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                for name in (role, app_role):
                    admin.execute(f"DROP ROLE IF EXISTS {quote_ident(name)}")


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"pgbouncer exited: {log.read_text()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"pgbouncer did not listen on {port}: {log.read_text()}")


def _repeat(run: object, times: int = 12) -> list[BaseException]:
    """Call ``run(i)`` ``times`` times; return the errors it raised."""
    errors: list[BaseException] = []
    for i in range(times):
        try:
            run(i)  # type: ignore[operator]
        except Exception as error:
            errors.append(error)
    return errors


def _sqlalchemy_workload(engine: Engine, threads: int) -> list[BaseException]:
    """``threads`` x 15 committed transactions running the same statement; the errors met.

    (psycopg forgets its prepared statements on ROLLBACK, so transactions that
    commit, as writes do, are the ones that reach prepare_threshold.)
    """
    errors: list[BaseException] = []

    def work() -> None:
        for i in range(15):
            try:
                with engine.begin() as conn:
                    for j in range(2):
                        conn.execute(text("SELECT CAST(:x AS int) + 1"), {"x": i + j}).scalar()
            except Exception as error:
                errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return errors


def test_without_the_preset_prepared_statements_break(bouncer: Bouncer) -> None:
    bouncer.spread()
    with psycopg.connect(bouncer.url(), autocommit=True) as conn:
        assert conn.prepare_threshold == 5  # psycopg's default
        errors = _repeat(lambda i: conn.execute(QUERY, (i,)).fetchone())
    assert errors, "expected prepared statement errors through transaction pooling"
    assert all(isinstance(e, pg_errors.InvalidSqlStatementName) for e in errors), errors
    assert "does not exist" in str(errors[0])


def test_without_the_preset_startup_options_are_refused(bouncer: Bouncer) -> None:
    web = pool.web(threads=2)  # the direct-connection preset sends options
    url = bouncer.url(driver="psycopg")
    engine = create_engine(url, **web.sqlalchemy(url))
    with pytest.raises(exc.OperationalError, match="unsupported startup parameter: options"):
        engine.connect()
    engine.dispose()


def test_the_preset_works_through_pgbouncer(bouncer: Bouncer, pg_url: str) -> None:
    config = pool.pgbouncer(4, statement_timeout_ms=400)
    admin_dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        for statement in config.alter_role_sql(bouncer.app_role, database=bouncer.database):
            admin.execute(statement)
    bouncer.spread(bouncer.app_role)

    # SQLAlchemy, several threads sharing the pool, the same statement many times
    url = bouncer.url(bouncer.app_role, driver="psycopg")
    default = create_engine(url)
    # one client: PgBouncer (server_round_robin) moves it between server connections
    failures = _sqlalchemy_workload(default, threads=1)
    assert failures, "expected the default engine to fail through transaction pooling"
    assert all(isinstance(e, exc.DBAPIError) for e in failures)
    assert "prepared statement" in str(failures[0])
    engine = create_engine(url, **config.sqlalchemy(url))
    assert _sqlalchemy_workload(engine, threads=1) == []
    assert _sqlalchemy_workload(engine, threads=4) == []
    assert "POOL010" not in {f.code for f in pool.check(engine, pooler="pgbouncer-transaction")}

    # the role's settings arrived without startup options, and act
    with engine.connect() as conn:
        settings: dict[str, str] = dict(
            conn.execute(
                text("SELECT name, setting FROM pg_settings WHERE name = ANY(:n)"),
                {"n": ["statement_timeout", "idle_in_transaction_session_timeout"]},
            ).all()
        )
        assert settings == {
            "statement_timeout": "400",
            "idle_in_transaction_session_timeout": str(config.idle_in_transaction_timeout_ms),
        }
        started = time.perf_counter()
        with pytest.raises(exc.OperationalError) as info:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert isinstance(info.value.orig, pg_errors.QueryCanceled)
        assert time.perf_counter() - started < 2.5
    engine.dispose()

    # psycopg_pool with the same preset, one connection, the failing pattern above
    dsn = bouncer.url(bouncer.app_role)
    with ConnectionPool(dsn, **config.psycopg_pool(), open=True) as p, p.connection() as conn:
        conn.autocommit = True
        assert _repeat(lambda i: conn.execute(QUERY, (i,)).fetchone()) == []

    # and the check sees the default engine's problem
    assert "POOL010" in {f.code for f in pool.check(default, pooler="pgbouncer-transaction")}
    default.dispose()
