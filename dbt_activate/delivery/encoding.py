"""Warehouse values -> JSON values, the same way for every JSON destination (pure).

=====================  ==================================================================
warehouse value        JSON
=====================  ==================================================================
NULL                   ``null``
boolean, integer       ``true``/``false``, number (integers of any size stay numbers)
float                  number; NaN and ±Infinity are not JSON: the record is rejected
decimal                number when a 64-bit float holds it to its written digits (so every
                       JSON parser reads the same value), else a string with every digit
                       (``"12345678901234567890.01"``); NaN/Infinity rejected
date, time, timestamp  ISO 8601 string (``2024-05-01``, ``2024-05-01T12:00:00+00:00``); a
                       timestamp with a time zone in UTC, whatever the session's zone (DuckDB
                       hands them over in the machine's), one without a time zone without
                       an offset
interval               ISO 8601 duration string (``P1DT3600S``), as the file destination writes
uuid                   string
binary                 base64 string
array, struct, json    array, object (values converted by the same rules); a set becomes a
                       sorted array, so the same set always sends the same bytes
=====================  ==================================================================

Any other type is rejected with its type name rather than sent as an unreadable ``repr``.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import math
import uuid
from collections.abc import Callable, Mapping, Set
from decimal import Decimal
from types import MappingProxyType
from typing import Any, TypeAlias

import orjson

from dbt_activate.core.values import RejectedValue, double_or_text, in_utc, iso_duration

JSONValue: TypeAlias = "bool | int | float | str | list[JSONValue] | dict[str, JSONValue] | None"

UnencodableValue = RejectedValue  # a value has no faithful JSON form


def to_json_value(value: Any) -> JSONValue:
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)  # IntEnum and numpy-like ints become plain ints
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnencodableValue(f"{value} is not a JSON number")
        return value
    if isinstance(value, Decimal):
        return double_or_text(value, "is not a JSON number")
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return in_utc(value).isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, Set):
        return [to_json_value(v) for v in sorted(value, key=repr)]
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    raise UnencodableValue(f"values of type {type(value).__name__} cannot be sent as JSON")


def vendor_json_value(value: Any, date_value: Callable[[dt.date], JSONValue], *, number: str) -> JSONValue:
    """``to_json_value`` for a vendor with its own form of dates and timestamps: ``date_value`` turns
    each date or datetime (inside lists and mappings too); NaN and infinities are refused as not
    ``number`` (e.g. "a JSON number")."""
    if isinstance(value, dt.date):
        return date_value(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise UnencodableValue(f"{value} is not {number}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise UnencodableValue(f"decimal {value} is not {number}")
    if isinstance(value, (list, tuple)):
        return [vendor_json_value(v, date_value, number=number) for v in value]
    if isinstance(value, Mapping):
        return {str(k): vendor_json_value(v, date_value, number=number) for k, v in value.items()}
    return to_json_value(value)


def encode_record(values: Mapping[str, Any]) -> dict[str, JSONValue]:
    """Convert one record's values; the error names the field so the rejection reason is useful."""
    encoded: dict[str, JSONValue] = {}
    for name, value in values.items():
        try:
            encoded[name] = to_json_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    return encoded


def json_body(body: JSONValue | Mapping[str, Any]) -> bytes:
    """A request body of JSON values as compact UTF-8 JSON: the bytes ``json.dumps(body,
    ensure_ascii=False, separators=(",", ":"))`` gives (but for float exponents, ``1.5e-7`` instead of
    ``1.5e-07``), about 15 times faster: a 100-record HubSpot batch in 0.06 ms instead of 0.95 ms,
    9 CPU-seconds of a 1M-row sync."""
    return orjson.dumps(body)


# The header that goes with a JSON request body (``json_body``).
JSON_HEADERS: Mapping[str, str] = MappingProxyType({"Content-Type": "application/json"})
