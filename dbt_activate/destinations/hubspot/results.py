"""HubSpot batch responses -> per-record results (pure: a response in, a ``BatchResult`` filled in).

Shapes (contracts SUMMARY §1, "Responses"): ``200``/``201``/``204`` when every input was written;
``207`` multi-status with ``errors[]`` of StandardError ``{category, message, context, errors[]}``
for the inputs that failed; ``400`` (``409`` when every failure is a conflict) when every input
failed, with one entry per input in ``errors[]``. An error names its input through
``context.objectWriteTraceId`` (we send the record key there) or ``context.ids`` (the ``id`` sent).

What an error means depends on the operation: a CONFLICT on ``create`` is a record that already
exists (skipped), OBJECT_NOT_FOUND on ``update`` a record HubSpot does not have (skipped) and on
``clear`` a record already gone (acknowledged: there is nothing left to clear); anything else
rejects the record with HubSpot's reason. A 4xx whose errors name no record rejects the whole batch.

Every response also says how many requests the app has left in HubSpot's 10-second window
(``X-HubSpot-RateLimit-Remaining``), read for the shared rate limiter by ``limit_headers``, and a
429 of the daily limit becomes ``QuotaExhaustedError`` (``daily_quota_error``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.delivery import RateLimitHeaders, body_snippet
from dbt_activate.errors import DestinationError, QuotaExhaustedError, Redactor

REASON_LIMIT = 500
_INVALID_PROPERTIES = "Property values were not valid"
_SKIP, _ACK, _REJECT = "skip", "ack", "reject"


@dataclass
class Prepared:
    """One batch's request, and how to find its records in the response."""

    path: str
    id_property: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    sent: dict[str, str] = field(default_factory=dict)  # key -> id value sent ("" without idProperty)
    _by_id: dict[str, str] = field(default_factory=dict)  # id value -> key
    _by_folded: dict[str, str] = field(default_factory=dict)  # casefolded id value -> key

    def claim(self, value: str, key: str, *, case_insensitive: bool) -> str | None:
        """Record that ``key`` is sent with id ``value``; the key that already claimed it, if any."""
        folded = value.casefold()
        earlier = self._by_folded.get(folded) if case_insensitive else self._by_id.get(value)
        if earlier is not None:
            return earlier
        self._by_id[value] = key
        self._by_folded.setdefault(folded, key)
        return None

    def key_for_id(self, value: Any) -> str | None:
        """The record sent with id ``value``; HubSpot may echo it normalised (emails lower-cased)."""
        if value is None:
            return None
        text = str(value)
        return self._by_id.get(text) or self._by_folded.get(text.casefold())


@dataclass(frozen=True)
class InFlightHeaders(RateLimitHeaders):
    """HubSpot's ``X-HubSpot-RateLimit-Remaining``, read with room for the requests in flight.

    With N batches in flight, requests reach HubSpot in another order than they started, so the
    count in a response may already include up to N-1 requests that started after it. The limiter
    takes every later request as not yet counted, so it would believe HubSpot has up to N-1 fewer
    requests left than it has, and hold back for a whole interval: measured, a sync then ran at 86-94%
    of the 100/10 s window instead of 98%. Adding N-1 back keeps the header for what it is for,
    noticing another app spending the same quota, at the cost of at most N-1 requests answered 429
    (and retried) when one does.
    """

    slack: int = 0

    def read(self, headers: httpx.Headers) -> tuple[int, float | None] | None:
        seen = super().read(headers)
        return None if seen is None else (seen[0] + self.slack, seen[1])


def limit_headers(concurrency: int) -> InFlightHeaders:
    return InFlightHeaders("X-HubSpot-RateLimit-Remaining", "X-HubSpot-RateLimit-Interval-Milliseconds",
                           interval_scale=0.001, slack=max(0, concurrency - 1))


def daily_quota_error(name: str, response: httpx.Response, redactor: Redactor) -> QuotaExhaustedError | None:
    """The error for a 429 of HubSpot's daily limit (``policyName: DAILY``); None for any other response."""
    if response.status_code != 429:
        return None
    body = _json(response)
    if body.get("policyName") != "DAILY":
        return None
    limit = response.headers.get("X-HubSpot-RateLimit-Daily")
    detail = f"{body.get('message') or 'daily limit reached'}" + (f" (daily limit {limit} requests)" if limit else "")
    return QuotaExhaustedError(redactor(
        f"{name}: HubSpot's daily API limit for this account is used up: {detail}. The sync stopped; its unsent "
        "rows go with the next run, after the limit resets at midnight in the account's time zone"))


def read_batch_response(name: str, response: httpx.Response, prepared: Prepared, operation: Operation,
                        result: BatchResult, redactor: Redactor) -> None:
    """Fill ``result`` from the answer to a create/update/upsert batch."""
    status = response.status_code
    if status in (200, 201, 204):
        return
    body = _json(response)
    if status == 207:
        errors = _dicts(body.get("errors"))
        confirmed = {str(r.get("objectWriteTraceId")) for r in _dicts(body.get("results"))}
        unnamed = _apply_errors(errors, prepared, operation, result, redactor)
        if unnamed:
            # An error names no input: only records the results confirm are known to be written.
            for key in prepared.sent:
                if key not in confirmed and key not in result.rejected and key not in result.skipped:
                    result.rejected[key] = unnamed
        return
    if 400 <= status < 500:
        _all_failed(response, body, prepared, operation, result, redactor)
        return
    raise DestinationError(redactor(f"{name}: HubSpot answered HTTP {status} {response.reason_phrase} to "
                                    f"{prepared.path}: {body_snippet(response)}; the batch is not acknowledged"))


def record_ids_found(name: str, response: httpx.Response, prepared: Prepared, result: BatchResult,
                     redactor: Redactor) -> dict[str, str]:
    """Record IDs (by record key) from the ``batch/read`` made before an archive.

    A record is taken as already gone only when HubSpot says so (OBJECT_NOT_FOUND naming it) or when
    every result could be matched to its input and it is not among them; otherwise it is rejected,
    since we cannot tell whether HubSpot still has it.
    """
    status = response.status_code
    body = _json(response)
    if 400 <= status < 500:
        _all_failed(response, body, prepared, Operation.DELETE, result, redactor)
        return {}
    if status not in (200, 207):
        raise DestinationError(redactor(f"{name}: HubSpot answered HTTP {status} {response.reason_phrase} to "
                                        f"{prepared.path}: {body_snippet(response)}; nothing was archived"))
    found: dict[str, str] = {}
    unmatched = 0
    for item in _dicts(body.get("results")):
        props = item.get("properties")
        key = prepared.key_for_id(props.get(prepared.id_property or "") if isinstance(props, dict) else None)
        if key is None or item.get("id") in (None, ""):
            unmatched += 1
        else:
            found[key] = str(item["id"])
    gone: set[str] = set()
    for error in _dicts(body.get("errors")):
        keys = _keys_of(error, prepared)
        if _category(error) == "OBJECT_NOT_FOUND":
            gone.update(keys)
        else:
            result.rejected.update(dict.fromkeys(keys, _reason(error, redactor)))
    for key in prepared.sent:
        if key in found or key in gone or key in result.rejected:
            continue
        if unmatched:
            result.rejected[key] = ("HubSpot's batch/read returned records without their "
                                    f"{prepared.id_property}; cannot tell whether this record still exists")
    for key in result.rejected:
        found.pop(key, None)
    return found


def archive_ids(found: Mapping[str, str]) -> dict[str, Any]:
    return {"inputs": [{"id": record_id} for record_id in dict.fromkeys(found.values())]}


def _all_failed(response: httpx.Response, body: Mapping[str, Any], prepared: Prepared, operation: Operation,
                result: BatchResult, redactor: Redactor) -> None:
    """A 4xx: every input failed. Per record when the errors name them, else the whole batch."""
    top = {**body, "category": _category(body) or f"HTTP {response.status_code}"}
    if not body.get("message"):
        top["message"] = body_snippet(response)
    details = [{**d, "category": _category(d) or top["category"]} for d in _dicts(body.get("errors"))]
    named = [d for d in details if _keys_of(d, prepared)]
    if not named and len(prepared.sent) == 1:
        # The only input: HubSpot's error is its error (e.g. a 409 "Contact already exists").
        named = [{**top, "context": {"objectWriteTraceId": list(prepared.sent)}}]
    _apply_errors(named, prepared, operation, result, redactor)
    whole = _reason(top, redactor, with_details=not named)
    for key in prepared.sent:
        if key not in result.rejected and key not in result.skipped and key not in _acknowledged(named, prepared,
                                                                                                   operation):
            result.rejected[key] = whole


def _apply_errors(errors: Iterable[Mapping[str, Any]], prepared: Prepared, operation: Operation,
                  result: BatchResult, redactor: Redactor) -> str:
    """Per-record outcomes of ``errors``; returns the reason of the first error naming no record, or ""."""
    unnamed = ""
    for error in errors:
        keys = _keys_of(error, prepared)
        if not keys:
            unnamed = unnamed or _reason(error, redactor)
            continue
        outcome = _outcome(operation, _category(error))
        if outcome == _ACK:
            continue
        target = result.skipped if outcome == _SKIP else result.rejected
        reason = _reason(error, redactor)
        for key in keys:
            if key not in result.rejected:
                target.setdefault(key, reason)
    return unnamed


def _acknowledged(errors: Iterable[Mapping[str, Any]], prepared: Prepared, operation: Operation) -> set[str]:
    return {k for e in errors if _outcome(operation, _category(e)) == _ACK for k in _keys_of(e, prepared)}


def _outcome(operation: Operation, category: str) -> str:
    if category == "CONFLICT" and operation is Operation.CREATE:
        return _SKIP
    if category == "OBJECT_NOT_FOUND":
        if operation is Operation.UPDATE:
            return _SKIP
        if operation in (Operation.CLEAR, Operation.DELETE):
            return _ACK
    return _REJECT


def _keys_of(error: Mapping[str, Any], prepared: Prepared) -> list[str]:
    context = error.get("context")
    if not isinstance(context, dict):
        return []
    traced = [t for t in _strings(context.get("objectWriteTraceId")) if t in prepared.sent]
    if traced:
        return traced
    return [k for k in (prepared.key_for_id(i) for i in _strings(context.get("ids"))) if k is not None]


def _category(error: Mapping[str, Any]) -> str:
    # StandardError has `category`; the per-input details of an all-failed 400 carry it as `code`.
    return str(error.get("category") or error.get("code") or "")


def _reason(error: Mapping[str, Any], redactor: Redactor, *, with_details: bool = True) -> str:
    category = _category(error)
    details = [d for d in _dicts(error.get("errors")) if d.get("message")] if with_details else []
    if details and all(d.get("in") for d in details):
        text = "; ".join(f"{d['in']}: {d['message']}" for d in details)
    else:
        text = _property_problems(str(error.get("message") or "no message"))
    reason = redactor(f"{category}: {text}" if category and not text.startswith(category) else text)
    return reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…"


def _property_problems(message: str) -> str:
    """``Property values were not valid: [{"name": "email", "message": "…"}, …]`` -> ``email: …; …``.

    HubSpot puts the invalid properties of a record as JSON inside its message; read that way,
    the reason names each property instead of quoting escaped JSON.
    """
    prefix, _, listed = message.partition(": ")
    if prefix != _INVALID_PROPERTIES or not listed.startswith("["):
        return message
    try:
        problems = _dicts(json.loads(listed))
    except ValueError:
        return message
    texts = [f"{p['name']}: {p['message']}" if p.get("name") else str(p["message"]) for p in problems
             if p.get("message")]
    return "; ".join(texts) or message


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)] if value not in (None, "") else []
