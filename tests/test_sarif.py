"""Findings rendered as text, JSON and SARIF 2.1.0."""

from __future__ import annotations

import json

import pytest

from dbopt import Finding, Severity
from dbopt.report.findings import findings_table, render_json, render_text, summary_line
from dbopt.report.sarif import known_rules, render_sarif, to_sarif
from test_lint_support import fresh_schema, lint_schema

DB_FINDING = Finding(
    "LINT001",
    "warning",
    'public."Odd Table".fk',
    "foreign key fk has no covering index",
    "deletes scan the table",
    fix='CREATE INDEX CONCURRENTLY i ON public."Odd Table" (a);',
    metadata={"rule": "fk_without_index", "table": "Odd Table"},
)
FILE_FINDING = Finding(
    "MIG001",
    Severity.ERROR,
    "public.users",
    "CREATE INDEX without CONCURRENTLY",
    "blocks writes",
    fix="CREATE INDEX CONCURRENTLY ...",
    metadata={
        "rule": "create-index-non-concurrently",
        "path": "migrations\\0001.sql",
        "line": 3,
        "column": 1,
        "end_line": 4,
    },
)
INFO = Finding("CUSTOM9", "info", "x", "something", "because")


def test_text_rendering() -> None:
    text = render_text(
        [INFO, DB_FINDING, FILE_FINDING], why=True, errors={"LINT012": "timeout"}, suppressed=2
    )
    lines = text.splitlines()
    assert (
        lines[0] == "migrations\\0001.sql:3: MIG001 error   public.users: "
        "CREATE INDEX without CONCURRENTLY"
    )
    assert "    why: blocks writes" in lines
    assert '    fix: CREATE INDEX CONCURRENTLY i ON public."Odd Table" (a);' in lines
    assert "3 findings: 1 error, 1 warning, 1 info (2 suppressed)" in lines
    assert lines[-1] == "not run: LINT012: timeout"
    assert summary_line([]) == "no findings"
    table = findings_table([DB_FINDING]).splitlines()
    assert table[0].split() == ["code", "severity", "object", "message"]


def test_json_rendering() -> None:
    doc = json.loads(render_json([INFO, DB_FINDING], tool="lint"))
    assert doc["summary"] == {"total": 2, "error": 0, "warning": 1, "info": 1}
    assert doc["findings"][0]["code"] == "LINT001"
    assert doc["findings"][0]["fix"].startswith("CREATE INDEX")
    assert doc["tool"] == "lint"


def test_sarif_structure() -> None:
    log = to_sarif([DB_FINDING, FILE_FINDING, INFO], artifact="db/schema.sql")
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["name"] == "dbopt"
    rules = driver["rules"]
    assert [r["id"] for r in rules] == ["CUSTOM9", "LINT001", "MIG001"]
    results = run["results"]
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] in {"error", "warning", "note"}
        assert res["message"]["text"]
        assert len(res["partialFingerprints"]["dbopt/v1"]) == 32
    db, file_, info = results
    assert [db["level"], file_["level"], info["level"]] == ["warning", "error", "note"]
    # the registered lint rule describes LINT001; an unknown code is described by its finding
    assert rules[1]["name"] == "fk_without_index"
    assert "sequential scan" in rules[1]["fullDescription"]["text"]
    assert rules[0]["shortDescription"]["text"] == "something"
    physical = file_["locations"][0]["physicalLocation"]
    assert physical["artifactLocation"]["uri"] == "migrations/0001.sql"
    assert physical["region"] == {"startLine": 3, "startColumn": 1, "endLine": 4}
    # database findings point at the given artifact and name their object logically
    assert db["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "db/schema.sql"
    assert db["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        'public."Odd Table".fk'
    )
    assert "Fix: CREATE INDEX" in db["message"]["text"]
    no_artifact = to_sarif([DB_FINDING])["runs"][0]["results"][0]
    assert "physicalLocation" not in no_artifact["locations"][0]
    assert json.loads(render_sarif([DB_FINDING])) == to_sarif([DB_FINDING])


def test_every_registered_rule_has_what_sarif_needs() -> None:
    rules = known_rules()
    assert {c for c in rules if c.startswith("LINT")} == {f"LINT{n:03d}" for n in range(1, 16)}
    assert {c for c in rules if c.startswith("MIG")} == {f"MIG{n:03d}" for n in range(45)}
    assert {c for c in rules if c.startswith("HEALTH")} == {f"HEALTH{n:03d}" for n in range(1, 17)}
    assert {c for c in rules if c.startswith("DRIFT")} == {f"DRIFT{n:03d}" for n in range(1, 13)}
    for code, doc in rules.items():
        assert doc.code == code
        assert all((doc.name, doc.summary, doc.why))
        assert isinstance(doc.severity, Severity)


@pytest.mark.postgres
def test_sarif_of_a_real_lint(pg_url: str) -> None:
    ddl = 'CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE "C c" (id int, p_id int REFERENCES p);'
    with fresh_schema(pg_url, ddl) as name:
        report = lint_schema(pg_url, name)
    log = json.loads(render_sarif(report))
    results = log["runs"][0]["results"]
    assert {r["ruleId"] for r in results} == report.codes()
    assert len(results) == len(report)
    names = {r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] for r in results}
    assert f'{name}."C c"' in names
