"""Rows -> Klaviyo ``profile`` resources for bulk import jobs (pure: a record in, a resource out).

The identifiers (``email``, ``phone_number``, ``external_id``) must not be empty and are sent as
text, like Klaviyo's standard attributes (``first_name``, ``last_name``, ``organization``…);
location fields (``address1``, ``city``, ``country``, ``latitude``…) go under ``location``
(``latitude`` and ``longitude`` as finite numbers, the rest as text), every other field under
``properties`` as JSON. A NULL is left out (Klaviyo keeps its value) unless NULLs clear, when it
is sent as ``null``; a CLEAR sends every ``cleared`` field as ``null``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from dbt_activate.core.types import Record
from dbt_activate.delivery import UnencodableValue, to_json_value

IDENTIFIERS = ("email", "phone_number", "external_id")
STANDARD = (*IDENTIFIERS, "anonymous_id", "first_name", "last_name", "organization", "locale", "title", "image")
LOCATION = ("address1", "address2", "city", "country", "region", "zip", "timezone", "ip", "latitude", "longitude")
_NUMBERS = ("latitude", "longitude")


def profile_for(record: Record, identifiers: Sequence[str], *, clear_nulls: bool = False,
                cleared: Sequence[str] = ()) -> dict[str, Any]:
    """The ``profile`` resource of ``record``; ``cleared`` fields are sent as ``null`` (CLEAR)."""
    attributes: dict[str, Any] = {}
    location: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    for name in identifiers:
        value = record.values.get(name)
        if value is None or not str(value).strip():
            raise UnencodableValue(f"identifier {name!r} is empty")
        attributes[name] = _text(value)
    values: Mapping[str, Any] = dict.fromkeys(cleared) if cleared else record.values
    for name, value in values.items():
        if name in identifiers or (value is None and not (clear_nulls or cleared)):
            continue
        try:
            if name in STANDARD:
                attributes[name] = None if value is None else _text(value)
            elif name in LOCATION:
                location[name] = None if value is None else (_number(value) if name in _NUMBERS else _text(value))
            else:
                properties[name] = to_json_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    if location:
        attributes["location"] = location
    if properties:
        attributes["properties"] = properties
    return {"type": "profile", "attributes": attributes}


def _text(value: Any) -> str:
    converted = to_json_value(value)
    return converted if isinstance(converted, str) else json.dumps(converted, ensure_ascii=False)


def _number(value: Any) -> Any:
    converted = to_json_value(value)
    if isinstance(converted, float) and not math.isfinite(converted):
        raise UnencodableValue(f"{value} is not a number")
    return converted
