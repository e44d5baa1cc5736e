"""Warehouse values -> HubSpot property values (pure, no IO).

HubSpot's CRM v3 takes every property value as a string (contracts SUMMARY §1, "Field quirks";
developers.hubspot.com/docs/faq/how-should-timestamps-be-formatted-for-hubspots-apis):

=====================  ==========================================================================
warehouse value        HubSpot property value
=====================  ==========================================================================
NULL                   not sent: HubSpot keeps the value it has (``nulls: clear`` sends ``""``,
                       which empties the property)
text                   as is
boolean                ``"true"`` / ``"false"``
integer, decimal       digits, never an exponent (``"42"``, ``"1234.50"``)
float                  shortest digits that read back as the same float, never an exponent
                       (``"0.1"``, ``"100000000000000000000"``); NaN and ±Infinity reject the record
date                   midnight UTC in epoch milliseconds (``"1430438400000"``), the only value a
                       HubSpot *date* property accepts
timestamp              epoch milliseconds (sub-millisecond digits dropped); a timestamp without
                       time zone is read as UTC
time                   ``"HH:MM:SS"`` text
array, set             items joined with ``;``: HubSpot's multi-checkbox value
                       (``"chocolate;strawberry"``); NULL items are dropped, sets are sorted
struct, map, json      JSON text
uuid, interval, bytes  text, ISO 8601 duration, base64
=====================  ==========================================================================

Formatting is a dictionary lookup on the value's exact type, so the common types cost one call
each: the delivery benchmark pushes tens of thousands of records per second through here.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Mapping, Set
from decimal import Decimal
from typing import Any

from dbt_activate.core.values import RejectedValue, iso_duration, json_default

_MS = dt.timedelta(milliseconds=1)
_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_DAY_MS = 86_400_000
_DATETIME, _DATE = dt.datetime, dt.date


UnformattableValue = RejectedValue  # a value HubSpot cannot be given


def date_ms(value: dt.date) -> int:
    """Midnight UTC of ``value`` as epoch milliseconds."""
    return (value.toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def datetime_ms(value: dt.datetime) -> int:
    """Epoch milliseconds of ``value``; naive timestamps are UTC (warehouses store UTC by convention)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return (value - _EPOCH) // _MS
    return (value - _EPOCH_UTC) // _MS


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise UnformattableValue(f"{value} is not a number HubSpot can store")
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")  # exact digits of the repr, without the exponent
    return text


def _decimal(value: Decimal) -> str:
    if not value.is_finite():
        raise UnformattableValue(f"{value} is not a number HubSpot can store")
    return format(value, "f")


def _items(value: Any) -> str:
    items = sorted(value, key=repr) if isinstance(value, Set) else value
    parts = []
    for item in items:
        text = format_value(item)
        if text is None:
            continue
        if ";" in text:
            raise UnformattableValue(f"item {text!r} contains ';', which separates multi-checkbox options")
        parts.append(text)
    return ";".join(parts)


def _json(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=json_default)
    except (TypeError, ValueError) as exc:
        raise UnformattableValue(f"cannot be written as JSON text: {exc}") from None


_BY_TYPE: dict[type, Callable[[Any], str]] = {
    str: lambda v: v,
    bool: lambda v: "true" if v else "false",
    int: int.__repr__,
    float: _float,
    Decimal: _decimal,
    dt.date: lambda v: str(date_ms(v)),
    dt.datetime: lambda v: str(datetime_ms(v)),
    dt.time: dt.time.isoformat,
    dt.timedelta: iso_duration,
    uuid.UUID: str,
    bytes: lambda v: base64.b64encode(v).decode("ascii"),
    list: _items,
    tuple: _items,
    set: _items,
    frozenset: _items,
    dict: _json,
}


def format_value(value: Any) -> str | None:
    """The HubSpot string for one warehouse value; None for NULL (the caller decides what that means)."""
    if value is None:
        return None
    convert = _BY_TYPE.get(type(value))
    if convert is not None:
        return convert(value)
    # Subclasses (numpy-like scalars, pendulum datetimes, enums of str): the first base that fits.
    for kind in (bool, int, float, Decimal, dt.datetime, dt.date, str):
        if isinstance(value, kind):
            return _BY_TYPE[kind](value)
    if isinstance(value, (bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return _json(dict(value))
    if isinstance(value, (Set, list, tuple)):
        return _items(value)
    raise UnformattableValue(f"values of type {type(value).__name__} cannot be sent to HubSpot")


def format_properties(values: Mapping[str, Any], *, clear_nulls: bool = False,
                      exclude: str | None = None) -> dict[str, str]:
    """A record's values as a HubSpot ``properties`` object.

    NULLs are left out (HubSpot then keeps its value) unless ``clear_nulls``, which sends ``""``.
    ``exclude`` is a field carried elsewhere in the request (the ``id`` of an ``idProperty`` input).
    The error names the field, so the record's rejection reason says which value was refused.
    """
    # Most values are text, sent as they are: the copy (in C) already holds them, and the loop only
    # replaces the others in place (their order is kept), which a dict insertion per value cost more than.
    properties: dict[str, str] = dict(values)
    by_type = _BY_TYPE
    for name, value in values.items():
        kind = type(value)
        if kind is str:
            continue
        if name == exclude:
            continue
        if value is None:
            if clear_nulls:
                properties[name] = ""
            else:
                del properties[name]
            continue
        try:
            # format_value, inlined for the common types: this loop runs once per value sent, and a
            # call through _BY_TYPE costs a lookup and one or two Python frames per value.
            if kind is int:
                properties[name] = str(value)  # int.__repr__: the same text for an exact int, slower
            elif kind is _DATETIME:
                # datetime_ms without its floor division of two timedeltas (half of this branch's time)
                since = value - _EPOCH if value.tzinfo is None or value.utcoffset() is None else value - _EPOCH_UTC
                properties[name] = str(since.days * _DAY_MS + since.seconds * 1000 + since.microseconds // 1000)
            elif kind is _DATE:
                properties[name] = str((value.toordinal() - _EPOCH_ORDINAL) * _DAY_MS)
            elif kind is bool:
                properties[name] = "true" if value else "false"
            elif kind is Decimal and value.is_finite():
                # str() is format(value, "f") unless it writes an exponent, and takes a third of the time
                text = str(value)
                properties[name] = format(value, "f") if "E" in text else text
            else:
                convert = by_type.get(kind)
                properties[name] = convert(value) if convert is not None else str(format_value(value))
        except UnformattableValue as exc:
            raise UnformattableValue(f"field {name!r}: {exc}") from None
    if exclude is not None:
        properties.pop(exclude, None)  # carried elsewhere in the request, whatever its value
    return properties
