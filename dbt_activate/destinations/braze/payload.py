"""Braze ``/users/track`` and ``/users/delete`` bodies, and their answers read per record (pure, no IO).

Shapes (contracts SUMMARY §4, from braze-inc/braze-docs ``post_user_track.md`` and
braze.com/docs/api/errors): a request carries ``attributes``, ``events`` and ``purchases`` arrays of
objects, each naming its user by ``external_id``, ``user_alias``, ``braze_id``, ``email`` or
``phone``. The answer is ``{"message": "success", "attributes_processed": n, ...}``; with minor
errors it adds ``"errors": [{"type": "…", "input_array": "attributes", "index": 1}]`` and every
object not named there was still processed. A fatal error is ``{"message": "<fatal>", "errors": […]}``
with a 4xx, and nothing of the request was processed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult
from dbt_activate.delivery import JSONValue, UnencodableValue, body_snippet, vendor_json_value
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import Redactor

IDENTIFIERS = ("external_id", "email", "phone", "braze_id", "user_alias")
# The /users/delete body field for each identifier.
DELETE_FIELDS = {"external_id": "external_ids", "email": "email_addresses", "phone": "phone_numbers",
                 "braze_id": "braze_ids", "user_alias": "user_aliases"}
# /users/delete by email or phone names each user by an object with a `prioritization`: which of the
# users sharing that address to delete (braze-inc/braze-docs post_user_delete.md, "Deleting users by
# email addresses and phone numbers"). At most one of identified/unidentified may appear.
PRIORITIZATIONS = ("identified", "unidentified", "most_recently_updated")
DEFAULT_PRIORITIZATION = ("most_recently_updated",)
EVENT_TIME_FIELD = "time"  # a mapped field with this name is the event's time; else the time of sending


@dataclass
class Prepared:
    """One request and which record sits at each index of its input array."""

    path: str
    array: str  # "attributes", "events" or the /users/delete field
    body: dict[str, Any] = field(default_factory=dict)
    keys: list[str] = field(default_factory=list)


def braze_value(value: Any) -> JSONValue:
    """A warehouse value as Braze stores it: JSON, with times as ISO 8601 in UTC.

    Braze recognises a time attribute by its ISO 8601 text; a date becomes midnight UTC so it is a
    time attribute too (a bare ``2024-05-01`` would be stored as a string).
    """
    return vendor_json_value(value, _braze_time, number="a number Braze can store")


def _braze_time(value: dt.date) -> str:
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.timezone.utc) if value.tzinfo else value
        text = utc.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{text}.{utc.microsecond // 1000:03d}Z" if utc.microsecond else text + "Z"
    return f"{value.isoformat()}T00:00:00Z"


def braze_values(values: Mapping[str, Any], exclude: Sequence[str] = ()) -> dict[str, JSONValue]:
    """Every field but ``exclude``; a NULL is sent as null, which removes the attribute in Braze."""
    out: dict[str, JSONValue] = {}
    for name, value in values.items():
        if name in exclude:
            continue
        try:
            out[name] = braze_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    return out


def identifier_of(identifier: str, value: Any, alias_label: str) -> dict[str, JSONValue]:
    """The object fields that name a user, e.g. ``{"external_id": "u1"}``."""
    text = "" if value is None else str(braze_value(value))
    if not text:
        raise UnencodableValue(f"the user identifier ({identifier}) is empty")
    if identifier == "user_alias":
        return {"user_alias": {"alias_name": text, "alias_label": alias_label}}
    return {identifier: text}


def delete_entry(identifier: str, who: Mapping[str, JSONValue],
                 prioritization: Sequence[str]) -> JSONValue:
    """One element of the /users/delete array: a bare id, an alias object, or for an email or a
    phone ``{"email": …, "prioritization": [...]}`` (Braze refuses a bare address there)."""
    if identifier in ("email", "phone"):
        return {identifier: who[identifier], "prioritization": list(prioritization)}
    return who[identifier]


def check_prioritization(value: Any) -> tuple[str, ...]:
    """``delete_prioritization`` as Braze accepts it; ``ValueError`` says why not."""
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a non-empty list of {', '.join(PRIORITIZATIONS)}, got {value!r}")
    unknown = [v for v in value if v not in PRIORITIZATIONS]
    if unknown:
        raise ValueError(f"{', '.join(map(repr, unknown))} is not one of {', '.join(PRIORITIZATIONS)}")
    if "identified" in value and "unidentified" in value:
        raise ValueError("may hold only one of 'identified' and 'unidentified'")
    if len(set(value)) != len(value):
        raise ValueError(f"lists a value twice: {value!r}")
    return tuple(value)


def read_track(response: httpx.Response, prepared: Prepared, result: BatchResult, redactor: Redactor) -> None:
    """Fill ``result`` from the answer to ``/users/track`` (2xx or a fatal 4xx)."""
    body = json_object(response)
    named, unnamed = _split_errors(body.get("errors"), prepared, redactor)
    status = response.status_code
    if 200 <= status < 300:
        for index, reason in named.items():
            result.rejected[prepared.keys[index]] = reason
        processed = body.get(f"{prepared.array}_processed")
        unconfirmed = isinstance(processed, int) and processed < len(prepared.keys) - len(named)
        if unnamed and (unconfirmed or not isinstance(processed, int)):
            # A minor error names no object: only what Braze counts as processed is known to be written,
            # and it does not say which, so none of the others may be marked as synced.
            for index, key in enumerate(prepared.keys):
                if index not in named:
                    result.rejected[key] = unnamed[0]
        return
    # A fatal error: nothing of the request was processed.
    fatal = clip_reason(redactor(f"HTTP {status}: {body.get('message') or body_snippet(response)}"))
    if unnamed:
        fatal = clip_reason(f"{fatal}; {'; '.join(unnamed)}")
    for index, key in enumerate(prepared.keys):
        result.rejected[key] = named.get(index, fatal)


def read_delete(response: httpx.Response, prepared: Prepared, result: BatchResult, redactor: Redactor) -> None:
    """``/users/delete`` answers ``{"deleted": n}``: users it did not have are simply not counted."""
    if 200 <= response.status_code < 300:
        return
    body = json_object(response)
    errors = body.get("errors")
    detail = "; ".join(map(str, errors)) if isinstance(errors, list) else ""
    reason = clip_reason(redactor(f"HTTP {response.status_code} from /users/delete: "
                            f"{body.get('message') or body_snippet(response)}" + (f" ({detail})" if detail else "")))
    result.rejected.update(dict.fromkeys(prepared.keys, reason))


def _split_errors(errors: Any, prepared: Prepared, redactor: Redactor) -> tuple[dict[int, str], list[str]]:
    """Errors that name an object of our array (by index), and the text of the others."""
    named: dict[int, str] = {}
    unnamed: list[str] = []
    for error in errors if isinstance(errors, list) else []:
        if isinstance(error, dict):
            text = clip_reason(redactor(str(error.get("type") or error.get("message") or error)))
            index = error.get("index")
            if (error.get("input_array") == prepared.array and isinstance(index, int)
                    and 0 <= index < len(prepared.keys)):
                named.setdefault(index, text)
                continue
            if error.get("input_array") not in (None, prepared.array):
                continue  # an error in an array we did not send cannot concern our records
            unnamed.append(text)
        else:
            unnamed.append(clip_reason(redactor(str(error))))
    return named, unnamed
