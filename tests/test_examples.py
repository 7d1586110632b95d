"""The examples run, on SQLite and on PostgreSQL."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import dbopt

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / name / "app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_slow_query_log_example(tmp_path: Path, pg_url: str) -> None:
    app = load("slow_query_log")
    for url in ("sqlite://", pg_url):
        out = tmp_path / "stats.json"
        stats = app.main(url, str(out))
        fp = dbopt.fingerprint("SELECT sum(total) FROM example_orders WHERE customer = ?")
        assert stats[fp].calls == 30
        assert json.loads(out.read_text())["version"] == 1
