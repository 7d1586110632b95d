from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from dbopt.cli import main
from dbopt.cli.demo import run_demo


def test_demo_finds_the_n_plus_one_and_slow_queries() -> None:
    out = io.StringIO()
    summary = run_demo(rows=120, out=out)
    text = out.getvalue()
    assert "lazy load of Course.modules" in text
    assert "demo.py" in text  # the call site is the workload's line, not SQLAlchemy's
    assert summary["fixed_queries"] == 2
    assert isinstance(summary["naive_queries"], int)
    assert summary["naive_queries"] > 2
    saved = json.loads(Path(str(summary["stats_file"])).read_text())
    assert saved["version"] == 1
    Path(str(summary["stats_file"])).unlink()


def test_stats_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = run_demo(rows=60, out=io.StringIO())
    path = str(summary["stats_file"])
    assert main(["stats", path, "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert "calls" in text
    assert len(text.strip().splitlines()) == 4
    assert main(["stats", path, "--format", "json", "--top", "1"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    Path(path).unlink()


def test_bad_stats_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["stats", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dbopt: error: cannot read stats file")
    assert "Traceback" not in err


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dbopt", "demo", "--users", "40"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "dbopt demo" in result.stdout
