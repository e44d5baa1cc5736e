"""The HubSpot emulator's records: per object type, with unique-value indexes and search filters.

Not thread-safe by itself: the emulator holds its lock around every call.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from dbt_activate.testing.hubspot.schema import HubSpotObject
from dbt_activate.testing.messages import ApiError


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class HubSpotRecord:
    id: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    archived: bool = False
    writes: int = 0  # how many creates/updates touched it (tests of idempotent retries)

    def view(self, names: Sequence[str] | None = None, new: bool | None = None) -> dict[str, Any]:
        """The record as the API returns it; ``names`` limits the properties (unset ones are null)."""
        props: dict[str, Any] = dict(self.properties) if names is None else {n: self.properties.get(n) for n in names}
        props.update(hs_object_id=self.id, createdate=self.created_at, lastmodifieddate=self.updated_at)
        out: dict[str, Any] = {"id": self.id, "properties": props, "createdAt": self.created_at,
                               "updatedAt": self.updated_at, "archived": self.archived}
        if self.archived:
            out["archivedAt"] = self.updated_at
        if new is not None:
            out["new"] = new
        return out


class HubSpotStore:
    def __init__(self) -> None:
        self._ids = itertools.count(1001)
        self.records: dict[str, dict[str, HubSpotRecord]] = {}  # type_id -> id -> record
        self._unique: dict[tuple[str, str], dict[str, str]] = {}  # (type_id, property) -> value -> id

    def clear(self) -> None:
        self.records.clear()
        self._unique.clear()

    def of(self, obj: HubSpotObject) -> dict[str, HubSpotRecord]:
        return self.records.setdefault(obj.type_id, {})

    def find(self, obj: HubSpotObject, id_property: str | None, value: str) -> HubSpotRecord | None:
        """The live record whose ``id_property`` (record id when None) equals ``value``."""
        if id_property in (None, "hs_object_id"):
            found = self.of(obj).get(value)
        else:
            assert id_property is not None
            key = value.lower() if id_property == "email" else value
            record_id = self._unique.get((obj.type_id, id_property), {}).get(key)
            found = self.of(obj).get(record_id) if record_id else None
        return found if found is not None and not found.archived else None

    def conflict(self, obj: HubSpotObject, values: Mapping[str, str], record_id: str | None
                 ) -> tuple[str, str, str] | None:
        """``(property, value, owner id)`` of another record already holding one of the unique ``values``."""
        for name in obj.unique_names:
            value = values.get(name)
            if value:
                owner = self._unique.get((obj.type_id, name), {}).get(value)
                if owner is not None and owner != record_id:
                    return name, value, owner
        return None

    def create(self, obj: HubSpotObject, values: Mapping[str, str], stamp: str | None = None) -> HubSpotRecord:
        stamp = stamp or now_iso()
        record = HubSpotRecord(str(next(self._ids)), {}, stamp, stamp)
        self.of(obj)[record.id] = record
        self._set(obj, record, values)
        return record

    def update(self, obj: HubSpotObject, record: HubSpotRecord, values: Mapping[str, str], stamp: str | None = None
               ) -> None:
        record.updated_at = stamp or now_iso()
        self._set(obj, record, values)

    def archive(self, obj: HubSpotObject, record: HubSpotRecord) -> None:
        record.archived = True
        record.updated_at = now_iso()
        for name in obj.unique_names:
            if name in record.properties:
                self._unique.get((obj.type_id, name), {}).pop(record.properties[name], None)

    def _set(self, obj: HubSpotObject, record: HubSpotRecord, values: Mapping[str, str]) -> None:
        unique = obj.unique_names
        for name, value in values.items():
            if name in unique:
                index = self._unique.setdefault((obj.type_id, name), {})
                old = record.properties.get(name)
                if old is not None:
                    index.pop(old, None)
                if value:
                    index[value] = record.id
            if value == "":
                record.properties.pop(name, None)  # "" clears: the property reads as null again
            else:
                record.properties[name] = value
        record.writes += 1

    def live(self, obj: HubSpotObject, archived: bool = False) -> Iterator[HubSpotRecord]:
        return (r for r in self.of(obj).values() if r.archived == archived)


_NUMERIC_OPERATORS = {"LT": float.__lt__, "LTE": float.__le__, "GT": float.__gt__, "GTE": float.__ge__}


def matches(record: HubSpotRecord, filter_groups: Sequence[Mapping[str, Any]]) -> bool:
    """HubSpot search semantics: filter groups are ORed, the filters of a group ANDed."""
    if not filter_groups:
        return True
    return any(all(_matches(record, f) for f in group.get("filters", [])) for group in filter_groups)


def _matches(record: HubSpotRecord, flt: Mapping[str, Any]) -> bool:
    name, operator = flt.get("propertyName", ""), flt.get("operator", "EQ")
    actual = record.id if name == "hs_object_id" else record.properties.get(name)
    wanted = str(flt.get("value", ""))
    values = [str(v).lower() for v in flt.get("values", [])]
    if operator == "HAS_PROPERTY":
        return actual is not None
    if operator == "NOT_HAS_PROPERTY":
        return actual is None
    if operator in ("EQ", "NEQ"):
        equal = actual is not None and actual.lower() == wanted.lower()
        return equal if operator == "EQ" else not equal
    if operator in ("IN", "NOT_IN"):
        inside = actual is not None and actual.lower() in values
        return inside if operator == "IN" else not inside
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = wanted.strip("*").lower()
        found = actual is not None and token in actual.lower()
        return found if operator == "CONTAINS_TOKEN" else not found
    if operator in _NUMERIC_OPERATORS:
        try:
            return actual is not None and _NUMERIC_OPERATORS[operator](float(actual), float(wanted))
        except ValueError:
            return actual is not None and {"LT": actual < wanted, "LTE": actual <= wanted,
                                           "GT": actual > wanted, "GTE": actual >= wanted}[operator]
    if operator == "BETWEEN":
        low, high = float(flt.get("value", 0)), float(flt.get("highValue", 0))
        return actual is not None and low <= float(actual) <= high
    raise ApiError(400, f"Unsupported filter operator {operator!r}", "VALIDATION_ERROR")
