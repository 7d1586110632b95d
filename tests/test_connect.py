"""One connection function and one driver-error mapping, against a real server.

Every failure here is produced by the PostgreSQL server (or libpq) itself:
an unknown or NOLOGIN role, a missing database, a closed port, a role without
a privilege, a statement or lock timeout, an extension that is not installed,
a terminated backend. Each must become its typed DboptError and, through the
CLI's table, its documented exit code.
"""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url

import dbopt
from dbopt.cli import ExitCode, main
from dbopt.cli._errors import classify, exit_code
from dbopt.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotFoundError,
    DboptError,
    MissingExtensionError,
    PermissionDeniedError,
    QueryCanceledError,
    ServerUnavailableError,
    UnsupportedVersionError,
)
from dbopt.postgres.connect import (
    connect,
    map_driver_errors,
    read_only_connection,
    require_server_version,
    translate,
)
from dbopt.testing import libpq_url

SRC = Path(__file__).resolve().parents[1] / "src" / "dbopt"


def _url(pg_url: str, **parts: str | None) -> str:
    return make_url(pg_url).set(**parts).render_as_string(hide_password=False)  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def roles(pg_url: str) -> Iterator[dict[str, str]]:
    """A NOLOGIN role and a LOGIN role without any privilege on ``secret``; dropped after."""
    suffix = secrets.token_hex(3)
    names = {"nologin": f"dbopt_nologin_{suffix}", "reader": f"dbopt_reader_{suffix}"}
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(names["nologin"])))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(names["reader"])))
        conn.execute("CREATE TABLE IF NOT EXISTS connect_secret (id int)")
        conn.execute("REVOKE ALL ON connect_secret FROM PUBLIC")
    try:
        yield names
    finally:
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS connect_secret")
            for name in names.values():
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


# -- connect() -------------------------------------------------------------------------


def test_connect_sets_name_timeouts_and_read_only(pg_url: str) -> None:
    with connect(pg_url, "probe", statement_timeout_ms=1234, lock_timeout_ms=567) as conn:
        row = conn.execute(
            "SELECT current_setting('application_name'), current_setting('statement_timeout'),"
            " current_setting('lock_timeout'), current_setting('default_transaction_read_only')"
        ).fetchone()
        assert row == ("dbopt-probe", "1234ms", "567ms", "on")
        assert conn.prepare_threshold is None
        assert conn.autocommit
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE connect_must_not_exist (id int)")


def test_connect_writable_without_timeouts_keeps_server_settings(pg_url: str) -> None:
    with psycopg.connect(libpq_url(pg_url)) as plain:
        server = plain.execute("SELECT current_setting('statement_timeout')").fetchone()
    with connect(
        pg_url,
        "probe",
        read_only=False,
        autocommit=False,
        statement_timeout_ms=None,
        lock_timeout_ms=None,
        settings={"work_mem": "5MB"},
    ) as conn:
        row = conn.execute(
            "SELECT current_setting('statement_timeout'),"
            " current_setting('default_transaction_read_only'), current_setting('work_mem')"
        ).fetchone()
        assert row == (server[0] if server else None, "off", "5MB")
        assert not conn.autocommit
        conn.execute("CREATE TEMP TABLE connect_scratch (id int)")  # writable
        conn.rollback()


def test_read_only_connection_rows_are_dicts(pg_url: str) -> None:
    with read_only_connection(pg_url, tool="probe") as conn:
        row = conn.execute("SELECT 1 AS one, current_setting('application_name') AS app").fetchone()
    assert row == {"one": 1, "app": "dbopt-probe"}
    assert conn.closed


def test_negative_timeouts_are_a_configuration_error(pg_url: str) -> None:
    with pytest.raises(ConfigurationError, match="probe: statement_timeout_ms"):
        connect(pg_url, "probe", statement_timeout_ms=-1)


def test_psycopg_connect_is_called_only_in_the_shared_layer() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"psycopg\.(Async)?Connection\.connect\(|psycopg\.connect\(", line)
    ]
    assert [where.split(":")[0] for where in offenders] == ["postgres/connect.py"]


# -- failures while connecting (libpq gives no SQLSTATE; connect() knows the context) ----


def test_unknown_role_is_an_authentication_error(pg_url: str) -> None:
    role = f"dbopt_no_such_role_{secrets.token_hex(3)}"
    with pytest.raises(AuthenticationError) as info:
        connect(_url(pg_url, username=role, password=None), "probe")
    assert f'role "{role}" does not exist' in str(info.value)
    assert str(info.value).startswith("dbopt-probe cannot connect to ")
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert exit_code(info.value) == ExitCode.AUTH


def test_nologin_role_is_an_authentication_error(pg_url: str, roles: dict[str, str]) -> None:
    url = _url(pg_url, username=roles["nologin"], password=None)
    with pytest.raises(AuthenticationError, match="not permitted to log in"):
        connect(url, "probe")
    assert main(["lint", "--dsn", url]) == ExitCode.AUTH == 5


def test_missing_database(pg_url: str) -> None:
    url = _url(pg_url, database=f"dbopt_no_such_db_{secrets.token_hex(3)}")
    with pytest.raises(DatabaseNotFoundError, match="does not exist") as info:
        connect(url, "probe")
    assert exit_code(info.value) == ExitCode.INPUT
    assert main(["health", "--dsn", url]) == ExitCode.INPUT == 3


def test_closed_port_is_server_unavailable(pg_url: str) -> None:
    port = _closed_port()
    url = _url(pg_url, host="127.0.0.1", port=str(port))  # type: ignore[arg-type]
    with pytest.raises(ServerUnavailableError) as info:
        connect(url, "probe", connect_timeout_s=2)
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "refused" in str(info.value).lower()
    assert main(["lint", "--dsn", url]) == ExitCode.UNREACHABLE == 4


def test_bad_conninfo_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="invalid connection option"):
        connect("host=127.0.0.1 no_such_option=1", "probe")
    with pytest.raises(ConfigurationError, match="invalid integer value"):
        connect("host=127.0.0.1 port=abc", "probe")


def test_every_tool_raises_the_typed_connect_errors(pg_url: str) -> None:
    from dbopt.advisor import IndexAdvisor
    from dbopt.health import health
    from dbopt.lint import lint
    from dbopt.partitions import PartitionManager, PartitionSpec
    from dbopt.postgres import Explainer

    role = f"dbopt_no_such_role_{secrets.token_hex(3)}"
    bad_role = _url(pg_url, username=role, password=None)
    with pytest.raises(AuthenticationError, match="dbopt-advisor cannot connect"):
        IndexAdvisor(bad_role).advise(["SELECT 1"])
    with pytest.raises(AuthenticationError, match="dbopt-explain cannot connect"):
        Explainer(bad_role).explain("SELECT 1")
    with pytest.raises(AuthenticationError, match="dbopt-lint cannot connect"):
        lint(bad_role)
    with pytest.raises(AuthenticationError, match="dbopt-health cannot connect"):
        health(bad_role)
    spec = PartitionSpec("t", key="created_at", interval="month")
    with pytest.raises(AuthenticationError, match="dbopt-partitions cannot connect"):
        PartitionManager(bad_role).plan(spec)
    with pytest.raises(AuthenticationError, match="dbopt-pool cannot connect"):
        dbopt.pool.connection_budget(libpq_url(bad_role))


# -- failures of statements (SQLSTATE) ----------------------------------------------------


def test_permission_denied_on_a_table(pg_url: str, roles: dict[str, str]) -> None:
    url = _url(pg_url, username=roles["reader"], password=None)
    with connect(url, "probe") as conn:
        with pytest.raises(PermissionDeniedError) as info, map_driver_errors("probe reading"):
            conn.execute("SELECT * FROM connect_secret")
        assert str(info.value).startswith("probe reading: permission denied for table")
        assert isinstance(info.value.__cause__, psycopg.errors.InsufficientPrivilege)
        assert exit_code(info.value) == ExitCode.PERMISSION
        # a raw driver error that escaped a tool gets the same exit code
        with pytest.raises(psycopg.Error) as raw:
            conn.execute("SELECT * FROM connect_secret")
    assert classify(raw.value)[0] == ExitCode.PERMISSION


def test_revoked_connect_privilege_is_permission_denied(pg_url: str, roles: dict[str, str]) -> None:
    database = make_url(pg_url).database
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(
                sql.Identifier(str(database))
            )
        )
        try:
            url = _url(pg_url, username=roles["reader"], password=None)
            with pytest.raises(PermissionDeniedError, match="permission denied for database"):
                connect(url, "probe")
        finally:
            admin.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO PUBLIC").format(
                    sql.Identifier(str(database))
                )
            )


def test_statement_timeout_is_query_canceled(pg_url: str) -> None:
    with connect(pg_url, "probe", statement_timeout_ms=100) as conn:
        with (
            pytest.raises(QueryCanceledError, match="statement timeout") as info,
            map_driver_errors("probe"),
        ):
            conn.execute("SELECT pg_sleep(2)")
        assert info.value.__cause__ is not None
        assert getattr(info.value.__cause__, "sqlstate", None) == "57014"
    assert exit_code(info.value) == ExitCode.DATABASE


def test_lock_timeout_is_query_canceled(pg_url: str) -> None:
    with psycopg.connect(libpq_url(pg_url), autocommit=True) as setup:
        setup.execute("CREATE TABLE IF NOT EXISTS connect_locked (id int)")
    try:
        with psycopg.connect(libpq_url(pg_url)) as holder:
            holder.execute("LOCK TABLE connect_locked IN ACCESS EXCLUSIVE MODE")
            with (
                connect(pg_url, "probe", lock_timeout_ms=100) as conn,
                pytest.raises(QueryCanceledError, match="lock timeout"),
                map_driver_errors("probe"),
            ):
                conn.execute("SELECT * FROM connect_locked")
            holder.rollback()
    finally:
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as setup:
            setup.execute("DROP TABLE IF EXISTS connect_locked")


def test_missing_database_by_sqlstate(pg_url: str) -> None:
    with (
        connect(pg_url, "probe", read_only=False) as conn,
        pytest.raises(DatabaseNotFoundError),
        map_driver_errors("probe"),
    ):
        conn.execute("ALTER DATABASE dbopt_no_such_database SET work_mem = '4MB'")


def test_missing_extension_needs_the_callers_context(pg_url: str) -> None:
    with psycopg.connect(libpq_url(pg_url)) as plain:
        have = {r[0] for r in plain.execute("SELECT extname FROM pg_extension").fetchall()}
    if {"hypopg", "pg_stat_statements"} & have:
        pytest.skip("the test database has hypopg or pg_stat_statements installed")
    with connect(pg_url, "probe", read_only=False) as conn:
        with (
            pytest.raises(MissingExtensionError) as info,
            map_driver_errors("probe", extension="pg_stat_statements"),
        ):
            conn.execute("SELECT * FROM pg_stat_statements")
        assert info.value.extension == "pg_stat_statements"
        assert "CREATE EXTENSION pg_stat_statements" in str(info.value)
        assert exit_code(info.value) == ExitCode.EXTENSION
        with pytest.raises(MissingExtensionError), map_driver_errors("probe", extension="hypopg"):
            conn.execute("SELECT * FROM hypopg_create_index('CREATE INDEX ON t (a)')")
        name = f"dbopt_no_such_ext_{secrets.token_hex(2)}"
        with (
            pytest.raises(MissingExtensionError, match="is not available"),
            map_driver_errors("probe", extension=name),
        ):
            conn.execute(sql.SQL("CREATE EXTENSION {}").format(sql.Identifier(name)))
        # without the context an undefined relation is just a database error
        with pytest.raises(DatabaseError) as plain_info, map_driver_errors("probe"):
            conn.execute("SELECT * FROM pg_stat_statements")
        assert type(plain_info.value) is DatabaseError


def test_terminated_backend_is_server_unavailable(pg_url: str) -> None:
    with connect(pg_url, "probe") as victim:
        pid = victim.info.backend_pid
        with psycopg.connect(libpq_url(pg_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        with pytest.raises(ServerUnavailableError), map_driver_errors("probe"):
            victim.execute("SELECT 1")  # 57P01 admin_shutdown
        with pytest.raises(ServerUnavailableError), map_driver_errors("probe"):
            victim.execute("SELECT 1")  # the connection is closed: no SQLSTATE


def test_sqlalchemy_errors_are_judged_by_the_driver_error(
    pg_url: str, roles: dict[str, str]
) -> None:
    engine = create_engine(_url(pg_url, username=roles["reader"], password=None))
    try:
        with engine.connect() as conn, pytest.raises(exc.DBAPIError) as error:
            conn.execute(text("SELECT * FROM connect_secret"))
    finally:
        engine.dispose()
    assert isinstance(translate(error.value, "probe"), PermissionDeniedError)
    assert classify(error.value)[0] == ExitCode.PERMISSION


def test_dbopt_errors_pass_through_and_others_are_database_errors() -> None:
    own = ConfigurationError("mine")
    assert translate(own, "probe") is own
    assert type(translate(psycopg.DataError("bad value"), "probe")) is DatabaseError
    assert isinstance(translate(psycopg.OperationalError("gone"), "p"), ServerUnavailableError)


def test_unsupported_version() -> None:
    require_server_version(130000, "db")
    with pytest.raises(UnsupportedVersionError, match="PostgreSQL 12;") as info:
        require_server_version(120015, "db at host")
    assert exit_code(info.value) == ExitCode.VERSION


def test_new_errors_are_public_and_under_database_error() -> None:
    for kind in (
        AuthenticationError,
        DatabaseNotFoundError,
        PermissionDeniedError,
        MissingExtensionError,
        UnsupportedVersionError,
        QueryCanceledError,
        ServerUnavailableError,
    ):
        assert issubclass(kind, DatabaseError)
        assert issubclass(kind, DboptError)
        assert getattr(dbopt, kind.__name__) is kind
        assert kind.__name__ in dbopt.__all__


# -- the CLI -------------------------------------------------------------------------------


def test_debug_keeps_the_exit_code_and_prints_the_traceback(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"dbopt_no_such_role_{secrets.token_hex(3)}"
    url = _url(pg_url, username=role, password=None)
    assert main(["lint", "--dsn", url]) == ExitCode.AUTH
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setenv("DBOPT_DEBUG", "1")
    assert main(["lint", "--dsn", url]) == ExitCode.AUTH
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "dbopt.errors.AuthenticationError" in err
    assert err.rstrip().splitlines()[-1].startswith("dbopt: error: dbopt-cli cannot connect")
