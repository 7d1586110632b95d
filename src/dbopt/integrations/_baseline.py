"""The pytest plugin's CI adoption: a baseline of accepted findings, and SARIF output.

A baseline file lists the identity of every finding a test run had when it
was written: kind, what (the relationship, else the statement's
fingerprint), and the file (relative to pytest's root) and function of the
line that issued it. No line numbers and no counts, so editing code above a
finding, or loading more rows, keeps its entry valid. With a baseline, a
finding on the list no longer fails its test; anything else does. An entry
whose tests all ran and none reported it is *stale* (fixed, or moved): the
run lists it, so the file can be rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbopt._sarif import to_sarif
from dbopt.core.nplusone_findings import KIND_LABELS, NPlusOneFinding
from dbopt.errors import ConfigurationError
from dbopt.findings import Finding, Severity

__all__ = ["Baseline", "BaselineEntry", "RunFindings", "identity_of", "sarif_log"]

VERSION = 1

#: (kind, what, file relative to the root, function)
Identity = tuple[str, str, str, str]


def _relative(path: str, root: Path) -> str:
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        return path.replace("\\", "/")
    return (path if relative.startswith("..") else relative).replace("\\", "/")


def identity_of(finding: NPlusOneFinding, root: Path) -> Identity:
    """The baseline identity of ``finding``: stable across line moves and data sizes."""
    site = finding.callsite
    what = finding.relationship or finding.fingerprint
    if site is None:
        return (finding.kind, what, "", "")
    return (finding.kind, what, _relative(site.file, root), site.function)


@dataclass(frozen=True, slots=True)
class BaselineEntry:
    """One accepted finding, and the tests that reported it when the file was written."""

    identity: Identity
    tests: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        kind, what, file, function = self.identity
        return {
            "kind": kind,
            "what": what,
            "file": file,
            "function": function,
            "tests": list(self.tests),
        }


@dataclass
class Baseline:
    """The entries of a baseline file, by identity."""

    entries: dict[Identity, BaselineEntry] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> Baseline:
        """Read ``path``; a missing file is an empty baseline, a bad one a ConfigurationError."""
        if not path.exists():
            return cls()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("version") != VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {VERSION}")
            entries: dict[Identity, BaselineEntry] = {}
            for item in document["findings"]:
                identity = (
                    str(item["kind"]),
                    str(item["what"]),
                    str(item["file"]),
                    str(item["function"]),
                )
                entries[identity] = BaselineEntry(
                    identity, tuple(str(t) for t in item.get("tests", ()))
                )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigurationError(
                f"cannot read the dbopt baseline {path}: {exc}; rewrite it with "
                "--dbopt-write-baseline"
            ) from exc
        return cls(entries)

    def __contains__(self, identity: object) -> bool:
        return identity in self.entries

    @staticmethod
    def write(path: Path, found: Mapping[Identity, Iterable[str]]) -> int:
        """Write the identities of ``found`` (identity -> tests) to ``path``; how many."""
        entries = [
            BaselineEntry(identity, tuple(sorted(set(tests)))).to_dict()
            for identity, tests in sorted(found.items())
        ]
        text = json.dumps({"version": VERSION, "findings": entries}, indent=2) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        return len(entries)

    def stale(self, found: Iterable[Identity], ran: set[str]) -> list[BaselineEntry]:
        """Entries not found in this run although every test that reported them ran."""
        seen = set(found)
        return [
            entry
            for identity, entry in self.entries.items()
            if identity not in seen and entry.tests and set(entry.tests) <= ran
        ]


@dataclass
class RunFindings:
    """Every N+1-detector finding of a test session, with the tests that reported it."""

    root: Path
    findings: list[tuple[str, NPlusOneFinding, bool]] = field(default_factory=list)

    def add(self, test: str, finding: NPlusOneFinding, known: bool) -> None:
        self.findings.append((test, finding, known))

    def identities(self) -> dict[Identity, list[str]]:
        out: dict[Identity, list[str]] = {}
        for test, finding, _ in self.findings:
            out.setdefault(identity_of(finding, self.root), []).append(test)
        return out


@dataclass(frozen=True, slots=True)
class _Rule:
    code: str
    name: str
    summary: str
    why: str
    severity: Severity = Severity.WARNING


_RULES: dict[str, _Rule] = {
    "DBOPT-NPLUSONE": _Rule(
        "DBOPT-NPLUSONE",
        "n-plus-one",
        "One query per row of a loop (N+1)",
        "The same statement ran once per row with different values from one line; the number "
        "of queries grows with the data. Load the rows in one query (a loader option, IN).",
    ),
    "DBOPT-REPEATED": _Rule(
        "DBOPT-REPEATED",
        "repeated-query",
        "The same query with the same values ran again",
        "Nothing was written in between, so the second run returned what the first did: keep "
        "the first result.",
    ),
    "DBOPT-WRITE-LOOP": _Rule(
        "DBOPT-WRITE-LOOP",
        "write-loop",
        "Rows written one statement at a time from one line",
        "One INSERT/UPDATE/DELETE per row costs a round trip each; executemany or a bulk "
        "statement writes them in one.",
    ),
    "DBOPT-UNBOUNDED": _Rule(
        "DBOPT-UNBOUNDED",
        "unbounded-query",
        "A list query with no LIMIT returned many rows",
        "The result grows with the table; page it with a unique sort key (keyset pagination).",
    ),
    "DBOPT-CARTESIAN": _Rule(
        "DBOPT-CARTESIAN",
        "cartesian-product",
        "Two or more collections joined in one statement",
        "Joined collections multiply each other's rows; load them with selectinload.",
    ),
}
_CODES = {
    "n_plus_one": "DBOPT-NPLUSONE",
    "repeated_query": "DBOPT-REPEATED",
    "write_loop": "DBOPT-WRITE-LOOP",
    "unbounded_query": "DBOPT-UNBOUNDED",
    "cartesian_product": "DBOPT-CARTESIAN",
    "unused_eager_load": "DBOPT-UNUSED-EAGER",
}


def sarif_log(run: RunFindings, *, baseline: bool) -> dict[str, Any]:
    """A SARIF 2.1.0 log of the session's findings, one result per (identity, line).

    With a baseline, each result has ``baselineState`` ``"new"`` or ``"unchanged"``.
    """
    unique: dict[tuple[Identity, int], tuple[NPlusOneFinding, list[str], bool]] = {}
    for test, finding, known in run.findings:
        line = finding.callsite.line if finding.callsite else 0
        key = (identity_of(finding, run.root), line)
        if key in unique:
            unique[key][1].append(test)
        else:
            unique[key] = (finding, [test], known)
    items: list[Finding] = []
    states: list[tuple[str, bool]] = []
    for (identity, line), (finding, tests, known) in unique.items():
        kind, what, file, function = identity
        label = KIND_LABELS.get(kind, kind)
        where = f" of {finding.relationship}" if finding.relationship else ""
        items.append(
            Finding(
                code=_CODES.get(kind, "DBOPT-NPLUSONE"),
                severity=Severity.WARNING,
                object=f"{file}:{function}:{what}" if file else what,
                message=f"{label}{where}: {finding.count} queries in test {tests[0]}"
                + (f" (and {len(tests) - 1} more tests)" if len(tests) > 1 else ""),
                why=" ".join(finding.sql.split())[:300],
                fix=finding.suggestion,
                metadata={
                    "path": file or None,
                    "line": line or 1,
                    "kind": "statement",
                    "fingerprint": finding.fingerprint,
                    "tests": tests,
                },
            )
        )
        states.append(("|".join(identity), known))
    log = to_sarif(items, rules=_RULES, tool="dbopt")
    for result, (identity_text, known) in zip(log["runs"][0]["results"], states, strict=True):
        digest = hashlib.sha256(identity_text.encode()).hexdigest()[:32]
        result["partialFingerprints"] = {"dbopt/v1": digest}
        if baseline:
            result["baselineState"] = "unchanged" if known else "new"
    return log
