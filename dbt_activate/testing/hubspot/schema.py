"""HubSpot object types and properties for the emulator, and how HubSpot checks property values.

Value rules (contracts SUMMARY §1, "Field quirks"): every value is a string; ``""`` clears; date
properties take midnight-UTC epoch milliseconds only; datetime properties take any epoch-ms value
(ISO 8601 is accepted too); enumerations take internal option values, multi-checkbox values joined
with ``;``; bool properties take ``true``/``false``; no value may be longer than 65,536 characters
(HubSpot's documented limit for a property value). Error codes are the ones HubSpot returns in its
"Property values were not valid" messages as recalled, not re-read ([R] in the summary); the code
for a value over the length limit is a guess in the same style.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PROPERTY_TYPES = {  # HubSpot type -> the fieldType HubSpot reports for it
    "string": "text",
    "number": "number",
    "date": "date",
    "datetime": "date",
    "bool": "booleancheckbox",
    "enumeration": "select",
}
SYSTEM_PROPERTIES = ("hs_object_id", "createdate", "lastmodifieddate")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DAY_MS = 86_400_000
MAX_VALUE_LENGTH = 65_536  # characters in one property value, per HubSpot's docs


@dataclass(frozen=True)
class HubSpotProperty:
    """One property. ``multiple`` makes an enumeration a multi-checkbox; ``unique`` means
    ``hasUniqueValue`` (usable as ``idProperty``)."""

    name: str
    type: str = "string"
    options: tuple[str, ...] = ()
    multiple: bool = False
    unique: bool = False
    read_only: bool = False

    plain: bool = field(default=False, init=False, compare=False, repr=False)  # any string goes

    def __post_init__(self) -> None:
        if self.type not in PROPERTY_TYPES:
            raise ValueError(f"property {self.name}: type {self.type!r} is not one of {sorted(PROPERTY_TYPES)}")
        if self.type == "bool" and not self.options:
            object.__setattr__(self, "options", ("true", "false"))
        object.__setattr__(self, "plain", self.type == "string" and self.name != "email")

    def definition(self) -> dict[str, Any]:
        """The property as ``GET /crm/v3/properties/{objectType}`` describes it."""
        field_type = "checkbox" if self.multiple else PROPERTY_TYPES[self.type]
        return {
            "name": self.name,
            "label": self.name.replace("_", " ").title(),
            "type": self.type,
            "fieldType": field_type,
            "options": [{"label": o, "value": o, "hidden": False} for o in self.options],
            "hasUniqueValue": self.unique,
            "modificationMetadata": {"readOnlyValue": self.read_only, "archivable": True},
            "hidden": False,
            "formField": True,
        }


@dataclass(frozen=True)
class HubSpotObject:
    """An object type: ``name`` (plural for the standard ones) and ``type_id`` (``0-1``, ``2-…``)."""

    name: str
    type_id: str
    properties: tuple[HubSpotProperty, ...] = ()
    by_name: dict[str, HubSpotProperty] = field(default_factory=dict, init=False, compare=False, repr=False)
    unique_names: frozenset[str] = field(default=frozenset(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        readonly = tuple(HubSpotProperty(n, "datetime" if n != "hs_object_id" else "number", read_only=True)
                         for n in SYSTEM_PROPERTIES)
        for prop in (*readonly, *self.properties):
            self.by_name[prop.name] = prop
        self.by_name["hs_object_id"] = HubSpotProperty("hs_object_id", "number", unique=True, read_only=True)
        unique = frozenset(p.name for p in self.by_name.values() if p.unique and not p.read_only)
        object.__setattr__(self, "unique_names", unique)

    def with_properties(self, extra: Iterable[HubSpotProperty]) -> HubSpotObject:
        return HubSpotObject(self.name, self.type_id, (*self.properties, *extra))


def _strings(*names: str) -> tuple[HubSpotProperty, ...]:
    return tuple(HubSpotProperty(n) for n in names)


LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
             "customer", "evangelist", "other")
STANDARD_OBJECTS = (
    HubSpotObject("contacts", "0-1", (
        HubSpotProperty("email", unique=True),
        *_strings("firstname", "lastname", "phone", "mobilephone", "company", "website", "jobtitle",
                  "address", "city", "state", "zip", "country", "industry", "hubspot_owner_id"),
        HubSpotProperty("lifecyclestage", "enumeration", LIFECYCLE),
        HubSpotProperty("hs_lead_status", "enumeration", ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL",
                        "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED", "BAD_TIMING")),
        HubSpotProperty("annualrevenue", "number"),
    )),
    HubSpotObject("companies", "0-2", (
        *_strings("name", "domain", "phone", "address", "city", "state", "zip", "country", "industry",
                  "website", "description", "hubspot_owner_id"),
        HubSpotProperty("lifecyclestage", "enumeration", LIFECYCLE),
        HubSpotProperty("numberofemployees", "number"),
        HubSpotProperty("annualrevenue", "number"),
    )),
    HubSpotObject("deals", "0-3", (
        *_strings("dealname", "pipeline", "description", "hubspot_owner_id"),
        HubSpotProperty("dealstage", "enumeration", ("appointmentscheduled", "qualifiedtobuy",
                        "presentationscheduled", "decisionmakerboughtin", "contractsent", "closedwon", "closedlost")),
        HubSpotProperty("dealtype", "enumeration", ("newbusiness", "existingbusiness")),
        HubSpotProperty("amount", "number"),
        HubSpotProperty("closedate", "datetime"),
    )),
)


@dataclass(frozen=True)
class Problem:
    """One invalid property value: HubSpot's error code, message and the property name."""

    code: str
    message: str
    name: str


def normalize(obj: HubSpotObject, properties: Mapping[str, Any]) -> tuple[dict[str, str], list[Problem]]:
    """Property values as HubSpot stores them (strings; ``""`` = clear), or the problems found."""
    clean: dict[str, str] = {}
    problems: list[Problem] = []
    by_name = obj.by_name
    for name, raw in properties.items():
        prop = by_name.get(name)
        if prop is None:
            problems.append(Problem("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist', name))
        elif prop.read_only:
            problems.append(Problem("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.',
                                    name))
        elif type(raw) is str and len(raw) > MAX_VALUE_LENGTH:
            problems.append(Problem("INVALID_STRING_LENGTH", f"{name} is {len(raw)} characters long, over the "
                                    f"maximum length of {MAX_VALUE_LENGTH} for a property value", name))
        elif prop.plain and type(raw) is str:
            clean[name] = raw  # the common case, kept cheap: benchmarks push 20,000 records/s through here
        else:
            value, problem = _check(prop, raw)
            if problem is not None:
                problems.append(problem)
            else:
                clean[name] = value
    return clean, problems


def _check(prop: HubSpotProperty, raw: Any) -> tuple[str, Problem | None]:
    name = prop.name
    if isinstance(raw, bool):
        value = "true" if raw else "false"
    elif isinstance(raw, (int, float, str)):
        value = str(raw)
    else:
        return "", Problem("INVALID_VALUE", f"{raw!r} is not a valid value for {name}: values are strings", name)
    if value == "":
        return value, None
    if prop.type == "number":
        try:
            float(value)
        except ValueError:
            return "", Problem("INVALID_DOUBLE", f"{value} was not a valid number.", name)
    elif prop.type == "date":
        if not value.lstrip("-").isdigit():
            return "", Problem("INVALID_DATE", f"{value} is not a valid date: use midnight-UTC epoch millis", name)
        remainder = int(value) % _DAY_MS
        if remainder:
            hours, rest = divmod(remainder, 3_600_000)
            minutes, rest = divmod(rest, 60_000)
            seconds, millis = divmod(rest, 1000)
            return "", Problem("INVALID_DATE", f"{value} is at {hours}:{minutes}:{seconds}.{millis} UTC, not midnight!",
                               name)
    elif prop.type == "datetime" and not value.lstrip("-").isdigit():
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "", Problem("INVALID_DATETIME", f"{value} is not a valid datetime: use epoch millis", name)
    elif prop.type in ("enumeration", "bool"):
        chosen = value.split(";") if prop.multiple else [value.lower() if prop.type == "bool" else value]
        bad = [v for v in chosen if v not in prop.options]
        if bad:
            allowed = ", ".join(prop.options)
            return "", Problem("INVALID_OPTION", f'"{bad[0]}" was not one of the allowed options: [{allowed}]', name)
        value = ";".join(chosen)
    elif name == "email":
        if not _EMAIL.match(value):
            return "", Problem("INVALID_EMAIL", f"Email address {value} is invalid", name)
        value = value.lower()  # HubSpot stores and matches emails lower-cased
    return value, None
