"""``dbopt`` as a program: entry points, help, ``stats``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import dbopt
from dbopt.cli import ExitCode, build_parser, main


@pytest.fixture
def stats_file(tmp_path: Path) -> Path:
    stats = dbopt.QueryStats()
    engine = create_engine("sqlite://")
    try:
        with dbopt.instrument(engine, stats), engine.connect() as conn:
            conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
            for i in range(5):
                conn.execute(text("INSERT INTO t (v) VALUES (:v)"), {"v": str(i)})
            for i in range(3):
                conn.execute(text("SELECT v FROM t WHERE id = :i"), {"i": i}).all()
    finally:
        engine.dispose()
    path = tmp_path / "stats.json"
    path.write_text(json.dumps(stats.to_dict()))
    return path


def test_every_subcommand_is_registered() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(sub.choices) == {  # type: ignore[arg-type]
        "advise",
        "check-migrations",
        "demo",
        "diff",
        "erd",
        "health",
        "lint",
        "partitions",
        "report",
        "serve",
        "stats",
    }


def test_stats_command(stats_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(stats_file), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "calls" in out
    assert len(out.strip().splitlines()) == 4  # header, rule, two statements
    assert (
        main(["stats", str(stats_file), "--format", "json", "--top", "1", "--sort", "calls"]) == 0
    )
    top = json.loads(capsys.readouterr().out)
    assert len(top) == 1
    assert top[0]["calls"] == 5


def test_bad_stats_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["stats", str(bad)]) == ExitCode.INPUT
    err = capsys.readouterr().err
    assert err.startswith("dbopt: error: cannot read stats file")
    assert "Traceback" not in err
    bad.write_text('{"version": 99}')
    assert main(["stats", str(bad)]) == ExitCode.INPUT


def test_python_dash_m_is_the_same_program(stats_file: Path) -> None:
    result = subprocess.run(  # noqa: S603 - our own interpreter and a temp file
        [sys.executable, "-m", "dbopt", "stats", str(stats_file), "--top", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "calls" in result.stdout
    version = subprocess.run(
        [sys.executable, "-m", "dbopt", "--version"], capture_output=True, text=True, check=False
    )
    assert version.stdout.strip() == f"dbopt {dbopt.__version__}"


def test_no_colour_when_not_a_terminal(
    stats_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from dbopt.cli._output import Style

    assert main(["stats", str(stats_file)]) == 0
    assert "\x1b[" not in capsys.readouterr().out
    assert Style(sys.stdout, enabled=True)("x", "error") == "\x1b[31mx\x1b[0m"
