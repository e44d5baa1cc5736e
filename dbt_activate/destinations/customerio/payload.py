"""Customer.io Track API v2 batch items, size-bound packing, and per-item results (pure, no IO).

Shapes (contracts SUMMARY §6; docs.customer.io/api/track/ ``POST /api/v2/batch``): the body is
``{"batch": [item, …]}`` and must stay under 500 KB, each item under 32 KB. An item is
``{"type": "person", "identifiers": {"id": "u1"}, "action": "identify"|"event"|"delete", …}``.
Per-item failures come back as ``{"errors": [{"batch_index": 1, "reason": "invalid", "field":
"identifiers", "message": "…"}]}`` (a 207; shape from Customer.io's own client code in
segmentio/action-destinations ``customerio/utils.ts`` [3P]); a request-level 400 is
``{"meta": {"error": "…"}}`` (docs.customer.io/journeys/invalid-api-requests).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult
from dbt_activate.delivery import JSONValue, UnencodableValue, body_snippet, vendor_json_value
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import Redactor

# Both limits are read as decimal kilobytes, the stricter reading of Customer.io's "500kb"/"32kb".
MAX_REQUEST_BYTES = 500_000
MAX_ITEM_BYTES = 32_000
_ENVELOPE = len(b'{"batch":[]}')
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass
class Request:
    """One ``/api/v2/batch`` request: encoded items and the record key of each index."""

    items: list[bytes] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    size: int = _ENVELOPE

    def body(self) -> bytes:
        return b'{"batch":[' + b",".join(self.items) + b"]}"


def cio_value(value: Any) -> JSONValue:
    """A warehouse value as Customer.io wants it: JSON, with dates and times as Unix seconds.

    Customer.io segments and liquid treat an attribute as a date only when it is a Unix timestamp;
    a date is midnight UTC, a timestamp without a time zone is taken as UTC.
    """
    return vendor_json_value(value, _unix_seconds, number="a JSON number")


def _unix_seconds(value: dt.date) -> int:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return math.floor(aware.timestamp())
    return math.floor(dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc).timestamp())


def cio_attributes(values: Mapping[str, Any], exclude: Sequence[str] = (), *,
                   null: JSONValue = "") -> dict[str, JSONValue]:
    """Every field but ``exclude``; a NULL becomes ``null`` (``""`` removes the attribute in Customer.io)."""
    out: dict[str, JSONValue] = {}
    for name, value in values.items():
        if name in exclude:
            continue
        try:
            out[name] = null if value is None else cio_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    return out


def event_id(seed: str, millis: int) -> str:
    """A ULID for an event: ``millis`` as its time, the rest from ``seed``.

    Customer.io deduplicates events by ``id``; the same record in the same run always gets the same
    id, so an events batch sent again after a lost answer is not recorded twice.
    """
    number = (millis & (2**48 - 1)) << 80 | int.from_bytes(hashlib.sha256(seed.encode()).digest()[:10], "big")
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def encode_item(item: Mapping[str, Any]) -> bytes:
    return json.dumps(item, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def pack(items: Sequence[tuple[str, bytes]], result: BatchResult, limit: int = MAX_REQUEST_BYTES,
         item_limit: int = MAX_ITEM_BYTES) -> list[Request]:
    """Pack (key, encoded item) pairs into requests under ``limit`` bytes, in order.

    An item over ``item_limit`` is rejected with its size: Customer.io would refuse it.
    """
    requests: list[Request] = []
    for key, item in items:
        if len(item) > item_limit:
            result.rejected[key] = (f"the record is {len(item):,} bytes as JSON; Customer.io accepts at most "
                                    f"{item_limit // 1000} KB per item (map fewer or shorter fields)")
            continue
        cost = len(item) + (1 if requests and requests[-1].items else 0)
        if not requests or requests[-1].size + cost > limit:
            requests.append(Request())
            cost = len(item)
        last = requests[-1]
        last.items.append(item)
        last.keys.append(key)
        last.size += cost
    return requests


def read_batch(response: httpx.Response, request: Request, result: BatchResult, redactor: Redactor) -> None:
    """Fill ``result`` from the answer to one ``/api/v2/batch`` request (2xx or another 4xx)."""
    body = json_object(response)
    status = response.status_code
    if 200 <= status < 300:
        unnamed: list[str] = []
        errors = body.get("errors") or []
        for error in errors if isinstance(errors, list) else [errors]:
            if not isinstance(error, dict):
                # An error we cannot read names no item: it must not acknowledge the request's records.
                text = f"Customer.io reported an error: {json.dumps(error, default=str)}"
                unnamed.append(clip_reason(redactor(text)))
                continue
            index = error.get("batch_index")
            reason = _reason(error, redactor)
            if isinstance(index, int) and 0 <= index < len(request.keys):
                result.rejected.setdefault(request.keys[index], reason)
            else:
                unnamed.append(reason)
        if unnamed:
            # An error that names no item: we cannot tell which records were refused.
            for key in request.keys:
                result.rejected.setdefault(key, unnamed[0])
        return
    meta = body.get("meta")
    message = meta.get("error") if isinstance(meta, dict) else None
    reason = redactor(f"HTTP {status}: {message or body_snippet(response)}")
    result.rejected.update(dict.fromkeys(request.keys, clip_reason(reason)))


def _reason(error: Mapping[str, Any], redactor: Redactor) -> str:
    message = error.get("message")
    text = str(message) if message else f"{error.get('reason') or 'error'}: {error.get('field') or 'unknown field'}"
    return clip_reason(redactor(text))
