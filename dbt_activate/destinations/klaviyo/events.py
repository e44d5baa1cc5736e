"""Rows -> Klaviyo events for ``append`` syncs (pure: records in, request bodies out).

``POST /api/event-bulk-create-jobs`` (Klaviyo's OpenAPI ``stable.json``, revision 2026-07-15;
developers.klaviyo.com/en/reference/bulk_create_events) takes ``{"data": {"type":
"event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [entry, …]}}}}``, one entry
per profile with its events; Klaviyo answers ``202`` and processes the job in the background,
reporting no per-event errors, so what it accepted is acknowledged. A request carries at most
1,000 events [R] and 5 MB.

The sync's ``object`` is the metric name (``Placed Order``). Mapped fields named ``email``,
``phone_number`` or ``external_id`` identify the profile (at least one is needed); ``time`` (ISO
8601; default: when Klaviyo receives it), ``value`` (a number) and ``unique_id`` are the event's
own attributes; every other field is an event property. Without a mapped ``unique_id`` the event
gets ``<run id>:<record key>``: Klaviyo keeps one event per unique id, so a batch retried within a
run does not record its events twice.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from dbt_activate.core.types import Record, SyncTarget
from dbt_activate.delivery import UnencodableValue, to_json_value

EVENT_JOBS = "/api/event-bulk-create-jobs"
MAX_EVENTS = 1_000
MAX_BODY = 5 * 1024 * 1024
IDENTIFIERS = ("email", "phone_number", "external_id")
EVENT_ATTRIBUTES = ("time", "value", "unique_id")
_ENVELOPE = 256


def event_entry(record: Record, target: SyncTarget) -> dict[str, Any]:
    """The ``event-bulk-create`` entry (a profile and its one event) of ``record``."""
    profile: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    event: dict[str, Any] = {}
    for name, value in record.values.items():
        if value is None:
            continue
        try:
            if name in IDENTIFIERS:
                converted = to_json_value(value)
                profile[name] = converted if isinstance(converted, str) else json.dumps(converted)
            elif name == "time":
                event["time"] = _time(value)
            elif name == "value":
                if isinstance(value, bool) or not isinstance(to_json_value(value), (int, float)):
                    raise UnencodableValue("must be a number")
                event["value"] = to_json_value(value)
            elif name == "unique_id":
                event["unique_id"] = str(value)
            else:
                properties[name] = to_json_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    if not any(str(profile.get(i) or "").strip() for i in IDENTIFIERS):
        raise UnencodableValue("the event's profile has no identifier: map email, phone_number or external_id")
    event.setdefault("unique_id", f"{target.run_id}:{record.key}" if target.run_id else record.key)
    event["properties"] = properties
    event["metric"] = {"data": {"type": "metric", "attributes": {"name": target.object}}}
    return {"type": "event-bulk-create",
            "attributes": {"profile": {"data": {"type": "profile", "attributes": profile}},
                           "events": {"data": [{"type": "event", "attributes": event}]}}}


def event_requests(entries: Iterable[tuple[str, bytes]]) -> list[tuple[list[str], bytes]]:
    """Encoded entries grouped into request bodies of at most 1,000 events and 5 MB: (keys, body)."""
    requests: list[tuple[list[str], bytes]] = []
    keys: list[str] = []
    parts: list[bytes] = []
    size = _ENVELOPE
    for key, encoded in entries:
        if keys and (len(keys) >= MAX_EVENTS or size + len(encoded) + 1 > MAX_BODY):
            requests.append((keys, _body(parts)))
            keys, parts, size = [], [], _ENVELOPE
        keys.append(key)
        parts.append(encoded)
        size += len(encoded) + 1
    if keys:
        requests.append((keys, _body(parts)))
    return requests


def check_event_fields(fields: Sequence[str]) -> str | None:
    """Why an append sync with these mapped fields cannot send events; None when it can."""
    if not any(f in IDENTIFIERS for f in fields):
        return "an event needs its profile: map a column to email, phone_number or external_id"
    return None


def encode(entry: Mapping[str, Any]) -> bytes:
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _body(parts: list[bytes]) -> bytes:
    return (b'{"data":{"type":"event-bulk-create-job","attributes":{"events-bulk-create":{"data":['
            + b",".join(parts) + b"]}}}}")


def _time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        stamp = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
        return stamp.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).isoformat()
    converted = to_json_value(value)
    if not isinstance(converted, str):
        raise UnencodableValue("must be a timestamp")
    return converted
