"""Private by default: the values in report data, masked before it is written.

Reports and JSON exports carry statement texts from the application (saved
QueryStats, advisor results) and from the server (``pg_stat_activity`` in
health findings). :func:`private_data` masks the literals of every such text
and replaces example parameters by their types, unless the user asked for
``params="keep"``.
"""

from __future__ import annotations

from typing import Any

from dbopt.core.fingerprint import mask_literals
from dbopt.core.params import check_policy, redact

__all__ = ["SQL_KEYS", "private_data"]

#: Keys whose string values (or lists of strings) are SQL texts.
SQL_KEYS = frozenset({"sql", "query", "blocker_query", "example_sql"})
_PARAM_KEYS = frozenset({"example_params"})


def private_data(data: Any, params: str = "redact", _depth: int = 0) -> Any:
    """A copy of ``data`` (dicts, lists, scalars) with the values of its SQL texts
    masked and its parameters redacted; ``params="keep"`` returns ``data`` as is."""
    policy = check_policy(params)
    if policy == "keep":
        return data
    if _depth > 50:
        return None
    if isinstance(data, dict):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if key in SQL_KEYS:
                out[key] = _mask(value)
            elif key in _PARAM_KEYS:
                out[key] = redact(value) if policy == "redact" else None
            else:
                out[key] = private_data(value, policy, _depth + 1)
        return out
    if isinstance(data, (list, tuple)):
        return [private_data(item, policy, _depth + 1) for item in data]
    return data


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_literals(value)
    if isinstance(value, (list, tuple)):
        return [_mask(item) for item in value]
    return value
