"""The Salesforce emulator's records, with unique/external-id indexes and all-or-none rollback.

Not thread-safe by itself: the emulator holds its lock around every call. ``save`` validates and
applies one record at a time (later records in a request see earlier ones, as in Salesforce);
between ``begin()`` and ``commit()``/``rollback()`` every change is journaled so an
``allOrNone`` request can be undone.

A unique or External ID field refuses a value another record holds, on an update (a changed
match value) as on a create: ``DUPLICATE_VALUE`` "duplicate value found: <field> duplicates value on
record with id: <id>" naming the field (Salesforce API, Core Data Types, StatusCode DUPLICATE_VALUE:
developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from dbt_activate.testing.salesforce.schema import SObject, problems
from dbt_activate.testing.salesforce.schema import record_id as record_id_of

SYSTEM_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RecordError(Exception):
    """A record was refused; ``errors`` are Salesforce's ``{statusCode, message, fields}``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors


def error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}


class SalesforceStore:
    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self.records: dict[str, dict[str, dict[str, Any]]] = {}  # sObject -> Id -> fields (with Id)
        self.stamps: dict[str, tuple[str, str]] = {}  # Id -> (CreatedDate, LastModifiedDate)
        self.deleted: dict[str, str] = {}  # Id -> sObject
        self._index: dict[tuple[str, str], dict[str, str]] = {}  # (sObject, field) -> lower(value) -> Id
        self._journal: list[tuple[SObject, str, dict[str, Any] | None]] | None = None

    def clear(self) -> None:
        self.records.clear()
        self.stamps.clear()
        self.deleted.clear()
        self._index.clear()

    def of(self, sobject: SObject) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(sobject.name, {})

    def locate(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for name, records in self.records.items():
            found = records.get(record_id)
            if found is not None:
                return name, found
        return None

    def find_by(self, sobject: SObject, field_name: str, value: Any) -> str | None:
        return self._index.get((sobject.name, field_name), {}).get(str(value).lower())

    def iter(self, sobject: SObject) -> Iterator[dict[str, Any]]:
        return iter(self.of(sobject).values())

    def view(self, record: Mapping[str, Any]) -> dict[str, Any]:
        created, modified = self.stamps[record["Id"]]
        return {**record, "CreatedDate": created, "LastModifiedDate": modified, "SystemModstamp": modified}

    # -- writes ----------------------------------------------------------------------------------

    def save(self, sobject: SObject, fields: Mapping[str, Any], record_id: str | None, stamp: str) -> str:
        """Create (``record_id`` None) or update one record; raises ``RecordError``."""
        creating = record_id is None
        current: dict[str, Any] | None = None
        if record_id is not None:
            current = self.of(sobject).get(record_id)
            if current is None:
                gone = record_id in self.deleted
                raise RecordError([error("ENTITY_IS_DELETED" if gone else "INVALID_CROSS_REFERENCE_KEY",
                                         "entity is deleted" if gone else f"invalid cross reference id: {record_id}")])
        errors = problems(sobject, fields, creating)
        for name, value in fields.items():
            f = sobject.by_name[name.lower()]
            if (f.unique or f.external_id) and value not in (None, ""):
                owner = self.find_by(sobject, f.name, value)
                if owner is not None and owner != record_id:
                    errors.append(error("DUPLICATE_VALUE", f"duplicate value found: {f.name} duplicates value on "
                                        f"record with id: {owner}", [f.name]))
        if errors:
            raise RecordError(errors)
        if current is None:
            record_id = record_id or record_id_of(sobject.prefix, next(self._numbers))
            current = {"Id": record_id}
            self.of(sobject)[record_id] = current
            self.stamps[record_id] = (stamp, stamp)
            self._log(sobject, record_id, None)
        else:
            assert record_id is not None
            self._log(sobject, record_id, dict(current))
            self.stamps[record_id] = (self.stamps[record_id][0], stamp)
        self._unindex(sobject, current)
        for name, value in fields.items():
            if value is None or value == "":  # null (or "" in JSON) clears the field
                current.pop(name, None)
            else:
                current[name] = value
        self._reindex(sobject, current)
        return record_id

    def delete(self, sobject: SObject, record_id: str) -> None:
        current = self.of(sobject).pop(record_id)
        self._log(sobject, record_id, current)
        self._unindex(sobject, current)
        self.deleted[record_id] = sobject.name

    def begin(self) -> None:
        self._journal = []

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        for sobject, rid, before in reversed(self._journal or []):
            now = self.of(sobject).pop(rid, None)
            if now is not None:
                self._unindex(sobject, now)
            if before is not None:
                self.of(sobject)[rid] = before
                self._reindex(sobject, before)
                self.deleted.pop(rid, None)
            else:
                self.stamps.pop(rid, None)
        self._journal = None

    def _log(self, sobject: SObject, rid: str, before: dict[str, Any] | None) -> None:
        if self._journal is not None:
            self._journal.append((sobject, rid, before))

    def _unindex(self, sobject: SObject, record: Mapping[str, Any]) -> None:
        for f in sobject.fields:
            if (f.unique or f.external_id) and f.name in record:
                self._index.get((sobject.name, f.name), {}).pop(str(record[f.name]).lower(), None)

    def _reindex(self, sobject: SObject, record: Mapping[str, Any]) -> None:
        for f in sobject.fields:
            if (f.unique or f.external_id) and f.name in record:
                self._index.setdefault((sobject.name, f.name), {})[str(record[f.name]).lower()] = record["Id"]
