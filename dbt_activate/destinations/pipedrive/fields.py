"""Pipedrive fields: which name means which v2 body property or custom field, and value formatting.

Users map model columns to Pipedrive field *names*. A name is, in this order: a v2 body property
of the object (``name``, ``emails``, ``org_id``, ``expected_close_date``; ``email`` and ``phone`` are
accepted for a person's ``emails``/``phones``), a custom field's 40-character key, or the name of a
field as ``GET /v1/{person|organization|deal}Fields`` lists it (exactly, else case-insensitively when
only one field matches). Custom fields go under ``custom_fields`` keyed by their hash, as the v2
request bodies of ``openapi-v2.yaml`` define (the persons schemas omit it, but person responses carry
it and Pipedrive accepts it; see ``shared/contracts/pipedrive/README.md``).

Values are formatted per the v2 spec: dates ``YYYY-MM-DD``; times of day ``HH:MM:SS``; timestamps as
the v2 examples show them (``2021-01-01T00:00:00Z``, UTC; naive timestamps are taken as UTC); person
``emails``/``phones`` as ``[{value, primary, label}]``; ``enum`` as one option id and ``set`` as a list
of option ids, found from the option *labels* the warehouse holds (case-insensitive; a list, or a
comma-separated string, for ``set``); ids (``owner_id``, ``org_id``, ``user``/``org``/``people``
fields) as integers. A value that cannot be formatted rejects its record, naming the field.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from dbt_activate.core.values import RejectedValue, as_number
from dbt_activate.delivery import JSONValue, UnencodableValue, to_json_value
from dbt_activate.errors import ConfigError

ENTITIES = ("persons", "organizations", "deals")
FIELDS_PATH = {"persons": "personFields", "organizations": "organizationFields", "deals": "dealFields"}
REQUIRED = {"persons": "name", "organizations": "name", "deals": "title"}  # needed to create a record
_ID, _TEXT, _NUM = "id", "text", "number"
STANDARD: dict[str, dict[str, str]] = {  # writable v2 body property -> value kind
    "persons": {"name": _TEXT, "owner_id": _ID, "org_id": _ID, "emails": "contacts", "phones": "contacts",
                "visible_to": _ID, "label_ids": "ids", "marketing_status": _TEXT},
    "organizations": {"name": _TEXT, "owner_id": _ID, "visible_to": _ID, "label_ids": "ids", "address": "address"},
    "deals": {"title": _TEXT, "owner_id": _ID, "person_id": _ID, "org_id": _ID, "pipeline_id": _ID,
              "stage_id": _ID, "value": _NUM, "currency": _TEXT, "status": _TEXT, "probability": _NUM,
              "lost_reason": _TEXT, "visible_to": _ID, "close_time": "timestamp", "won_time": "timestamp",
              "lost_time": "timestamp", "expected_close_date": "date", "label_ids": "ids",
              "is_archived": "bool", "archive_time": "timestamp"},
}
ALIASES = {"persons": {"email": "emails", "phone": "phones"}}
# The only v2 body properties whose request schemas say ``nullable: true`` (openapi-v2.yaml, POST and
# PATCH of each object). Pipedrive refuses ``null`` for every other one (``value``, ``currency``,
# ``owner_id``, ``org_id``, ``visible_to``, ``expected_close_date``...), so an empty value there is
# left out of the body: Pipedrive keeps what it holds. Lists are emptied with ``[]`` and custom
# fields with ``null`` (``custom_fields`` is an open object in the spec; null clears a custom field).
NULLABLE = {"persons": frozenset[str](), "organizations": frozenset[str](),
            "deals": frozenset({"probability", "lost_reason", "close_time"})}
_LISTS = ("contacts", "ids")
CUSTOM_KINDS = {  # custom field_type -> value kind
    "varchar": _TEXT, "varchar_auto": _TEXT, "text": _TEXT, "phone": _TEXT, "address": "address",
    "double": _NUM, "monetary": "monetary", "date": "date", "time": "time", "enum": "enum", "set": "set",
    "user": _ID, "org": _ID, "people": _ID, "visible_to": _ID, "daterange": "json", "timerange": "json",
}
SEARCHABLE_CUSTOM = ("address", "varchar", "text", "varchar_auto", "double", "monetary", "phone")
_KEY = re.compile(r"^[0-9a-f]{40}$")
_INT = re.compile(r"^-?\d+$")


FormatError = RejectedValue  # a value with no Pipedrive form for its field


@dataclass(frozen=True)
class FieldTarget:
    """Where one mapped field goes: a v2 body property, or ``custom_fields[key]``."""

    name: str  # as written in the sync's mapping
    prop: str  # v2 body property, or the custom field's 40-character key
    kind: str  # value kind (see STANDARD / CUSTOM_KINDS)
    custom: bool = False
    field_type: str = ""  # Pipedrive's field_type for custom fields
    options: Mapping[str, int] = field(default_factory=dict)  # enum/set: option label -> option id
    nullable: bool = False  # a standard property the spec lets us set to null

    @property
    def clearable(self) -> bool:
        """Whether Pipedrive takes an empty value for this field (see ``NULLABLE``)."""
        return self.custom or self.nullable or self.kind in _LISTS

    def format(self, value: Any) -> JSONValue:
        try:
            return _format(self, value)
        except (UnencodableValue, FormatError, TypeError, ValueError) as exc:
            raise FormatError(f"field {self.name!r} ({self.field_type or self.prop}): {exc}") from None


def standard_target(entity: str, name: str) -> FieldTarget | None:
    prop = ALIASES.get(entity, {}).get(name, name)
    kind = STANDARD[entity].get(prop)
    return None if kind is None else FieldTarget(name, prop, kind, nullable=prop in NULLABLE[entity])


def needs_definitions(entity: str, names: Iterable[str]) -> bool:
    """True when some name is not a v2 body property, so the fields endpoint must be read."""
    return any(standard_target(entity, n) is None for n in names)


def resolve(entity: str, names: Sequence[str], definitions: Sequence[Mapping[str, Any]], *,
            where: str, optional: Collection[str] = ()) -> dict[str, FieldTarget]:
    """Map each name to its target using the field definitions of ``/v1/{entity}Fields``.

    An unknown name is a ``ConfigError`` located at ``where`` that names the field and the object;
    unknown ``optional`` names are left out instead.
    """
    resolved: dict[str, FieldTarget] = {}
    for name in names:
        found = standard_target(entity, name) or _from_definitions(entity, name, definitions)
        if found is None and name in optional:
            continue
        if found is None:
            custom = sorted(str(d.get("name")) for d in definitions if _KEY.match(str(d.get("key") or "")))
            raise ConfigError(
                f"Pipedrive {entity} have no field {name!r}: use a v2 property "
                f"({', '.join([*STANDARD[entity], *ALIASES.get(entity, {})])}) or a field name from "
                f"{FIELDS_PATH[entity]} (custom fields: {', '.join(custom) or 'none'})",
                location=where)
        resolved[name] = found
    return resolved


def _from_definitions(entity: str, name: str, definitions: Sequence[Mapping[str, Any]]) -> FieldTarget | None:
    matches = [d for d in definitions if d.get("key") == name or d.get("name") == name]
    if not matches:
        matches = [d for d in definitions if str(d.get("name") or "").casefold() == name.casefold()]
    if len(matches) != 1:
        return None  # none, or an ambiguous case-insensitive match: the user must spell it exactly
    found = matches[0]
    key, field_type = str(found.get("key") or ""), str(found.get("field_type") or "")
    if not _KEY.match(key):  # a built-in field listed under its display name ("Email", "Organization")
        standard = standard_target(entity, key)
        return None if standard is None else FieldTarget(name, standard.prop, standard.kind,
                                                         nullable=standard.nullable)
    kind = CUSTOM_KINDS.get(field_type, "json")
    options = {str(o.get("label")): int(o["id"])
               for o in found.get("options") or [] if isinstance(o, Mapping) and "id" in o}
    return FieldTarget(name, key, kind, custom=True, field_type=field_type, options=options)


def build_body(targets: Mapping[str, FieldTarget], values: Mapping[str, Any]) -> dict[str, JSONValue]:
    """The v2 request body for ``values`` (keyed by mapped name); raises ``FormatError``.

    A NULL (``nulls: clear``) empties the field where Pipedrive takes an empty value and is left out
    where it does not (``FieldTarget.clearable``)."""
    body: dict[str, JSONValue] = {}
    custom: dict[str, JSONValue] = {}
    for name, value in values.items():
        target = targets.get(name)
        if target is None or (value is None and not target.clearable):
            continue
        formatted = target.format(value)
        if target.custom:
            custom[target.prop] = formatted
        else:
            body[target.prop] = formatted
    if custom:
        body["custom_fields"] = custom
    return body


def clear_body(entity: str, targets: Iterable[FieldTarget]) -> dict[str, JSONValue]:
    """PATCH body that empties ``targets``; the name/title is kept (Pipedrive refuses an empty one), and so
    is every property the spec does not let us empty (``FieldTarget.clearable``)."""
    body: dict[str, JSONValue] = {}
    custom: dict[str, JSONValue] = {}
    for target in targets:
        if target.custom:
            custom[target.prop] = None
        elif target.prop != REQUIRED[entity] and target.clearable:
            body[target.prop] = [] if target.kind in _LISTS else None
    if custom:
        body["custom_fields"] = custom
    return body


def _format(target: FieldTarget, value: Any) -> JSONValue:
    kind = target.kind
    if value is None:
        return [] if kind in _LISTS else None
    if kind == _TEXT:
        return value if isinstance(value, str) else _text(value)
    if kind == _ID:
        return _integer(value)
    if kind == _NUM or (kind == "monetary" and not isinstance(value, Mapping)):
        return _number(value)
    if kind == "ids":
        return [_integer(v) for v in _items(value)]
    if kind == "contacts":
        items = [value] if isinstance(value, str) else list(value)
        texts = [t for t in (_text(v).strip() for v in items if v is not None) if t]
        return [{"value": t, "primary": i == 0, "label": "work"} for i, t in enumerate(texts)]
    if kind == "address":
        return {"value": value} if isinstance(value, str) else to_json_value(value)
    if kind == "date":
        return _date(value)
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "time":
        return _time(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise FormatError(f"expects true or false, got {value!r}")
    if kind == "enum":
        return _option(target, value)
    if kind == "set":
        return [_option(target, v) for v in _items(value)]
    return to_json_value(value)  # monetary {value, currency}, daterange/timerange objects, unknown types


def _items(value: Any) -> list[Any]:
    """A list value: a list/tuple/set as is, a string split on commas (empty parts dropped)."""
    if isinstance(value, str):
        return [part for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    encoded = to_json_value(value)
    return encoded if isinstance(encoded, str) else str(encoded)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise FormatError(f"expects an integer id, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, (float, Decimal)) and value == int(value):
        return int(value)
    if isinstance(value, str) and _INT.match(value.strip()):
        return int(value.strip())
    raise FormatError(f"expects an integer id, got {value!r}")


def _number(value: Any) -> int | float:
    number = as_number(value)
    if number is None:
        raise FormatError(f"expects a number, got {value!r}")
    encoded = to_json_value(number)  # refuses NaN and infinities
    if isinstance(encoded, str):  # a decimal with more digits than a double holds
        return float(encoded)
    assert isinstance(encoded, (int, float))
    return encoded


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        stamp: dt.datetime = value if value.tzinfo is None else value.astimezone(dt.timezone.utc)
        return stamp.date().isoformat()
    if isinstance(value, dt.date):
        day: dt.date = value
        return day.isoformat()
    if isinstance(value, str):
        return dt.date.fromisoformat(value.strip()[:10]).isoformat()
    raise FormatError(f"expects a date, got {value!r}")


def _timestamp(value: Any) -> str:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if isinstance(value, dt.datetime):
        stamp: dt.datetime = value
        if stamp.tzinfo is not None:
            stamp = stamp.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise FormatError(f"expects a timestamp, got {value!r}")


def _time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.time()
    if isinstance(value, str):
        value = dt.time.fromisoformat(value.strip())
    if isinstance(value, dt.time):
        moment: dt.time = value
        return moment.strftime("%H:%M:%S")
    raise FormatError(f"expects a time of day, got {value!r}")


def _option(target: FieldTarget, value: Any) -> int:
    if isinstance(value, str):
        wanted = value.strip().casefold()
        for label, option_id in target.options.items():
            if label.casefold() == wanted:
                return option_id
    is_id = not isinstance(value, bool) and isinstance(value, (int, str)) and _INT.match(str(value).strip())
    if is_id and int(value) in target.options.values():
        return int(value)
    labels = ", ".join(sorted(target.options)) or "none"
    raise FormatError(f"{value!r} is not an option (options: {labels})")
