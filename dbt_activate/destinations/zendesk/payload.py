"""Records -> Zendesk bulk items: standard properties at the top, the rest as custom fields (pure).

A Zendesk user (or organization) has standard properties (``name``, ``email``, ``external_id``,
``phone``, ``tags``...) and custom fields, sent by their field key in ``user_fields`` (or
``organization_fields``) [developer.zendesk.com/api-reference/ticketing/users/users/]. A mapped
field whose name is not a standard property is a custom field key.

=====================  ==========================================================================
warehouse value        Zendesk value
=====================  ==========================================================================
NULL                   ``null``: Zendesk empties the property or custom field, so the destination
                       equals the model; except ``name``, ``email`` and ``external_id``, which
                       are left out (Zendesk refuses a blank name; the others identify the user),
                       and ``tags``/``domain_names``, sent as ``[]``
text, boolean          as is (a checkbox field takes a boolean)
integer, decimal       number (a decimal too precise for a double is sent as text, with every digit)
float                  number; NaN and ±Infinity reject the record
date                   ``YYYY-MM-DD``, what a date custom field takes
timestamp, time        ISO 8601 text
array                  array (``tags``, ``domain_names``)
=====================  ==========================================================================

The identity (``external_id`` or ``email``) is always sent as text: Zendesk compares external ids
as case-insensitive strings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from dbt_activate.core.values import RejectedValue
from dbt_activate.delivery import JSONValue, UnencodableValue, to_json_value
from dbt_activate.destinations.attributes import cleared_attributes, split_attributes

USER_STANDARD = frozenset({
    "name", "email", "external_id", "phone", "role", "organization_id", "time_zone", "iana_time_zone", "locale",
    "locale_id", "details", "notes", "tags", "verified", "alias", "signature", "suspended", "shared_phone_number",
    "remote_photo_url", "default_group_id", "custom_role_id", "moderator", "only_private_comments",
    "restricted_agent", "ticket_restriction", "skip_verify_email",
})
ORG_STANDARD = frozenset({
    "name", "external_id", "details", "notes", "domain_names", "tags", "group_id", "shared_tickets",
    "shared_comments",
})
STANDARD = {"users": USER_STANDARD, "organizations": ORG_STANDARD}
CUSTOM_KEY = {"users": "user_fields", "organizations": "organization_fields"}
IDENTITIES = {"users": ("external_id", "email"), "organizations": ("external_id",)}
KEEP = frozenset({"name", "email", "external_id"})  # never sent as null
LISTS = frozenset({"tags", "domain_names"})
ID_FIELDS = frozenset({"organization_id"})  # integers in the Users API's JSON format


FormatError = RejectedValue  # a record Zendesk cannot be given


def identity_text(value: Any) -> str:
    """An identity value as Zendesk compares it ("" when missing)."""
    if value is None:
        return ""
    encoded = _json(value, "identity")
    return encoded if isinstance(encoded, str) else json.dumps(encoded)


def build_item(kind: str, values: Mapping[str, Any], identity: str) -> dict[str, Any]:
    """The bulk item of one record (``identity`` names the field that finds it)."""

    def standard_value(name: str, value: Any) -> JSONValue:
        if name in ID_FIELDS and isinstance(value, str) and value.isdigit():
            value = int(value)  # a referenced record's id, kept as text by the engine (links.py)
        return [] if value is None and name in LISTS else _json(value, name)

    item, custom = split_attributes(
        values, identity, standard=STANDARD[kind], keep=KEEP, identity_text=identity_text,
        empty=f"identity field {identity!r} is empty: the Zendesk {kind[:-1]} cannot be found",
        convert=standard_value, convert_custom=lambda name, value: _json(value, name))
    return _with_custom(kind, item, custom)


def clear_item(kind: str, identity: str, identity_value: Any, fields: Iterable[str]) -> dict[str, Any]:
    """An item that empties every mapped field but the identity and the ones Zendesk cannot blank."""
    item, custom = cleared_attributes(fields, identity, standard=STANDARD[kind], keep=KEEP,
                                      blank=lambda name: [] if name in LISTS else None)
    return _with_custom(kind, {**build_item(kind, {identity: identity_value}, identity), **item}, custom)


def _with_custom(kind: str, item: dict[str, Any], custom: dict[str, Any]) -> dict[str, Any]:
    return {**item, CUSTOM_KEY[kind]: custom} if custom else item


def _json(value: Any, name: str) -> JSONValue:
    try:
        return to_json_value(value)
    except UnencodableValue as exc:
        raise FormatError(f"field {name!r}: {exc}") from None
