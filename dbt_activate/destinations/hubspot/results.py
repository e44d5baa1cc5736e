"""HubSpot batch responses -> per-record results (pure: a response in, a ``BatchResult`` filled in).

Shapes (contracts SUMMARY §1, "Responses"): ``200``/``201``/``204`` when every input was written;
``207`` multi-status with ``errors[]`` of StandardError ``{category, message, context, errors[]}``
for the inputs that failed; ``400`` (``409`` when every failure is a conflict) when every input
failed, with one entry per input in ``errors[]``. An error names its input through
``context.objectWriteTraceId`` (we send the record key there) or ``context.ids`` (the ``id`` sent).

What an error means depends on the operation: a conflict on ``create`` is a record that already
exists (skipped), OBJECT_NOT_FOUND on ``update`` a record HubSpot does not have (skipped) and on
``clear`` a record already gone (acknowledged: there is nothing left to clear); anything else
rejects the record with HubSpot's reason. A conflict is ``CONFLICT`` in older answers and
``OBJECT_ALREADY_EXISTS`` (with ``"error": "CONTACT_EXISTS"`` and ``errors: [{message, in:
"email"}]``) since 2024 (HubSpot community, "Updated 409 Conflict responses",
https://community.hubspot.com/t5/APIs-Integrations/Updated-409-Conflict-responses/m-p/951534).

A 400 or 409 whose errors name no input, on a batch of several, is HubSpot refusing the whole batch
for what one input carries (``refusal``): ``isolation.py`` then finds that input. ``named_inputs``
reads which inputs the refusal names by value (``Property values were not valid: [{"name": "email",
"message": "Email address x is invalid", …}]``, or ``{"in": "email", "message": "A contact with
email x already exists…"}``). Any other 4xx whose errors name no record (a request-level error such
as an ``idProperty`` that is not unique) rejects the whole batch: it would refuse every part alike.

Every response also says how many requests the app has left in HubSpot's 10-second window
(``X-HubSpot-RateLimit-Remaining``), read for the shared rate limiter by ``limit_headers``, and a
429 of the daily limit becomes ``QuotaExhaustedError`` (``daily_quota_error``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.delivery import RateLimitHeaders, body_snippet
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import DestinationError, QuotaExhaustedError, Redactor

CONFLICTS = frozenset({"CONFLICT", "OBJECT_ALREADY_EXISTS"})  # the older and the 2024 category of a 409
_INVALID_PROPERTIES = "Property values were not valid"
# Problems of a property itself, not of a value: every input that sets the property carries them.
_PROPERTY_LEVEL = frozenset({"PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE"})
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

    def subset(self, keys: Iterable[str]) -> Prepared:
        """The same request for the records ``keys`` only (inputs of a write, in their order)."""
        wanted = set(keys)
        part = Prepared(self.path, self.id_property)
        part.inputs = [i for i in self.inputs if str(i.get("objectWriteTraceId")) in wanted]
        part.body = {"inputs": part.inputs}
        for key, value in self.sent.items():
            if key in wanted:
                part.sent[key] = value
                part.claim(value, key, case_insensitive=self.id_property == "email")
        return part


@dataclass(frozen=True)
class Problem:
    """One thing a refusal says is wrong: a property, HubSpot's message about it, its error code."""

    property: str
    message: str
    code: str = ""


@dataclass(frozen=True)
class Refusal:
    """HubSpot's answer refusing a whole batch of several inputs without saying which one failed."""

    category: str
    reason: str  # HubSpot's message as a rejection reason
    problems: tuple[Problem, ...]  # what the answer names: properties, and values inside the messages


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
    body = json_object(response)
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
    body = json_object(response)
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


def refusal(response: httpx.Response, prepared: Prepared, operation: Operation,
            redactor: Redactor) -> Refusal | None:
    """The whole-batch refusal in ``response``; None for any other answer (``read_batch_response`` reads it).

    Only a 409, or a 400 that names properties, refuses a batch for what an input carries; a
    single input takes the error as its own (``read_batch_response``), and errors that name their
    inputs are per record.
    """
    status = response.status_code
    if status not in (400, 409) or operation is Operation.DELETE or len(prepared.sent) < 2:
        return None
    body = json_object(response)
    details = _dicts(body.get("errors"))
    if any(_keys_of(d, prepared) for d in details):
        return None
    category = _category(body) or f"HTTP {status}"
    conflict = status == 409 or category in CONFLICTS
    problems = _listed_problems(str(body.get("message") or ""))
    if conflict:  # the 2024 body: errors[{message, in: "email"}]; a 400's `in` may name a request part
        problems += [Problem(str(d["in"]), str(d.get("message") or ""), str(d.get("code") or ""))
                     for d in details if d.get("in")]
    elif not problems:
        return None  # request-level: every part of the batch would be refused alike
    if not body.get("message"):
        body = {**body, "message": body_snippet(response)}
    return Refusal(category, _reason({**body, "category": category}, redactor), tuple(problems))


def named_inputs(refused: Refusal, prepared: Prepared, redactor: Redactor) -> tuple[dict[str, str], bool]:
    """The inputs carrying what ``refused`` names, with their reasons, and whether that is certain.

    A problem names its input by value: the value the input sends for the problem's property
    (its ``id`` when that property is the ``idProperty``) appears in HubSpot's message as a whole
    token. A problem of the property itself (``PROPERTY_DOESNT_EXIST``) names every input that sets
    it. Certain when each problem matched one value only; a message that also lists allowed values
    (``"mint" was not one of the allowed options: [chocolate, …]``) matches several, and then the
    value HubSpot mentions first is taken, uncertain: the caller sends those inputs apart to check.
    """
    named: dict[str, str] = {}
    certain = True
    for problem in refused.problems:
        carriers = _values_of(problem.property, prepared.inputs)
        if problem.code in _PROPERTY_LEVEL:
            chosen = set(carriers)
        else:
            folded = problem.property == "email"
            found = {v: at for v in set(carriers.values()) if (at := _token_at(problem.message, v, folded)) >= 0}
            if not found:
                continue
            first = min(found, key=lambda v: (found[v], -len(v)))
            certain = certain and len(found) == 1
            chosen = {k for k, v in carriers.items() if v == first}
        reason = _reason({"category": refused.category, "message": f"{problem.property}: {problem.message}"},
                         redactor)
        for key in chosen:
            named[key] = f"{named[key]}; {reason}" if key in named else reason
    return named, certain and bool(named)


def settle(keys: Iterable[str], category: str, reason: str, operation: Operation, result: BatchResult) -> None:
    """Record HubSpot's refusal of ``keys``: skipped, acknowledged or rejected as the operation makes it."""
    outcome = _outcome(operation, category)
    if outcome == _ACK:
        return
    target = result.skipped if outcome == _SKIP else result.rejected
    for key in keys:
        if key not in result.rejected:
            target.setdefault(key, reason)


def _values_of(name: str, inputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Record key -> the non-empty value each input sends for property ``name``."""
    out: dict[str, str] = {}
    for item in inputs:
        props = item.get("properties")
        value = props.get(name) if isinstance(props, dict) else None
        if value is None and (item.get("idProperty") or "hs_object_id") == name:
            value = item.get("id")
        if value not in (None, ""):
            out[str(item.get("objectWriteTraceId"))] = str(value)
    return out


def _token_at(message: str, value: str, folded: bool) -> int:
    """Where ``value`` occurs in ``message`` as a whole token (not inside a longer word or address), or -1."""
    pattern = r"(?<![\w@.+-])" + re.escape(value) + r"(?![\w@+-]|\.\w)"
    found = re.search(pattern, message, re.IGNORECASE if folded else 0)
    return found.start() if found else -1


def record_ids_found(name: str, response: httpx.Response, prepared: Prepared, result: BatchResult,
                     redactor: Redactor) -> dict[str, str]:
    """Record IDs (by record key) from the ``batch/read`` made before an archive.

    A record is taken as already gone only when HubSpot says so (OBJECT_NOT_FOUND naming it) or when
    every result could be matched to its input and it is not among them; otherwise it is rejected,
    since we cannot tell whether HubSpot still has it.
    """
    status = response.status_code
    body = json_object(response)
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
    if category in CONFLICTS and operation is Operation.CREATE:
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
    return clip_reason(reason)


def _property_problems(message: str) -> str:
    """``Property values were not valid: [{"name": "email", "message": "…"}, …]`` -> ``email: …; …``.

    HubSpot puts the invalid properties of a record as JSON inside its message; read that way,
    the reason names each property instead of quoting escaped JSON.
    """
    texts = [f"{p['name']}: {p['message']}" if p.get("name") else str(p["message"]) for p in _listed(message)
             if p.get("message")]
    return "; ".join(texts) or message


def _listed_problems(message: str) -> list[Problem]:
    """The named properties of a ``Property values were not valid: [...]`` message."""
    return [Problem(str(p["name"]), str(p.get("message") or ""), str(p.get("error") or ""))
            for p in _listed(message) if p.get("name")]


def _listed(message: str) -> list[dict[str, Any]]:
    prefix, _, listed = message.partition(": ")
    if prefix != _INVALID_PROPERTIES or not listed.startswith("["):
        return []
    try:
        return _dicts(json.loads(listed))
    except ValueError:
        return []


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _strings(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)] if value not in (None, "") else []
