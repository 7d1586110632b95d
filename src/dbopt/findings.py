"""``Finding``: one problem a check found; ``FindingsReport``: what every checker returns.

Every checker in dbopt (``lint``, ``health``, ``migrations.check``,
``schema.diff``, ``pool.check``) returns a :class:`FindingsReport`: the
findings it kept, the ones it suppressed, the rules that could not run, and
one set of methods to query and render them. A finding is data: render it
with ``str(finding)`` for one line, or ``finding.to_dict()`` for JSON, SARIF
and HTML reports.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, overload

from dbopt._json import jsonable
from dbopt.errors import ConfigurationError

if TYPE_CHECKING:
    from dbopt._sarif import RuleDoc

__all__ = ["Finding", "FindingsReport", "Severity", "register_codes"]


class _Coded(Protocol):
    @property
    def code(self) -> str: ...


_Rule = TypeVar("_Rule", bound=_Coded)


def register_codes(registry: dict[str, _Rule], rules: Iterable[_Rule], kind: str) -> None:
    """Add ``rules`` (lint rules, health checks) to ``registry`` by their codes.

    A code that is there already raises :class:`~dbopt.ConfigurationError`
    ("``kind`` CODE registered twice").
    """
    for rule in rules:
        if rule.code in registry:
            raise ConfigurationError(f"{kind} {rule.code} registered twice")
        registry[rule.code] = rule


class Severity(str, enum.Enum):
    """How bad a finding is, ordered ``info < warning < error``.

    Members compare with each other and with their names as strings:
    ``Severity.WARNING >= "info"`` is true.
    """

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for error."""
        return _RANK[self.value]

    @classmethod
    def parse(cls, value: Severity | str) -> Severity:
        """The member for ``value`` (a member or ``"info"``/``"warning"``/``"error"``)."""
        if isinstance(value, Severity):
            return value
        try:
            return cls(value.lower())
        except (ValueError, AttributeError):
            raise ConfigurationError(
                f"unknown severity {value!r}; expected one of: info, warning, error"
            ) from None

    def _other_rank(self, other: object) -> int | None:
        if isinstance(other, Severity):
            return other.rank
        if isinstance(other, str) and other.lower() in _RANK:
            return _RANK[other.lower()]
        return None

    def __lt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank < rank

    def __le__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank <= rank

    def __gt__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank > rank

    def __ge__(self, other: object) -> bool:
        rank = self._other_rank(other)
        return NotImplemented if rank is None else self.rank >= rank

    def __str__(self) -> str:
        return self.value


_RANK = {"info": 0, "warning": 1, "error": 2}


@dataclass(frozen=True)
class Finding:
    """One problem found by a check.

    * ``code``: stable rule code (``"POOL001"``); tools filter and suppress by it.
    * ``severity``: a :class:`Severity` (a plain ``"warning"`` is converted).
    * ``object``: what the finding is about (``"pool"``, ``"public.users"``).
    * ``message``: one line saying what is wrong.
    * ``why``: why it matters (what breaks, and when).
    * ``fix``: how to fix it (SQL or a configuration snippet), or None.
    * ``metadata``: the measured values behind the finding (JSON-friendly).
    """

    code: str
    severity: Severity
    object: str
    message: str
    why: str
    fix: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity.parse(self.severity))
        if not self.code:
            raise ConfigurationError("a finding needs a code")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: every field, severity as its name, metadata made JSON-safe."""
        return {
            "code": self.code,
            "severity": self.severity.value,
            "object": self.object,
            "message": self.message,
            "why": self.why,
            "fix": self.fix,
            "metadata": {str(k): jsonable(v) for k, v in self.metadata.items()},
        }

    def __str__(self) -> str:
        return f"{self.code} {self.severity.value} {self.object}: {self.message}"


class FindingsReport:
    """The shape every checker's report shares (lint, health, migrations, drift, pool).

    Attributes (subclasses define them as dataclass fields or properties):

    * ``findings``: the kept findings, a list of :class:`Finding`;
    * ``suppressed``: findings dropped by ``suppress=`` or inline ignores;
    * ``errors``: what could not be checked (rule code, file or query ->
      why), e.g. a statement timeout; those produced no findings.

    It reads like the list of its findings: iterating yields them, ``len()``
    counts them, ``report[0]`` indexes them, ``bool(report)`` is true when
    there is at least one (so ``if report:`` means "found something"; use
    :attr:`ok` for pass/fail), and a report equals a list or tuple of the
    same findings. :meth:`codes` is a ``frozenset`` everywhere.
    """

    #: The severity at or above which :meth:`failed` is true by default
    #: (the CLI's default ``--fail-on`` for this checker).
    default_fail_on: ClassVar[Severity] = Severity.ERROR

    findings: Sequence[Finding]
    suppressed: Sequence[Finding]
    errors: Mapping[str, str]

    # Querying

    def codes(self) -> frozenset[str]:
        """The codes that have at least one kept finding."""
        return frozenset(f.code for f in self.findings)

    def of(self, code: str) -> list[Finding]:
        """Kept findings of rule ``code`` (or rule name, from ``metadata["rule"]``)."""
        return [f for f in self.findings if code in (f.code, f.metadata.get("rule"))]

    @property
    def worst(self) -> Severity | None:
        """The highest severity among kept findings (None when there are none)."""
        return max((f.severity for f in self.findings), default=None, key=lambda s: s.rank)

    def by_severity(self) -> dict[Severity, list[Finding]]:
        """Kept findings by severity: keys ``error``, ``warning``, ``info``, all present."""
        out: dict[Severity, list[Finding]] = {s: [] for s in _WORST_FIRST}
        for f in self.findings:
            out[f.severity].append(f)
        return out

    def failed(self, fail_on: Severity | str | None = None) -> bool:
        """True when a kept finding is at or above ``fail_on`` (default :attr:`default_fail_on`)."""
        limit = self.default_fail_on if fail_on is None else Severity.parse(fail_on)
        return any(f.severity >= limit for f in self.findings)

    @property
    def ok(self) -> bool:
        """Nothing at or above :attr:`default_fail_on`, and every rule could run."""
        return not self.failed() and not self.errors

    # Rendering

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: ``ok``, ``summary`` counts, ``findings``, ``suppressed``, ``errors``.

        Subclasses add their own keys (``checks``, ``files``, ``tables`` ...).
        """
        grouped = self.by_severity()
        return {
            "ok": self.ok,
            "summary": {
                "total": len(self.findings),
                **{s.value: len(grouped[s]) for s in _WORST_FIRST},
            },
            "findings": [f.to_dict() for f in self.findings],
            "suppressed": [f.to_dict() for f in self.suppressed],
            "errors": dict(self.errors),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent, default=str, ensure_ascii=False)

    def to_sarif(
        self, *, rules: Mapping[str, RuleDoc] | None = None, artifact: str | None = None
    ) -> dict[str, Any]:
        """The kept findings as a SARIF 2.1.0 log (see :func:`dbopt.report.sarif.to_sarif`).

        ``rules`` describes the codes (each checker's ``RULES``); without it a
        code is described by its first finding.
        """
        from dbopt._sarif import to_sarif

        return to_sarif(self.findings, rules=rules, artifact=artifact)

    # The list of findings

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    def __bool__(self) -> bool:
        return len(self.findings) > 0

    @overload
    def __getitem__(self, index: int) -> Finding: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Finding]: ...
    def __getitem__(self, index: int | slice) -> Finding | Sequence[Finding]:
        return self.findings[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple)):
            return list(self.findings) == list(other)
        if isinstance(other, FindingsReport):
            return type(self) is type(other) and self.to_dict() == other.to_dict()
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


_WORST_FIRST = (Severity.ERROR, Severity.WARNING, Severity.INFO)
