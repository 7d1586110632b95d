"""Suppressions: silence findings by code (or rule name), object, glob, in code or pyproject.

A suppression matches a finding when its ``code`` pattern matches the
finding's code or its rule name (``metadata["rule"]``) and its ``object``
pattern matches the finding's object; patterns are ``fnmatch`` globs, case
sensitive. As a string, ``"LINT006"`` silences a rule everywhere and
``"LINT006:public.audit_*"`` only on matching objects (the object is
everything after the first colon).

In ``pyproject.toml``::

    [tool.dbopt]
    suppress = [
      "LINT013",
      "LINT006:public.audit_*",
      { code = "LINT003", object = "public.events.entity_id", reason = "polymorphic" },
    ]

Migrations also honour inline comments (see :mod:`dbopt.migrations`).
"""

from __future__ import annotations

import fnmatch
import importlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from dbopt.errors import ConfigurationError
from dbopt.findings import Finding

__all__ = ["Suppression", "Suppressions", "SuppressionsLike", "load_pyproject"]


@dataclass(frozen=True)
class Suppression:
    """One suppression: ``code`` and ``object`` globs, and why (shown in reports)."""

    code: str = "*"
    object: str = "*"
    reason: str | None = None

    @classmethod
    def parse(cls, value: Suppression | str | Mapping[str, Any]) -> Suppression:
        """A suppression from ``"CODE"``, ``"CODE:object-glob"`` or a mapping."""
        if isinstance(value, Suppression):
            return value
        if isinstance(value, str):
            code, sep, obj = value.strip().partition(":")
            if not code:
                raise ConfigurationError(f"suppression {value!r} has no code")
            return cls(code=code, object=obj if sep and obj else "*")
        if isinstance(value, Mapping):
            unknown = set(value) - {"code", "object", "reason"}
            if unknown:
                raise ConfigurationError(f"unknown suppression keys: {sorted(unknown)}")
            return cls(
                code=str(value.get("code", "*")),
                object=str(value.get("object", "*")),
                reason=value.get("reason"),
            )
        raise ConfigurationError(f"cannot read a suppression from {value!r}")

    def matches(self, finding: Finding) -> bool:
        """True when this suppression silences ``finding``."""
        rule = str(finding.metadata.get("rule", ""))
        code_ok = fnmatch.fnmatchcase(finding.code, self.code) or (
            bool(rule) and fnmatch.fnmatchcase(rule, self.code)
        )
        return code_ok and fnmatch.fnmatchcase(finding.object, self.object)


SuppressionsLike = Union["Suppressions", Iterable[Suppression | str | Mapping[str, Any]], None]


class Suppressions:
    """A set of suppressions; :meth:`split` separates kept and silenced findings."""

    def __init__(self, entries: Iterable[Suppression | str | Mapping[str, Any]] = ()) -> None:
        self.entries: tuple[Suppression, ...] = tuple(Suppression.parse(e) for e in entries)

    @classmethod
    def coerce(cls, value: SuppressionsLike) -> Suppressions:
        """``value`` as :class:`Suppressions` (None is empty; a string is one entry)."""
        if value is None:
            return cls()
        if isinstance(value, Suppressions):
            return value
        if isinstance(value, (str, Mapping, Suppression)):
            return cls([value])
        return cls(value)

    @classmethod
    def from_pyproject(cls, path: str | Path | None = None) -> Suppressions:
        """The ``suppress`` list of ``[tool.dbopt]`` (nearest ``pyproject.toml`` upwards)."""
        settings = load_pyproject(path)
        raw = settings.get("suppress", [])
        if not isinstance(raw, list):
            raise ConfigurationError("[tool.dbopt] suppress must be a list")
        return cls(raw)

    def match(self, finding: Finding) -> Suppression | None:
        """The first suppression that silences ``finding``, or None."""
        return next((s for s in self.entries if s.matches(finding)), None)

    def split(self, findings: Iterable[Finding]) -> tuple[list[Finding], list[Finding]]:
        """``(kept, suppressed)``, each in the original order."""
        kept: list[Finding] = []
        silenced: list[Finding] = []
        for f in findings:
            (silenced if self.match(f) else kept).append(f)
        return kept, silenced

    def __add__(self, other: Suppressions) -> Suppressions:
        return Suppressions((*self.entries, *other.entries))

    def __iter__(self) -> Iterator[Suppression]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __repr__(self) -> str:
        return f"Suppressions({list(self.entries)!r})"


def _toml() -> Any:
    name = "tomllib" if sys.version_info >= (3, 11) else "tomli"
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # Python 3.10 without tomli
        raise ConfigurationError(
            "reading pyproject.toml on Python 3.10 needs tomli (pip install tomli)"
        ) from exc


def _find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_pyproject(path: str | Path | None = None) -> dict[str, Any]:
    """The ``[tool.dbopt]`` table of ``path`` (a file or directory; default: the nearest
    ``pyproject.toml`` from the current directory upwards), or ``{}`` when there is none.
    """
    base = Path(path) if path is not None else Path.cwd()
    file = base if base.is_file() else _find_pyproject(base)
    if file is None:
        return {}
    try:
        data = _toml().loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read {file}: {exc}") from exc
    section = data.get("tool", {}).get("dbopt", {})
    if not isinstance(section, dict):
        raise ConfigurationError(f"[tool.dbopt] in {file} is not a table")
    return section
