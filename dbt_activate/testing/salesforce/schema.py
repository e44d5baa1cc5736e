"""Salesforce sObject schemas for the emulator: fields, record ids, and how values are checked.

Field and sObject names are case-insensitive, as in the REST API. ``parse`` turns a JSON or CSV
value into the stored value (a syntax error in JSON fails the whole request, as Salesforce's
deserializer does; in a Bulk CSV it fails the row); ``problems`` finds the per-record errors
Salesforce reports with a ``statusCode`` (required, length, email, restricted picklist, field access).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

FIELD_TYPES = ("string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "boolean", "int",
               "double", "currency", "percent", "date", "datetime", "reference", "id")
_NUMBERS = ("int", "double", "currency", "percent")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


@dataclass(frozen=True)
class SalesforceField:
    name: str
    type: str = "string"
    length: int = 255
    required: bool = False  # not nillable and no default: needed on create, can't be nulled
    external_id: bool = False  # usable as the upsert key (unique, case-insensitive)
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = True  # only picklist values are accepted
    createable: bool = True
    updateable: bool = True

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"field {self.name}: type {self.type!r} is not one of {', '.join(FIELD_TYPES)}")

    @property
    def label(self) -> str:
        return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", self.name.removesuffix("__c").replace("_", " "))


def _system(*names: str) -> tuple[SalesforceField, ...]:
    return tuple(SalesforceField(n, "datetime" if n.endswith("Date") else "id", createable=False, updateable=False)
                 for n in names)


@dataclass(frozen=True)
class SObject:
    name: str
    prefix: str  # the 3-character key prefix of its record ids
    fields: tuple[SalesforceField, ...]
    by_name: dict[str, SalesforceField] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for f in (*_system("Id", "CreatedDate", "LastModifiedDate", "SystemModstamp"), *self.fields):
            self.by_name[f.name.lower()] = f

    def field(self, name: str) -> SalesforceField | None:
        return self.by_name.get(name.lower())

    def with_fields(self, extra: Iterable[SalesforceField]) -> SObject:
        return SObject(self.name, self.prefix, (*self.fields, *extra))


def _s(*names: str, length: int = 255) -> tuple[SalesforceField, ...]:
    return tuple(SalesforceField(n, length=length) for n in names)


_LEAD_SOURCE = SalesforceField("LeadSource", "picklist", 255, picklist=(
    "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"), restricted=False)
_ADDRESS = ("Street", "City", "State", "PostalCode", "Country")
STANDARD_OBJECTS = (
    SObject("Contact", "003", (
        SalesforceField("FirstName", length=40), SalesforceField("LastName", length=80, required=True),
        SalesforceField("Email", "email", 80), SalesforceField("Phone", "phone", 40),
        SalesforceField("MobilePhone", "phone", 40), *_s("Title", "Department", length=128),
        SalesforceField("AccountId", "reference", 18), *_s(*("Mailing" + a for a in _ADDRESS)), _LEAD_SOURCE,
        SalesforceField("Birthdate", "date"), SalesforceField("Description", "textarea", 32000),
        SalesforceField("HasOptedOutOfEmail", "boolean"),
    )),
    SObject("Account", "001", (
        SalesforceField("Name", length=255, required=True), *_s("AccountNumber", "Site", "Industry", length=40),
        SalesforceField("Website", "url"), SalesforceField("Phone", "phone", 40),
        SalesforceField("Type", "picklist", picklist=("Prospect", "Customer - Direct", "Customer - Channel",
                        "Channel Partner / Reseller", "Installation Partner", "Technology Partner", "Other")),
        SalesforceField("NumberOfEmployees", "int"), SalesforceField("AnnualRevenue", "currency"),
        *_s(*("Billing" + a for a in _ADDRESS)), SalesforceField("Description", "textarea", 32000),
    )),
    SObject("Lead", "00Q", (
        SalesforceField("FirstName", length=40), SalesforceField("LastName", length=80, required=True),
        SalesforceField("Company", length=255, required=True), SalesforceField("Email", "email", 80),
        SalesforceField("Phone", "phone", 40), SalesforceField("Title", length=128), _LEAD_SOURCE,
        SalesforceField("Status", "picklist", picklist=("Open - Not Contacted", "Working - Contacted",
                        "Closed - Converted", "Closed - Not Converted")),
        *_s("Industry", "City", "State", "Country", length=80), SalesforceField("Description", "textarea", 32000),
    )),
)


def record_id(prefix: str, number: int) -> str:
    """An 18-character record id: 15 case-sensitive characters plus Salesforce's checksum suffix."""
    return with_checksum(f"{prefix}8d{number:010d}")


def with_checksum(id15: str) -> str:
    suffix = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
        suffix += _ID_CHARS[bits]
    return id15 + suffix


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when malformed."""
    if not value.isalnum() or len(value) not in (15, 18):
        return None
    return with_checksum(value[:15]) if len(value) == 15 else value[:15] + value[15:].upper()


def parse(f: SalesforceField, value: Any, from_csv: bool = False) -> Any:
    """The stored value of ``value`` for field ``f``; ``ValueError`` when it can't be read."""
    if value is None:
        return None
    kind = f.type
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1") or (from_csv and text == "yes"):
            return True
        if text in ("false", "0", "") or (from_csv and text == "no"):
            return False
        raise ValueError(value)
    if kind in _NUMBERS:
        if isinstance(value, bool):
            raise ValueError(value)
        number = float(value)
        return int(number) if kind == "int" and number.is_integer() else number
    if kind == "date":
        text = str(value)
        if len(text) != 10:
            raise ValueError(value)
        return date.fromisoformat(text).isoformat()
    if kind == "datetime":
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, (dict, list)):
        raise ValueError(value)
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def problems(sobject: SObject, fields: Mapping[str, Any], creating: bool) -> list[dict[str, Any]]:
    """The per-record errors of ``fields`` (canonical names) as ``{statusCode, message, fields}``."""
    errors: list[dict[str, Any]] = []
    locked = [n for n in fields if not (sobject.by_name[n.lower()].createable if creating
                                        else sobject.by_name[n.lower()].updateable)]
    if locked:
        errors.append(_err("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {', '.join(locked)}. "
                           "Please check the security settings of this field and verify that it is read/write for "
                           "your profile or permission set.", locked))
    missing = [f.name for f in sobject.fields
               if f.required and (_blank(fields[f.name]) if f.name in fields else creating)]
    if missing:
        errors.append(_err("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing))
    for name, value in fields.items():
        f = sobject.by_name[name.lower()]
        if not isinstance(value, str) or not value:
            continue
        if len(value) > f.length and f.type not in ("date", "datetime"):
            errors.append(_err("STRING_TOO_LONG", f"{f.label}: data value too large: {value[:40]} "
                               f"(max length={f.length})", [f.name]))
        elif f.type == "email" and not _EMAIL.match(value):
            errors.append(_err("INVALID_EMAIL_ADDRESS", f"{f.label}: invalid email address: {value}", [f.name]))
        elif f.type in ("picklist", "multipicklist") and f.restricted and f.picklist:
            chosen = value.split(";") if f.type == "multipicklist" else [value]
            bad = [v for v in chosen if v not in f.picklist]
            if bad:
                errors.append(_err("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                   f"{f.label}: bad value for restricted picklist field: {bad[0]}", [f.name]))
    return errors


def _blank(value: Any) -> bool:
    return value is None or value == ""


def _err(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"statusCode": code, "message": message, "fields": fields or []}
