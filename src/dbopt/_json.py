"""JSON-safe conversion of any value, for events, findings and reports (base layer)."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import math
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = ["FieldsDict", "jsonable", "key_text"]


class FieldsDict:
    """Mixin for a dataclass whose JSON form is its fields, in order, under their names.

    ``to_dict()`` gives tuples and lists as lists (nested ones too), mappings
    as dicts (copies), dates and times as ISO text, a value's own
    ``to_dict()`` where it has one, and rounds the fields named in
    ``_ROUND`` to that many decimal places (None stays None). A class that
    renames, adds or leaves out keys builds on ``super().to_dict()``.
    """

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]
    #: Field name → decimal places its float is rounded to.
    _ROUND: ClassVar[Mapping[str, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = {name for c in cls.__mro__ for name in vars(c).get("__annotations__", {})}
        unknown = sorted(set(cls._ROUND) - declared)
        if unknown:
            raise TypeError(f"{cls.__name__}._ROUND names no field: {', '.join(unknown)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields."""
        names = _FIELD_NAMES.get(type(self))
        if names is None:
            names = _FIELD_NAMES[type(self)] = tuple(f.name for f in dataclasses.fields(self))
        digits = self._ROUND
        return {name: _field_value(getattr(self, name), digits.get(name)) for name in names}


#: Field names by class, read once (``dataclasses.fields`` costs more than the dict).
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}
_AS_IS = frozenset({str, int, float, bool, type(None)})


def _field_value(value: Any, digits: int | None) -> Any:
    if type(value) in _AS_IS:
        return value if digits is None or value is None else round(value, digits)
    if digits is not None:
        return round(value, digits)
    if type(value) in (tuple, list):
        return [_field_value(v, None) for v in value]
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    to_dict = getattr(value, "to_dict", None)
    return value if to_dict is None else to_dict()


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
