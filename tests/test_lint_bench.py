"""bench/lint.py still runs, and dbopt's lint agrees with the plain-SQL peer's counts."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"

pytestmark = pytest.mark.postgres


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("lint")


def test_lint_bench_quick(
    bench: ModuleType, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = bench.main(["--quick", "--pg-url", pg_url])
    out = capsys.readouterr().out
    assert set(result["samples"]) == {"dbopt lint", "plain SQL", "dbopt health"}
    assert all(len(v) == 2 for v in result["samples"].values())
    for name, ours, peer in result["compare"]:
        assert ours == peer, name
        assert ours > 0, name
    assert result["locked"]["errors"] == {}
    assert "dbopt lint / plain SQL:" in out
