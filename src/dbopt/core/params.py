"""Parameter policies (redact, keep, drop) and JSON-safe conversion."""

from __future__ import annotations

import decimal
import itertools
import uuid
from collections.abc import Mapping
from typing import Any

from dbopt._json import jsonable, key_text
from dbopt.errors import ConfigurationError

__all__ = ["apply_policy", "check_policy", "estimate_size", "jsonable", "redact"]

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
    try:
        if cls is dict or (
            cls is not tuple and cls is not list and isinstance(parameters, Mapping)
        ):
            return {key_text(k): _placeholder(v) for k, v in parameters.items()}
        if cls is tuple or cls is list or isinstance(parameters, (list, tuple)):
            return [
                redact(p)
                if type(p) not in _SCALARS and isinstance(p, (Mapping, list, tuple))
                else _placeholder(p)
                for p in parameters
            ]
    except Exception:  # noqa: BLE001 - a hostile container: its type is all we say
        return _placeholder(parameters)
    return _placeholder(parameters)


def apply_policy(parameters: Any, policy: str) -> Any:
    """Apply a parameter policy: ``"keep"`` as is, ``"redact"`` types only, ``"drop"`` None."""
    if policy == "keep":
        return parameters
    if policy == "drop":
        return None
    return redact(parameters)


def estimate_size(value: Any, _depth: int = 0) -> int:
    """Rough bytes ``value`` holds (strings and bytes by length, 16 per other value); never raises.

    Containers are walked to depth 3 and their first 1000 items; what lies
    past that counts 16 bytes each, so the cost is bounded too.
    """
    try:
        if isinstance(value, (str, bytes, bytearray)):
            return 56 + len(value)
        if _depth < 3 and isinstance(value, Mapping):
            items = list(itertools.islice(value.items(), 1000))
            extra = max(0, len(value) - len(items)) * 16
            return (
                64
                + extra
                + sum(estimate_size(k, _depth + 1) + estimate_size(v, _depth + 1) for k, v in items)
            )
        if _depth < 3 and isinstance(value, (list, tuple)):
            head = value[:1000]
            return (
                56 + (len(value) - len(head)) * 16 + sum(estimate_size(v, _depth + 1) for v in head)
            )
    except Exception:  # noqa: BLE001 - a hostile container
        return 64
    return 16
