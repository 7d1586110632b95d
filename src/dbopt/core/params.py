"""Parameter policies (redact, keep, drop) and JSON-safe conversion."""

from __future__ import annotations

import decimal
import uuid
from collections.abc import Mapping
from typing import Any

from dbopt._json import jsonable
from dbopt.errors import ConfigurationError

__all__ = ["apply_policy", "check_policy", "jsonable", "redact"]

_POLICIES = ("redact", "keep", "drop")


def check_policy(policy: str) -> str:
    """Return ``policy`` if valid, else raise :class:`ConfigurationError`."""
    if policy not in _POLICIES:
        raise ConfigurationError(f"params policy must be one of {_POLICIES}, got {policy!r}")
    return policy


#: type → its ``<name>`` marker; types are few, so this stays small.
_markers: dict[type, str] = {}
#: Types that are never containers: no isinstance() against an ABC for them.
_SCALARS = frozenset({int, float, str, bool, bytes, type(None), decimal.Decimal, uuid.UUID})


def _placeholder(value: Any) -> str:
    if value is None:
        return "None"
    cls = type(value)
    marker = _markers.get(cls)
    if marker is None:
        marker = f"<{cls.__name__}>"
        if len(_markers) < 1024:
            _markers[cls] = marker
    return marker


def redact(parameters: Any) -> Any:
    """Replace every value by a ``<type>`` marker, keeping the shape.

    The result holds only strings, lists, dicts and None: it is JSON-safe.
    """
    if parameters is None:
        return None
    cls = type(parameters)
    if cls is dict or (cls is not tuple and cls is not list and isinstance(parameters, Mapping)):
        return {str(k): _placeholder(v) for k, v in parameters.items()}
    if cls is tuple or cls is list or isinstance(parameters, (list, tuple)):
        return [
            redact(p)
            if type(p) not in _SCALARS and isinstance(p, (Mapping, list, tuple))
            else _placeholder(p)
            for p in parameters
        ]
    return _placeholder(parameters)


def apply_policy(parameters: Any, policy: str) -> Any:
    """Apply a parameter policy: ``"keep"`` as is, ``"redact"`` types only, ``"drop"`` None."""
    if policy == "keep":
        return parameters
    if policy == "drop":
        return None
    return redact(parameters)
