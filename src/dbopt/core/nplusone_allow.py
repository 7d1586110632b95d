"""Allowlist rules for the N+1 detector: which findings are expected and not reported.

A rule names one or more things a finding must match: its statement (a
glob over the normalized SQL, or the exact fingerprint), a call-site file or
function anywhere in its stack, its relationship, or its kind. Rules are
checked only when a scope ends, against the few candidate findings, so
they cost nothing per statement.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, get_args

from dbopt.core.fingerprint import fingerprint_info, normalize
from dbopt.core.nplusone_findings import FindingKind
from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt.core.events import CallSite
    from dbopt.core.nplusone_findings import NPlusOneFinding

__all__ = ["NPlusOneAllow", "parse_allow"]

_KINDS = get_args(FindingKind)
_GLOB = frozenset("*?[")


@dataclass(frozen=True, slots=True, repr=False)
class NPlusOneAllow:
    """One allowlist rule; a finding that matches every given field is not reported.

    * ``sql``: a glob over the normalized statement; the pattern is normalized
      the same way, so ``"SELECT * FROM pages ORDER BY id LIMIT ? OFFSET ?"``
      matches whatever literals or placeholders the real statement had, and
      ``"*legs*"`` matches inside an identifier (``pro_legs``).
    * ``fingerprint``: the exact fingerprint (``QueryEvent.fingerprint``).
    * ``path``: a file of any frame of the finding's stack: a path suffix
      (``"app/reports.py"``) or a glob (``"*/reports/*.py"``), with an optional
      ``":line"``.
    * ``function``: a function name (glob) of any frame of the stack.
    * ``relationship``: ``"User.posts"`` (glob, e.g. ``"Audit.*"``).
    * ``kind``: ``"n_plus_one"``, ``"repeated_query"``, or one of the opt-in
      checks' kinds (``"write_loop"``, ``"unbounded_query"``, ``"cartesian_product"``), or
      ``"unused_eager_load"`` (:func:`dbopt.eager.unused_eager_loads`).
    * ``reason``: free text for the next reader; never matched.

    String entries in ``NPlusOneDetector(allow=[...])`` are parsed with
    :func:`parse_allow`: ``"sql:..."``, ``"fingerprint:..."``, ``"path:..."``,
    ``"function:..."``, ``"relationship:..."``, ``"kind:..."``.
    """

    sql: str | None = None
    fingerprint: str | None = None
    path: str | None = None
    function: str | None = None
    relationship: str | None = None
    kind: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        criteria = [f.name for f in fields(self) if f.name != "reason"]
        if all(getattr(self, name) is None for name in criteria):
            raise ConfigurationError(
                f"an NPlusOneAllow rule needs at least one of {', '.join(criteria)}"
            )
        if self.kind is not None and self.kind not in _KINDS:
            raise ConfigurationError(f"kind must be one of {_KINDS}, got {self.kind!r}")

    def matches(self, finding: NPlusOneFinding) -> bool:
        """Whether ``finding`` matches every field this rule sets."""
        if self.kind is not None and finding.kind != self.kind:
            return False
        if self.fingerprint is not None and finding.fingerprint != self.fingerprint:
            return False
        if self.relationship is not None and (
            finding.relationship is None
            or not fnmatch.fnmatchcase(finding.relationship, self.relationship)
        ):
            return False
        if self.sql is not None and not fnmatch.fnmatchcase(
            fingerprint_info(finding.sql).normalized, _normalized_pattern(self.sql)
        ):
            return False
        if self.function is not None and not any(
            fnmatch.fnmatchcase(frame.function, self.function) for frame in finding.stack
        ):
            return False
        return self.path is None or any(_path_matches(frame, self.path) for frame in finding.stack)

    def __repr__(self) -> str:
        parts = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) is not None
        ]
        return f"NPlusOneAllow({', '.join(parts)})"


def _normalized_pattern(pattern: str) -> str:
    """``pattern`` normalized like a statement, its ``*`` wildcards kept where they were.

    Each piece between two ``*`` is normalized on its own, and a space is put
    beside a ``*`` only where the pattern had one: ``"*legs*"`` matches inside
    the identifier ``pro_legs``, ``"select * from t *"`` stays as written.
    """
    out: list[str] = []
    for piece in pattern.split("*"):
        text = normalize(piece)[0] if piece.strip() else ""
        if text:
            if piece[:1].isspace():
                text = " " + text
            if piece[-1:].isspace():
                text += " "
        elif piece:
            text = " "
        out.append(text)
    return "*".join(out)


def _split_line(pattern: str) -> tuple[str, int | None]:
    head, sep, tail = pattern.rpartition(":")
    if sep and tail.isdigit() and head:
        return head, int(tail)
    return pattern, None


def _path_matches(frame: CallSite, pattern: str) -> bool:
    path_pattern, line = _split_line(pattern.replace("\\", "/"))
    if line is not None and frame.line != line:
        return False
    file = frame.file.replace("\\", "/")
    if _GLOB.intersection(path_pattern):
        return fnmatch.fnmatchcase(file, path_pattern) or fnmatch.fnmatchcase(
            file, "*/" + path_pattern.lstrip("/")
        )
    return file == path_pattern or file.endswith("/" + path_pattern.lstrip("/"))


_PREFIXES = ("sql", "fingerprint", "path", "function", "relationship", "kind")


def parse_allow(entry: str | NPlusOneAllow) -> NPlusOneAllow:
    """An :class:`NPlusOneAllow` from ``"<field>:<pattern>"`` (or the rule itself).

    Raises :class:`~dbopt.errors.ConfigurationError` for an unknown field or
    an empty pattern, naming the fields it accepts.
    """
    if isinstance(entry, NPlusOneAllow):
        return entry
    if not isinstance(entry, str):
        raise ConfigurationError(f"an allowlist entry must be a string or NPlusOneAllow: {entry!r}")
    field, sep, value = entry.partition(":")
    field = field.strip().lower()
    value = value.strip()
    if not sep or field not in _PREFIXES or not value:
        raise ConfigurationError(
            f"cannot read allowlist entry {entry!r}: write '<field>:<pattern>' with field one of "
            f"{', '.join(_PREFIXES)} (e.g. 'relationship:User.posts', 'function:paginate', "
            "'path:app/reports.py:42'), or pass a dbopt.NPlusOneAllow"
        )
    return NPlusOneAllow(**{field: value})
