"""Warehouse values -> Salesforce field values, for JSON (sObject Collections) and Bulk API CSV (pure).

The field's Salesforce type (from ``describe``) decides the form; without it (``plan``, no network)
the Python type does:

==================  =============================================================================
Salesforce type     value sent
==================  =============================================================================
date                ``YYYY-MM-DD`` (a timestamp gives its UTC date)
datetime            ISO 8601 in UTC with milliseconds and ``Z`` (``2024-05-01T10:00:00.000Z``);
                    a timestamp without time zone is read as UTC, a date as midnight UTC
time                ``HH:MM:SS.sssZ``
boolean             ``true``/``false`` (also from ``1``/``0`` and the strings ``true``/``false``)
int, double,        a JSON number (a numeric string is converted); NaN, ±Infinity, booleans
currency, percent   and other text are rejected for the record, naming the field
multipicklist       a list is joined with ``;``
text types          a string (numbers and booleans are written as text)
==================  =============================================================================

With ``nulls: clear`` a NULL is sent as ``null`` (JSON) or ``#N/A`` (Bulk CSV), which empties the
field; with ``nulls: keep`` (the default) it is left out, so it never wipes a value in Salesforce
(``drop_nulls``). An empty string is NULL in Salesforce and is treated as one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Set
from decimal import Decimal
from functools import partial
from typing import Any

from dbt_activate.core.values import as_number, is_nonfinite
from dbt_activate.delivery import JSONValue, UnencodableValue, to_json_value

NUMBER_TYPES = frozenset({"int", "long", "double", "currency", "percent"})
BULK_NULL = "#N/A"  # Bulk API 2.0: an empty cell leaves the field unchanged, #N/A empties it
_TRUE, _FALSE = frozenset({"true", "1"}), frozenset({"false", "0"})


def format_record(values: Mapping[str, Any], types: Mapping[str, str]) -> dict[str, JSONValue]:
    """Format every value for its field (``types`` is keyed by lower-case field name)."""
    out: dict[str, JSONValue] = {}
    for name, value in values.items():
        try:
            out[name] = format_value(value, types.get(name.lower()))
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    return out


def format_value(value: Any, sf_type: str | None) -> JSONValue:
    """One value in the form Salesforce reads for a field of ``sf_type`` (None: infer from Python)."""
    if value is None:
        return None
    if sf_type is None:
        return _inferred(value)
    return _FORMATS.get(sf_type, _text)(value)


def drop_nulls(values: dict[str, JSONValue], keep: frozenset[str] = frozenset()) -> dict[str, JSONValue]:
    """``values`` without NULLs (``nulls: keep``), but for the fields in ``keep``: lookup fields set by
    ``references``, where a NULL means "no parent" and empties the lookup (links.py)."""
    return {k: v for k, v in values.items() if (v is not None and v != "") or k in keep}


def csv_cell(value: JSONValue) -> str:
    """A formatted value as a Bulk API CSV cell."""
    if value is None or value == "":
        return BULK_NULL
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        raise UnencodableValue("lists and objects cannot be written to a Salesforce field")
    return str(value)


def _inferred(value: Any) -> JSONValue:
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return _time(value)
    return to_json_value(value)


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return _utc(value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise UnencodableValue(f"{value!r} is not a date (YYYY-MM-DD)")


def _datetime(value: Any) -> str:
    if isinstance(value, dt.datetime):
        moment = _utc(value)
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    elif isinstance(value, str):
        try:
            moment = _utc(dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            raise UnencodableValue(f"{value!r} is not an ISO 8601 timestamp") from None
    else:
        raise UnencodableValue(f"a {type(value).__name__} is not a timestamp")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _time(value: Any) -> str:
    if isinstance(value, dt.time):
        return value.strftime("%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, str):
        return value
    raise UnencodableValue(f"a {type(value).__name__} is not a time of day")


def _utc(value: dt.datetime) -> dt.datetime:
    # Warehouse timestamps without a time zone are UTC by convention (dbt snapshots, loaders).
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise UnencodableValue(f"{value!r} is not a boolean")


def _number(value: Any, sf_type: str) -> JSONValue:
    number = as_number(value)
    if number is None:
        kind = "boolean" if isinstance(value, bool) else type(value).__name__
        what = repr(value) if isinstance(value, str) else f"a {kind}"
        raise UnencodableValue(f"{what} is not a number (Salesforce {sf_type} field)")
    if is_nonfinite(number):
        raise UnencodableValue(f"{number} is not a number Salesforce can store")
    return to_json_value(number)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if is_nonfinite(value):
        raise UnencodableValue(f"{value} is not a value Salesforce can store")
    if isinstance(value, (dict, list, tuple, Set)):
        raise UnencodableValue(f"a {type(value).__name__} cannot be written to a text field")
    encoded = to_json_value(value)
    return str(encoded)


def _multipicklist(value: Any) -> str:
    if isinstance(value, (list, tuple, Set)):
        items = sorted(value, key=str) if isinstance(value, Set) else list(value)
        return ";".join(str(_text(v)) for v in items)
    return _text(value)


# Salesforce type -> its form, as the module's table says; any other type takes text.
_FORMATS: dict[str, Callable[[Any], JSONValue]] = {
    "date": _date, "datetime": _datetime, "time": _time, "boolean": _boolean, "multipicklist": _multipicklist,
    **{sf_type: partial(_number, sf_type=sf_type) for sf_type in NUMBER_TYPES},
}


def field_types(described: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """``{lower-case name: type}`` from the ``fields`` of a describe response."""
    return {str(f["name"]).lower(): str(f.get("type") or "string") for f in described if f.get("name")}
