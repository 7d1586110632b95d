"""``bench/partitions.py`` still runs end to end (tiny sizes; nothing about timings)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
pytestmark = pytest.mark.postgres


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, pg_url: str) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setenv("DBOPT_TEST_DSN", pg_url.rsplit("/", 1)[0] + "/postgres")
    return importlib.import_module("partitions")


def test_bench_prints_every_table(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    bench.main(
        [
            "--sizes",
            "9",
            "--rows",
            "400",
            "--repeats",
            "1",
            "--convert-repeats",
            "1",
            "--warm",
            "0.2",
        ]
    )
    out = capsys.readouterr().out
    lines = [line.split() for line in out.splitlines()]
    dbopt_row = next(row for row in lines if row[:2] == ["dbopt", "9"])
    assert dbopt_row[-1] == "2"  # one partition created, one detached
    assert any(row[:2] == ["pg_partman", "9"] for row in lines)
    assert any(row[:2] == ["pg-partsmith", "9"] for row in lines)
    assert any(" connection per call " in line and " 9 " in line for line in out.splitlines())
    assert "convert(), no writers" in out
    assert "convert(), 2 writers" in out
    assert "INSERT ... SELECT (offline baseline)" in out
    with pytest.raises(SystemExit):
        bench.main(["--sizes", "3"])
