"""JSON-safe conversion of any value, for events, findings and reports (base layer)."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Mapping
from typing import Any

__all__ = ["jsonable", "key_text"]


def jsonable(value: Any, _depth: int = 0) -> Any:
    """Convert parameters to JSON-safe values; never raises.

    datetime/date/time → ISO strings, Decimal and UUID → strings, bytes →
    ``{"$bytes": base64}``, mappings and sequences recursively, NaN and
    infinities → their ``repr`` (JSON has neither), anything else → ``repr``.
    """
    try:
        return _jsonable(value, _depth)
    except Exception:  # noqa: BLE001 - a hostile mapping or sequence must not break output
        return f"<unrepresentable {type(value).__name__}>"


def _jsonable(value: Any, _depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        # JSON has no NaN nor Infinity: json.dumps(allow_nan=False) must succeed.
        return value if math.isfinite(value) else repr(float(value))
    if _depth > 20:
        return repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (decimal.Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Mapping):
        return {key_text(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, _depth + 1) for v in value]
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not break logging
        return f"<unrepresentable {type(value).__name__}>"


def key_text(key: Any) -> str:
    """A mapping key as a string; never raises."""
    if type(key) is str:
        return key
    try:
        return str(key)
    except Exception:  # noqa: BLE001 - a hostile __str__
        return f"<{type(key).__name__}>"
