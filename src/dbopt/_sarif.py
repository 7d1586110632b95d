"""Findings as SARIF 2.1.0, so CI systems (GitHub code scanning, GitLab) annotate them.

A finding whose metadata has ``path`` (and ``line``/``column``), such as a
migration check's, gets a physical location in that file; a database
finding gets a logical location (its object) and, when ``artifact`` is
given, a physical one at line 1 of that file (code scanning only shows
results that point into the repository). Rule descriptions come from the
``rules`` the calling tool hands over (any mapping of :class:`RuleDoc`), by
and for any other code from the findings themselves. This module sits in the
base layer (beside :mod:`dbopt.findings`) so every report can render itself;
:mod:`dbopt.report.sarif` adds the registry of every tool's rules.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote

if TYPE_CHECKING:
    from dbopt.findings import Finding, Severity

__all__ = ["RuleDoc", "render_sarif", "to_sarif"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: Severity (a str enum, so its value is the key) -> SARIF level.
_LEVEL: dict[str, str] = {"error": "error", "warning": "warning", "info": "note"}
_KINDS = {"table", "column", "index", "constraint", "sequence", "statement"}


class RuleDoc(Protocol):
    """What SARIF needs to describe a rule (lint and migration rules have it)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def summary(self) -> str: ...
    @property
    def why(self) -> str: ...
    @property
    def severity(self) -> Severity: ...


def _version() -> str:
    try:
        return importlib_metadata.version("dbopt")
    except importlib_metadata.PackageNotFoundError:
        return "0"


def _rule_entry(code: str, doc: RuleDoc | None, sample: Finding) -> dict[str, Any]:
    name = doc.name if doc else str(sample.metadata.get("rule", code))
    summary = doc.summary if doc else sample.message
    why = doc.why if doc else sample.why
    level = _LEVEL[doc.severity if doc else sample.severity]
    return {
        "id": code,
        "name": name,
        "shortDescription": {"text": summary},
        "fullDescription": {"text": why or summary},
        "help": {"text": why or summary},
        "defaultConfiguration": {"level": level},
        "properties": {"tags": ["database"]},
    }


def _fingerprint(f: Finding) -> str:
    return hashlib.sha256(f"{f.code}\x00{f.object}".encode()).hexdigest()[:32]


def _uri(path: str) -> str:
    """A relative URI reference: forward slashes, percent-encoded."""
    return quote(path.replace("\\", "/"), safe="/:@")


def _result(f: Finding, index: int, artifact: str | None) -> dict[str, Any]:
    meta = f.metadata
    locations: list[dict[str, Any]] = []
    path = meta.get("path") or artifact
    if path:
        region: dict[str, Any] = {"startLine": int(meta.get("line") or 1)}
        if meta.get("path") and meta.get("column"):
            region["startColumn"] = int(meta["column"])
        if meta.get("path") and meta.get("end_line"):
            region["endLine"] = int(meta["end_line"])
        locations.append(
            {"physicalLocation": {"artifactLocation": {"uri": _uri(str(path))}, "region": region}}
        )
    kind = str(meta.get("kind", "")) if meta.get("kind") in _KINDS else None
    logical: dict[str, Any] = {"fullyQualifiedName": f.object}
    if kind:
        logical["kind"] = kind
    if locations:
        locations[0]["logicalLocations"] = [logical]
    else:
        locations.append({"logicalLocations": [logical]})
    text = f.message if f.message.endswith(".") else f.message + "."
    if f.fix:
        text += f" Fix: {f.fix}"
    return {
        "ruleId": f.code,
        "ruleIndex": index,
        "level": _LEVEL[f.severity],
        "message": {"text": text},
        "locations": locations,
        "partialFingerprints": {"dbopt/v1": _fingerprint(f)},
        "properties": {
            "object": f.object,
            "why": f.why,
            "fix": f.fix,
            "metadata": f.to_dict()["metadata"],
        },
    }


def to_sarif(
    findings: Iterable[Finding],
    *,
    rules: Mapping[str, RuleDoc] | None = None,
    artifact: str | None = None,
    tool: str = "dbopt",
) -> dict[str, Any]:
    """A SARIF 2.1.0 log (a dict) with one run holding ``findings``.

    ``rules`` gives the rule descriptions (codes without one are described by
    their first finding);
    ``artifact`` is a repository path to attach database findings to.
    """
    items = list(findings)
    docs = dict(rules or {})
    order: list[str] = []
    samples: dict[str, Finding] = {}
    for f in items:
        if f.code not in samples:
            samples[f.code] = f
            order.append(f.code)
    order.sort()
    index = {code: i for i, code in enumerate(order)}
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": tool,
                        "version": _version(),
                        "rules": [_rule_entry(c, docs.get(c), samples[c]) for c in order],
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": [_result(f, index[f.code], artifact) for f in items],
            }
        ],
    }


def render_sarif(findings: Iterable[Finding], *, indent: int | None = 2, **options: Any) -> str:
    """:func:`to_sarif` as JSON text."""
    return json.dumps(to_sarif(findings, **options), indent=indent, ensure_ascii=False)
