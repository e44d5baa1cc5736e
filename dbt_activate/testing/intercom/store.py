"""The Intercom emulator's contacts: create/update validation, uniqueness, search (no IO).

Not thread-safe by itself: the emulator holds its lock around every call. A contact shows every
declared custom data attribute (``None`` when unset). Users are unique by ``external_id`` and by
email (case-insensitive), archived ones included: a create that collides answers 409 naming the
existing contact's id, as Intercom does. Leads have no such constraint.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dbt_activate.testing.messages import ApiError

ATTRIBUTE_TYPES = ("string", "integer", "float", "boolean", "date")
_STANDARD: dict[str, tuple[type, ...]] = {
    "role": (str,), "external_id": (str,), "email": (str,), "phone": (str,), "name": (str,), "avatar": (str,),
    "signed_up_at": (int,), "last_seen_at": (int,), "owner_id": (int,), "unsubscribed_from_emails": (bool,),
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_STRING = 255  # custom string attributes [R]


def invalid(message: str, code: str = "parameter_invalid") -> ApiError:
    return ApiError(400, message, code)


def now() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp())


class IntercomStore:
    def __init__(self, attributes: Mapping[str, str]) -> None:
        for name, kind in attributes.items():
            if kind not in ATTRIBUTE_TYPES:
                raise ValueError(f"data attribute {name!r}: type {kind!r} is not one of {', '.join(ATTRIBUTE_TYPES)}")
        self.attributes = dict(attributes)
        self.contacts: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def clear(self) -> None:
        self.contacts.clear()

    def get(self, contact_id: str) -> dict[str, Any]:
        contact = self.contacts.get(contact_id)
        if contact is None:
            raise ApiError(404, "User Not Found", "not_found")
        return contact

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        role = body.get("role") or "user"
        if role not in ("user", "lead"):
            raise invalid(f"role must be user or lead, got {role!r}")
        if role == "user" and not body.get("external_id") and not body.get("email"):
            raise invalid("A user needs an email or an external_id", "parameter_not_found")
        contact: dict[str, Any] = {
            "type": "contact", "id": f"{next(self._ids):024x}", "workspace_id": "emu", "role": role,
            **dict.fromkeys(k for k in _STANDARD if k != "role"), "unsubscribed_from_emails": False,
            "created_at": now(), "updated_at": now(), "archived": False,
            "custom_attributes": dict.fromkeys(self.attributes),
        }
        self._apply(contact, body)
        self.contacts[contact["id"]] = contact
        return contact

    def update(self, contact_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        contact = self.get(contact_id)
        staged = {**contact, "custom_attributes": dict(contact["custom_attributes"])}
        self._apply(staged, body)
        staged["updated_at"] = now()
        contact.update(staged)
        return contact

    def _apply(self, contact: dict[str, Any], body: Mapping[str, Any]) -> None:
        for name, value in body.items():
            if name == "custom_attributes":
                if not isinstance(value, dict):
                    raise invalid("custom_attributes must be an object")
                for attribute, custom in value.items():
                    contact["custom_attributes"][attribute] = self._custom(attribute, custom)
                continue
            types = _STANDARD.get(name)
            if types is None:
                raise invalid(f"{name} is not a contact attribute")
            if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
                raise invalid(f"{name} must be a {types[0].__name__}")
            if name == "email" and isinstance(value, str) and not _EMAIL.match(value):
                raise invalid(f"{value} is not a valid email address")
            contact[name] = value
        if contact["role"] == "user":
            self._unique(contact)

    def _unique(self, contact: Mapping[str, Any]) -> None:
        for other in self.contacts.values():
            if other["id"] == contact["id"] or other["role"] != "user":
                continue
            same_id = contact.get("external_id") and other.get("external_id") == contact["external_id"]
            same_email = contact.get("email") and (other.get("email") or "").casefold() == contact["email"].casefold()
            if same_id or same_email:
                raise ApiError(409, f"A contact matching those details already exists with id={other['id']}",
                               "conflict")

    def _custom(self, name: str, value: Any) -> Any:
        kind = self.attributes.get(name)
        if kind is None:
            raise invalid(f"Custom attribute '{name}' does not exist")
        if value is None:
            return None
        ok = {
            "string": isinstance(value, str) and len(value) <= MAX_STRING,
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "boolean": isinstance(value, bool),
            "date": isinstance(value, int) and not isinstance(value, bool),
        }[kind]
        if not ok:
            raise invalid(f"Custom attribute '{name}' expects a {kind} value, got {value!r}")
        return value

    def search(self, query: Any) -> list[dict[str, Any]]:
        """Live (not archived) contacts matching ``query``, in creation order."""
        return [c for c in self.contacts.values() if not c["archived"] and _matches(c, query)]

    def live(self) -> Iterable[dict[str, Any]]:
        return (c for c in self.contacts.values() if not c["archived"])


def _matches(contact: Mapping[str, Any], query: Any) -> bool:
    if not isinstance(query, dict):
        raise invalid("query must be an object")
    operator, value = query.get("operator"), query.get("value")
    if operator in ("AND", "OR"):
        if not isinstance(value, list) or not value or len(value) > 15:
            raise invalid("AND/OR take a list of 1 to 15 filters")
        found = (_matches(contact, q) for q in value)
        return all(found) if operator == "AND" else any(found)
    field = query.get("field")
    if not isinstance(field, str) or operator not in ("=", "!="):
        raise invalid("each filter needs a field and the operator = or != (others are not emulated)")
    if field.startswith("custom_attributes."):
        stored = contact["custom_attributes"].get(field.partition(".")[2])
    elif field in contact:
        stored = contact[field]
    else:
        raise invalid(f"{field} is not a searchable field")
    if isinstance(stored, str) and isinstance(value, str):
        equal = stored.casefold() == value.casefold() if field == "email" else stored == value
    else:
        equal = stored == value
    return equal if operator == "=" else not equal
