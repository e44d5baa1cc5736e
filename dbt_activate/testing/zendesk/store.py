"""The Zendesk emulator's users and organizations, and the per-item outcomes of its bulk jobs.

Not thread-safe by itself: the emulator holds its lock around every call. Each bulk item gives one
job result in request order (contracts SUMMARY §6, Zendesk: ``{id, status: Created|Updated|Failed,
error, details, email}``); a failed item changes nothing. ``user_fields``/``organization_fields``
hold every declared field, ``None`` when unset, as Zendesk shows them; values are checked against
the field's type (text, textarea, regexp, dropdown: string; integer; decimal: number; checkbox:
boolean; date: ``YYYY-MM-DD``). An unknown field key fails the item: Zendesk's behaviour there is
not documented, and a loud failure shows a misspelt mapping instead of dropping data.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

USER_STANDARD = frozenset({
    "name", "email", "external_id", "phone", "role", "organization_id", "time_zone", "iana_time_zone", "locale",
    "locale_id", "details", "notes", "tags", "verified", "alias", "signature", "suspended", "shared_phone_number",
    "remote_photo_url", "default_group_id", "custom_role_id", "moderator", "only_private_comments",
    "restricted_agent", "ticket_restriction", "skip_verify_email", "user_fields",
})
ORG_STANDARD = frozenset({
    "name", "external_id", "details", "notes", "domain_names", "tags", "group_id", "shared_tickets",
    "shared_comments", "organization_fields",
})
FIELD_TYPES = ("text", "textarea", "regexp", "dropdown", "integer", "decimal", "checkbox", "date")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ItemFailed(Exception):
    """One bulk item was refused: ``error`` is Zendesk's code, the message its ``details``."""

    def __init__(self, error: str, details: str) -> None:
        super().__init__(details)
        self.error = error


class ZendeskStore:
    def __init__(self, user_fields: Mapping[str, str], organization_fields: Mapping[str, str]) -> None:
        for key, kind in (*user_fields.items(), *organization_fields.items()):
            if kind not in FIELD_TYPES:
                raise ValueError(f"custom field {key!r}: type {kind!r} is not one of {', '.join(FIELD_TYPES)}")
        self._ids = itertools.count(1001)
        self.kinds = {"users": ("user_fields", dict(user_fields), USER_STANDARD),
                      "organizations": ("organization_fields", dict(organization_fields), ORG_STANDARD)}
        self.records: dict[str, dict[int, dict[str, Any]]] = {"users": {}, "organizations": {}}

    def clear(self) -> None:
        for records in self.records.values():
            records.clear()

    def find(self, kind: str, item: Mapping[str, Any], *, by_email: bool) -> dict[str, Any] | None:
        """The record an item names: by ``id``, else ``external_id`` (case-insensitive), else email."""
        records = self.records[kind]
        if item.get("id") is not None:
            return records.get(item["id"]) if isinstance(item["id"], int) else None
        external_id = item.get("external_id")
        if external_id not in (None, ""):
            wanted = str(external_id).casefold()
            return next((r for r in records.values() if str(r.get("external_id") or "").casefold() == wanted), None)
        email = item.get("email")
        if by_email and isinstance(email, str) and email:
            return next((r for r in records.values() if (r.get("email") or "").casefold() == email.casefold()), None)
        return None

    def upsert(self, kind: str, item: Any) -> tuple[str, dict[str, Any]]:
        """create_or_update one item: ("Created" | "Updated", record)."""
        item = _object(item)
        found = self.find(kind, item, by_email=kind == "users")
        if found is None:
            return "Created", self.create(kind, item)
        return "Updated", self.update(kind, found, item)

    def create(self, kind: str, item: Mapping[str, Any]) -> dict[str, Any]:
        custom_key, fields, _ = self.kinds[kind]
        if not isinstance(item.get("name"), str) or not item["name"].strip():
            raise ItemFailed(_code(kind, "Create"), "Name: cannot be blank")
        record: dict[str, Any] = {"id": next(self._ids), "name": None, "external_id": None,
                                  custom_key: dict.fromkeys(fields), "tags": []}
        if kind == "users":
            record.update({"email": None, "role": "end-user", "phone": None, "organization_id": None})
        else:
            record.update({"domain_names": [], "details": None, "notes": None})
        self._apply(kind, record, item, _code(kind, "Create"))
        self.records[kind][record["id"]] = record
        return record

    def update(self, kind: str, record: dict[str, Any], item: Mapping[str, Any]) -> dict[str, Any]:
        staged = {**record, self.kinds[kind][0]: dict(record[self.kinds[kind][0]])}
        self._apply(kind, staged, item, _code(kind, "Update"))
        if not isinstance(staged.get("name"), str) or not staged["name"].strip():
            raise ItemFailed(_code(kind, "Update"), "Name: cannot be blank")
        record.update(staged)
        return record

    def delete(self, kind: str, record_ids: Iterable[int]) -> None:
        for record_id in record_ids:
            self.records[kind].pop(record_id, None)

    def _apply(self, kind: str, record: dict[str, Any], item: Mapping[str, Any], code: str) -> None:
        custom_key, fields, standard = self.kinds[kind]
        for name, value in item.items():
            if name == "id":
                continue
            if name not in standard:
                raise ItemFailed(code, f"{name}: is not a {kind[:-1]} property")
            if name == custom_key:
                for key, custom in _object(value).items():
                    if key not in fields:
                        raise ItemFailed(code, f"{custom_key}: no field with key {key!r}")
                    record[custom_key][key] = _check(fields[key], key, custom, code)
                continue
            if name == "email" and value is not None and not (isinstance(value, str) and _EMAIL.match(value)):
                raise ItemFailed(code, f"Email: {value} is not properly formatted")
            if name == "email" and isinstance(value, str):
                taken = self.find(kind, {"email": value}, by_email=True)
                if taken is not None and taken["id"] != record["id"]:
                    raise ItemFailed(code, f"Email: {value} is already being used by another user")
            if name == "external_id" and value not in (None, ""):
                taken = self.find(kind, {"external_id": value}, by_email=False)
                if taken is not None and taken["id"] != record["id"]:
                    raise ItemFailed(code, f"External: {value} has already been taken")
            if name in ("tags", "domain_names") and not (isinstance(value, list) and all(
                    isinstance(v, str) for v in value)):
                raise ItemFailed(code, f"{name}: must be an array of strings")
            record[name] = value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ItemFailed("InvalidValue", "each item must be a JSON object")
    return value


def _code(kind: str, action: str) -> str:
    return f"{'User' if kind == 'users' else 'Organization'}{action}Error"


def _check(kind: str, key: str, value: Any, code: str) -> Any:
    """A custom field value, or ItemFailed when it does not fit the field's type."""
    if value is None:
        return None
    ok = {
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "decimal": isinstance(value, (int, float)) and not isinstance(value, bool),
        "checkbox": isinstance(value, bool),
        "date": isinstance(value, str) and _is_date(value),
    }.get(kind, isinstance(value, str))
    if not ok:
        raise ItemFailed(code, f"{key}: {value!r} is not a valid {kind} value")
    return value


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
