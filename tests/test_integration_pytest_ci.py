"""The pytest plugin in CI: a baseline file of accepted findings, and SARIF output.

Each test runs pytest in a subprocess (pytester) on sample test files over
SQLite in memory, as tests/test_integration_pytest.py does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_integration_pytest import SCHEMA, plugin_args

pytest_plugins = ["pytester"]

#: Two lazy-load loops (User.posts) from two functions, and one write loop.
SAMPLES = """
import pytest
from sqlalchemy import insert
from sqlalchemy.orm import Session
from conftest import Post, eager_loop, lazy_loop


def other_lazy_loop(engine):
    with Session(engine) as session:
        from sqlalchemy import select
        from conftest import User
        return [len(user.posts) for user in session.scalars(select(User))]


def test_old_n_plus_one(engine):
    assert lazy_loop(engine) == [2, 2, 2]


def test_eager(engine):
    assert eager_loop(engine) == [2, 2, 2]


def test_fixture_block(engine, assert_no_n_plus_one):
    with assert_no_n_plus_one(checks=["write_loops"]):
        with engine.connect() as conn:  # rolled back: the data stays as it is
            for i in range(3):
                conn.execute(insert(Post).values(user_id=0))
"""

NEW_N_PLUS_ONE = """

def test_new_n_plus_one(engine):
    assert other_lazy_loop(engine) == [2, 2, 2]
"""


@pytest.fixture
def ci(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        """
        [pytest]
        addopts = --strict-markers --strict-config
        filterwarnings = error
        dbopt_no_n_plus_one = true
        """
    )
    pytester.makeconftest(SCHEMA)
    pytester.makepyfile(test_app=SAMPLES)
    return pytester


def _baseline(pytester: pytest.Pytester) -> dict[str, object]:
    data: dict[str, object] = json.loads((pytester.path / "dbopt-baseline.json").read_text())
    return data


def test_without_a_baseline_every_finding_fails(ci: pytest.Pytester) -> None:
    result = ci.runpytest_subprocess(*plugin_args())
    result.assert_outcomes(passed=1, failed=2)
    assert "write loop: fingerprint" in result.stdout.str()


def test_write_baseline_then_only_new_findings_fail(ci: pytest.Pytester) -> None:
    written = ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "--dbopt-write-baseline"
    )
    written.assert_outcomes(passed=3)
    written.stdout.fnmatch_lines(["dbopt: wrote 2 finding(s) to the baseline *dbopt-baseline.json"])
    entries = _baseline(ci)["findings"]
    assert isinstance(entries, list)
    assert sorted((e["kind"], e["file"], e["function"], e["tests"]) for e in entries) == [
        ("n_plus_one", "conftest.py", "<listcomp>", ["test_app.py::test_old_n_plus_one"]),
        ("write_loop", "test_app.py", "test_fixture_block", ["test_app.py::test_fixture_block"]),
    ]
    assert [e["what"] for e in entries if e["kind"] == "n_plus_one"] == ["User.posts"]
    # the known findings pass; a new one (another function) fails
    ci.makepyfile(test_app=SAMPLES + NEW_N_PLUS_ONE)
    result = ci.runpytest_subprocess(*plugin_args(), "--dbopt-baseline=dbopt-baseline.json")
    result.assert_outcomes(passed=3, failed=1)
    out = result.stdout.str()
    assert "test_new_n_plus_one FAILED" in out or "FAILED test_app.py::test_new_n_plus_one" in out
    assert "dbopt: 2 finding(s) known in the baseline" in out
    assert "0 stale" in out


def test_fixed_findings_are_reported_as_stale(ci: pytest.Pytester) -> None:
    ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "--dbopt-write-baseline"
    ).assert_outcomes(passed=3)
    # the write loop is fixed: one executemany
    fixed = SAMPLES.replace(
        """            for i in range(3):
                conn.execute(insert(Post).values(user_id=0))""",
        """            conn.execute(insert(Post), [{"user_id": 0}] * 3)""",
    )
    assert fixed != SAMPLES
    ci.makepyfile(test_app=fixed)
    result = ci.runpytest_subprocess(*plugin_args(), "--dbopt-baseline=dbopt-baseline.json")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "dbopt: 1 finding(s) known in the baseline *, 1 stale",
            "  stale: write_loop * in test_app.py test_fixture_block (tests: "
            "test_app.py::test_fixture_block)",
        ]
    )
    # a run that does not run the test behind an entry does not call it stale
    only = ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "-k", "eager"
    )
    only.stdout.fnmatch_lines(["dbopt: 0 finding(s) known in the baseline *, 0 stale"])


def test_a_broken_baseline_is_a_usage_error(ci: pytest.Pytester) -> None:
    (ci.path / "dbopt-baseline.json").write_text("{not json")
    result = ci.runpytest_subprocess(*plugin_args(), "--dbopt-baseline=dbopt-baseline.json")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "cannot read the dbopt baseline" in result.stderr.str()
    alone = ci.runpytest_subprocess(*plugin_args(), "--dbopt-write-baseline")
    assert alone.ret == pytest.ExitCode.USAGE_ERROR


def test_sarif_for_code_scanning(ci: pytest.Pytester) -> None:
    ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "--dbopt-write-baseline"
    )
    ci.makepyfile(test_app=SAMPLES + NEW_N_PLUS_ONE)
    result = ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "--dbopt-sarif=out/dbopt.sarif"
    )
    result.assert_outcomes(passed=3, failed=1)
    log = json.loads((ci.path / "out" / "dbopt.sarif").read_text())
    assert log["version"] == "2.1.0"
    run = log["runs"][0]
    rules = {rule["id"] for rule in run["tool"]["driver"]["rules"]}
    assert rules == {"DBOPT-NPLUSONE", "DBOPT-WRITE-LOOP"}
    results = sorted(
        (
            r["ruleId"],
            r["baselineState"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["level"],
        )
        for r in run["results"]
    )
    assert results == [
        ("DBOPT-NPLUSONE", "new", "test_app.py", "warning"),
        ("DBOPT-NPLUSONE", "unchanged", "conftest.py", "warning"),
        ("DBOPT-WRITE-LOOP", "unchanged", "test_app.py", "warning"),
    ]
    for r in run["results"]:
        where = r["locations"][0]["physicalLocation"]
        source = (ci.path / where["artifactLocation"]["uri"]).read_text().splitlines()
        line = source[where["region"]["startLine"] - 1]
        assert ("user.posts" if r["ruleId"] == "DBOPT-NPLUSONE" else "conn.execute(") in line
    fix = next(r for r in run["results"] if r["ruleId"] == "DBOPT-NPLUSONE")["message"]["text"]
    assert "selectinload(User.posts)" in fix
    prints = [r["partialFingerprints"]["dbopt/v1"] for r in run["results"]]
    assert len(set(prints)) == 3
    # the same run again gives the same fingerprints (code scanning matches them)
    ci.runpytest_subprocess(
        *plugin_args(), "--dbopt-baseline=dbopt-baseline.json", "--dbopt-sarif=out/dbopt.sarif"
    )
    again = json.loads((ci.path / "out" / "dbopt.sarif").read_text())
    assert sorted(
        r["partialFingerprints"]["dbopt/v1"] for r in again["runs"][0]["results"]
    ) == sorted(prints)
    assert Path(ci.path / "dbopt-baseline.json").exists()
