"""Records -> Intercom contact bodies: standard attributes at the top, the rest as custom_attributes (pure).

Intercom's contact (``POST /contacts``, ``PUT /contacts/{id}``; contracts SUMMARY §6, spec
``intercom/Intercom-OpenAPI descriptions/2.14/api.intercom.io.yaml``) has a few standard attributes
(``role``, ``external_id``, ``email``, ``phone``, ``name``, ``avatar``, ``signed_up_at``,
``last_seen_at``, ``owner_id``, ``unsubscribed_from_emails``); every other mapped field is a custom
data attribute, sent in ``custom_attributes`` under its name.

=====================  ==========================================================================
warehouse value        Intercom value
=====================  ==========================================================================
NULL                   ``null``, which empties the attribute (the identity and ``role`` are left
                       out instead)
text, boolean          as is
integer                number
decimal, float         number (integral decimals as integers); NaN and ±Infinity reject the record
date, timestamp        Unix seconds (Intercom's date type; a date is midnight UTC, a timestamp
                       without time zone is read as UTC)
time, uuid             text
array, struct, json    refused: Intercom attributes hold text, numbers, booleans and dates only
=====================  ==========================================================================
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from dbt_activate.core.values import RejectedValue
from dbt_activate.destinations.attributes import cleared_attributes, split_attributes

STANDARD = frozenset({"role", "external_id", "email", "phone", "name", "avatar", "signed_up_at", "last_seen_at",
                      "owner_id", "unsubscribed_from_emails"})
IDENTITIES = ("external_id", "email")
_KEEP = frozenset({"role", "external_id", "email"})  # never sent as null: they identify the contact
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


FormatError = RejectedValue  # a record Intercom cannot be given


def value_of(value: Any, name: str) -> Any:
    """One warehouse value as Intercom takes it (see the module table)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise FormatError(f"field {name!r} is {value}: NaN and infinite numbers cannot be sent to Intercom")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise FormatError(f"field {name!r} is {value}: NaN and infinite numbers cannot be sent to Intercom")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None and value.utcoffset() is not None else value.replace(
            tzinfo=dt.timezone.utc)
        return int((aware - _EPOCH).total_seconds())
    if isinstance(value, dt.date):
        return int((dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc) - _EPOCH).total_seconds())
    if isinstance(value, (dt.time, uuid.UUID)):
        return str(value)
    raise FormatError(f"field {name!r}: a {type(value).__name__} cannot be sent to Intercom (attributes hold "
                      "text, numbers, booleans and dates)")


def identity_text(value: Any) -> str:
    """A match value as Intercom compares it ("" when missing)."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value).strip()


def build_body(values: Mapping[str, Any], identity: str, role: str) -> dict[str, Any]:
    """The create/update body of one record; the identity is sent as text."""
    body, custom = split_attributes(
        values, identity, standard=STANDARD, keep=_KEEP, identity_text=identity_text,
        empty=f"match field {identity!r} is empty: the Intercom contact cannot be found",
        convert=lambda name, raw: value_of(raw, name))
    return _with_custom({"role": role, **body}, custom)


def clear_body(fields: Iterable[str], identity: str) -> dict[str, Any]:
    """An update body that empties every mapped attribute but the identifying ones."""
    return _with_custom(*cleared_attributes(fields, identity, standard=STANDARD, keep=_KEEP))


def _with_custom(body: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    return {**body, "custom_attributes": custom} if custom else body
