"""bench/eager.py still runs: tiny repetitions on PostgreSQL, statement counts checked."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, inspect

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("eager")


@pytest.mark.postgres
def test_eager_bench_quick(
    bench: ModuleType, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    results = bench.main(["--quick", "--repeats", "1", "--pg-url", pg_url])
    out = capsys.readouterr().out
    assert [r.size for r in results] == [10, 100]
    for result in results:
        assert result.queries == {
            "naive": 1 + result.size,
            "selectinload": 2,
            "eager.auto": 2,
        }
        assert all(len(v) == 1 and v[0] > 0 for v in result.samples.values())
    assert "eager.auto vs naive vs selectinload on PostgreSQL" in out
    assert "auto's per-object listener" in out
    engine = create_engine(pg_url)
    try:
        leftovers = [t for t in inspect(engine).get_table_names() if "bench_eager" in t]
    finally:
        engine.dispose()
    assert leftovers == []
