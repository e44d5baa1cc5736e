"""Rows -> Meta Conversions API events and Custom Audience rows (pure; personal values hashed here).

Conversions API server event (developers.facebook.com/docs/marketing-api/conversions-api/parameters/
server-event, …/customer-information-parameters, …/custom-data), per mapped field:

====================================  =======================================================================
``event_name``                        the event (default: the destination's ``event_name``)
``event_time``                        when it happened: a timestamp (UTC if it has no zone) or unix seconds;
                                      Meta refuses events older than 7 days, so such rows are rejected here
``action_source``                     default: the destination's (``system_generated``)
``event_source_url``, ``opt_out``     as they are
``email``, ``phone_number``,          ``user_data``, hashed (``meta_hashing``): em, ph, fn, ln, ct, st, zp,
``first_name``, ``last_name``,        country, ge, db, external_id
``city``, ``state``, ``postal_code``,
``country_code``, ``gender``,
``date_of_birth``, ``external_id``
``client_ip_address``,                ``user_data`` in clear, as Meta requires them
``client_user_agent``, ``fbc``,
``fbp``
anything else                         ``custom_data`` (``value``, ``currency``, ``order_id``, ``content_ids``…)
====================================  =======================================================================

``event_id`` is the row's primary key, so an event sent twice (a retried batch) is counted once.

Custom Audiences (``POST``/``DELETE /{audience_id}/users``, developers.facebook.com/docs/marketing-api/
reference/custom-audience/users): ``{"schema": ["EMAIL", "PHONE", …], "data": [[hash, hash, …], …]}``,
one key per mapped identifier, ``""`` where a row has none; every value hashed, COUNTRY included.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dbt_activate.delivery import UnencodableValue, to_json_value
from dbt_activate.destinations.meta.hashing import date_of_birth, hashed_field
from dbt_activate.destinations.pii import UnhashableValue, sha256_hex

MAX_AGE_SECONDS = 7 * 24 * 3600
USER_DATA = {"email": "em", "phone_number": "ph", "first_name": "fn", "last_name": "ln", "city": "ct",
             "state": "st", "postal_code": "zp", "country_code": "country", "gender": "ge",
             "external_id": "external_id"}
USER_DATA_CLEAR = ("client_ip_address", "client_user_agent", "fbc", "fbp")
EVENT_FIELDS = ("event_name", "event_time", "action_source", "event_source_url", "opt_out")
AUDIENCE_KEYS = {"email": "EMAIL", "phone_number": "PHONE", "first_name": "FN", "last_name": "LN",
                 "city": "CT", "state": "ST", "postal_code": "ZIP", "country_code": "COUNTRY", "gender": "GEN",
                 "external_id": "EXTERN_ID"}
DOB_KEYS = ("DOBY", "DOBM", "DOBD")
PERSONAL_FIELDS = frozenset({*USER_DATA, "date_of_birth"})
ACTION_SOURCES = ("email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                  "business_messaging", "other")
# custom_data keys that would carry personal data in clear (a typo of a user_data field, a raw name).
_PERSONAL_WORDS = ("email", "phone", "name", "address", "birth", "zip", "postal")
_CUSTOM_DATA_STANDARD = frozenset({"content_name", "content_category", "content_ids", "contents", "content_type",
                                   "currency", "value", "order_id", "predicted_ltv", "num_items", "search_string",
                                   "status", "delivery_category"})


@dataclass(frozen=True)
class EventDefaults:
    event_name: str | None = None
    action_source: str = "system_generated"
    phone_country_code: str | None = None


def personal_custom_data(fields: Sequence[str]) -> list[str]:
    """Mapped fields that would go to ``custom_data`` in clear though their names say they are personal."""
    known = {*USER_DATA, *USER_DATA_CLEAR, *EVENT_FIELDS, "date_of_birth"}
    return [f for f in fields if f not in known and f not in _CUSTOM_DATA_STANDARD
            and any(word in f.lower() for word in _PERSONAL_WORDS)]


def unix_seconds(value: Any) -> int:
    if isinstance(value, bool):
        raise UnhashableValue("field 'event_time': expected a timestamp")
    if isinstance(value, (int, float, Decimal)) and math.isfinite(float(value)):
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UnhashableValue("field 'event_time': not a timestamp") from None
    if isinstance(value, dt.datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).timestamp())
    raise UnhashableValue(f"field 'event_time': expected a timestamp, got {type(value).__name__}")


def server_event(key: str, values: Mapping[str, Any], defaults: EventDefaults, now: float | None = None
                 ) -> dict[str, Any]:
    """One server event; a row that cannot be one raises ``UnhashableValue`` with the reason."""
    name = str(values.get("event_name") or defaults.event_name or "").strip()
    if not name:
        raise UnhashableValue("no event_name: map an event_name column or set event_name on the destination")
    if values.get("event_time") is None:
        raise UnhashableValue("field 'event_time' is empty: Meta needs when the event happened")
    when = unix_seconds(values["event_time"])
    age = (time.time() if now is None else now) - when
    if age > MAX_AGE_SECONDS:
        raise UnhashableValue(f"event_time is {age / 86400:.1f} days ago: Meta refuses events older than 7 days")
    source = str(values.get("action_source") or defaults.action_source)
    if source not in ACTION_SOURCES:
        raise UnhashableValue(f"action_source must be one of {', '.join(ACTION_SOURCES)}")
    user_data: dict[str, Any] = {}
    custom_data: dict[str, Any] = {}
    for field, value in values.items():
        if field in USER_DATA:
            digest = hashed_field(field, value, defaults.phone_country_code)
            if digest:
                user_data[USER_DATA[field]] = [digest]
        elif field == "date_of_birth":
            born = date_of_birth(value)
            if born:
                user_data["db"] = [sha256_hex(born.strftime("%Y%m%d"))]
        elif field in USER_DATA_CLEAR:
            if value not in (None, ""):
                user_data[field] = str(value)
        elif field not in EVENT_FIELDS and value is not None:
            try:
                custom_data[field] = to_json_value(value)
            except UnencodableValue as exc:
                raise UnhashableValue(f"field {field!r}: {exc}") from None
    if not user_data:
        raise UnhashableValue("no customer information: map at least one of " + ", ".join(USER_DATA))
    event: dict[str, Any] = {"event_name": name, "event_time": when, "event_id": key, "action_source": source,
                             "user_data": user_data}
    if values.get("event_source_url"):
        event["event_source_url"] = str(values["event_source_url"])
    if values.get("opt_out") is not None:
        event["opt_out"] = bool(values["opt_out"])
    if custom_data:
        event["custom_data"] = custom_data
    return event


def audience_schema(fields: Sequence[str]) -> list[str]:
    """The multi-key schema of the mapped identifiers, in a fixed order."""
    schema = [AUDIENCE_KEYS[f] for f in AUDIENCE_KEYS if f in fields]
    if "date_of_birth" in fields:
        schema.extend(DOB_KEYS)
    return schema


def audience_row(values: Mapping[str, Any], schema: Sequence[str], phone_country_code: str | None) -> list[str]:
    """One row of ``data``, hashed, in ``schema`` order (``""`` where the row has no value)."""
    by_key: dict[str, str] = {}
    for field, key in AUDIENCE_KEYS.items():
        if key in schema:
            by_key[key] = hashed_field(field, values.get(field), phone_country_code) or ""
    if "DOBY" in schema:
        born = date_of_birth(values.get("date_of_birth"))
        parts = (born.strftime("%Y"), born.strftime("%m"), born.strftime("%d")) if born else ("", "", "")
        by_key.update({k: sha256_hex(p) if p else "" for k, p in zip(DOB_KEYS, parts, strict=True)})
    row = [by_key.get(k, "") for k in schema]
    if not any(row):
        raise UnhashableValue(f"no identifier to match: every one of {', '.join(schema)} is empty")
    return row
