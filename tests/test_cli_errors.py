"""The CLI's expected errors: one clear line on stderr, a distinct exit code, no traceback."""

from __future__ import annotations

import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from dbopt.cli import ExitCode, main
from dbopt.cli._errors import EXIT_CODES, CliError, classify, exit_code, require_version
from dbopt.errors import (
    AuthenticationError,
    ConfigurationError,
    DatabaseError,
    DatabaseNotFoundError,
    MissingExtensionError,
    PermissionDeniedError,
    QueryCanceledError,
    ServerUnavailableError,
    UnsupportedVersionError,
)
from dbopt.testing import libpq_url, postgres_server_url


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("dbopt: error: ")
    return lines[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    with postgres_server_url() as url:
        yield url


def test_unreachable_server(capsys: pytest.CaptureFixture[str]) -> None:
    port = _free_port()
    code = main(["lint", "--dsn", f"postgresql://postgres@127.0.0.1:{port}/postgres"])
    assert code == ExitCode.UNREACHABLE == 4
    line = _one_line_error(capsys.readouterr().err)
    assert f"127.0.0.1:{port}" in line
    assert "refused" in line.lower()


def test_unknown_role_is_an_authentication_failure(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(server_url).set(username="dbopt_no_such_role", password=None)
    code = main(["health", "--dsn", url.render_as_string(hide_password=False)])
    assert code == ExitCode.AUTH == 5
    assert "dbopt_no_such_role" in _one_line_error(capsys.readouterr().err)


def test_missing_database_is_an_input_error(
    server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(server_url).set(database="dbopt_no_such_database")
    code = main(["lint", "--dsn", url.render_as_string(hide_password=False)])
    assert code == ExitCode.INPUT
    assert 'database "dbopt_no_such_database" does not exist' in _one_line_error(
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("mysql://root@127.0.0.1/test", "not a PostgreSQL URL"),
        ("postgresql://postgres@127.0.0.1:notaport/db", "cannot parse the database URL"),
        ("just-words", "not a database URL"),
        ("host='unterminated dbname=x", "cannot parse the connection string"),
        ("host=127.0.0.1 port=abc", "not a port"),
    ],
)
def test_bad_url(dsn: str, expected: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--dsn", dsn]) == ExitCode.INPUT
    assert expected in _one_line_error(capsys.readouterr().err)


def test_no_url_anywhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["health"]) == ExitCode.INPUT
    assert "DATABASE_URL" in _one_line_error(capsys.readouterr().err)


def test_database_url_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgres://postgres@127.0.0.1:{port}/postgres")
    assert main(["health"]) == ExitCode.UNREACHABLE
    assert f":{port}" in _one_line_error(capsys.readouterr().err)


@pytest.fixture(scope="module")
def locked_database(server_url: str) -> Iterator[str]:
    """A database the role ``dbopt_cli_noperm_*`` may not connect to."""
    admin = libpq_url(server_url)
    suffix = secrets.token_hex(3)  # roles are cluster-wide: concurrent runs must not collide
    name, role = f"dbopt_cli_locked_{suffix}", f"dbopt_cli_noperm_{suffix}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        conn.execute(
            sql.SQL("REVOKE CONNECT ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name))
        )
    try:
        yield (
            make_url(server_url)
            .set(username=role, password=None, database=name)
            .render_as_string(hide_password=False)
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_missing_permission(locked_database: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--dsn", locked_database]) == ExitCode.PERMISSION == 6
    assert "permission denied" in _one_line_error(capsys.readouterr().err)


def test_missing_extension(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(libpq_url(pg_url)) as conn:
        installed = conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        ).fetchone()
    if installed and installed[0]:
        pytest.skip("pg_stat_statements is installed in the test database")
    assert main(["advise", "pg_stat_statements", "--dsn", pg_url]) == ExitCode.EXTENSION == 7
    line = _one_line_error(capsys.readouterr().err)
    assert "CREATE EXTENSION pg_stat_statements" in line


def test_unsupported_server_version() -> None:
    # No PostgreSQL 12 server exists on the test machines; the check runs on the
    # version number every command reads from its first connection.
    require_version(130000, "db")
    require_version(150004, "db")
    with pytest.raises(UnsupportedVersionError) as info:
        require_version(120015, "db at host")
    assert classify(info.value) == (ExitCode.VERSION, str(info.value))
    assert ExitCode.VERSION == 8
    assert "PostgreSQL 12" in str(info.value)
    with pytest.raises(UnsupportedVersionError, match=r"PostgreSQL 9\.6"):
        require_version(90624, "db")


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (CliError("spec file broken", ExitCode.INPUT), ExitCode.INPUT),
        (ConfigurationError("bad argument"), ExitCode.INPUT),
        (DatabaseNotFoundError("no such database"), ExitCode.INPUT),
        (ServerUnavailableError("refused"), ExitCode.UNREACHABLE),
        (AuthenticationError("password authentication failed"), ExitCode.AUTH),
        (PermissionDeniedError("no"), ExitCode.PERMISSION),
        (MissingExtensionError("no hypopg", "hypopg"), ExitCode.EXTENSION),
        (UnsupportedVersionError("too old"), ExitCode.VERSION),
        (QueryCanceledError("statement timeout"), ExitCode.DATABASE),
        (DatabaseError("permission denied, says the text"), ExitCode.DATABASE),
        (FileNotFoundError("no/such/file"), ExitCode.INPUT),
    ],
)
def test_exit_code_follows_the_type_not_the_text(error: BaseException, code: ExitCode) -> None:
    assert exit_code(error) == code
    assert classify(error) == (code, str(error))


def test_subclasses_take_their_parents_code() -> None:
    from dbopt.partitions import LockTimeoutError, PartitionSpecError

    assert exit_code(PartitionSpecError("bad spec")) == ExitCode.INPUT
    assert exit_code(LockTimeoutError("locked")) == ExitCode.DATABASE
    assert set(EXIT_CODES.values()) >= {
        ExitCode.INPUT,
        ExitCode.UNREACHABLE,
        ExitCode.AUTH,
        ExitCode.PERMISSION,
        ExitCode.EXTENSION,
        ExitCode.VERSION,
        ExitCode.DATABASE,
        ExitCode.DEPENDENCY,
    }


def test_missing_extra_is_its_own_exit_code() -> None:
    from dbopt.errors import MissingDependencyError

    code, text = classify(MissingDependencyError("pgserver", "embedded"))
    assert code == ExitCode.DEPENDENCY
    assert "pip install 'dbopt[embedded]'" in text


def test_missing_input_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["advise", "no/such/workload.sql", "--dsn", "postgresql://x@127.0.0.1/y"]) == 3
    assert "no such workload file" in _one_line_error(capsys.readouterr().err)
    assert main(["check-migrations", "no/such/dir"]) == ExitCode.INPUT
    assert main(["partitions", "plan", "no/such/spec.json", "--dsn", "postgresql://x@h/y"]) == 3


def test_usage_error_is_two() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dbopt", "advise", "--format", "xml"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == ExitCode.USAGE == 2
    assert "invalid choice" in result.stderr
