"""``Finding``: one problem a check found, with why it matters and how to fix it.

Every checker in dbopt (pool check, schema lint, health report, ...) returns
a list of findings. A finding is data: render it with ``str(finding)`` for one
line, or ``finding.to_dict()`` for JSON, SARIF and HTML reports.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbopt._json import jsonable
from dbopt.errors import ConfigurationError

__all__ = ["Finding", "Severity"]


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
