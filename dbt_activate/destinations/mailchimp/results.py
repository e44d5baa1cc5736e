"""Mailchimp responses -> per-member results (pure: a response in, a ``BatchResult`` filled in).

Batch subscribe (``POST /3.0/lists/{id}``) answers ``200`` even when members were refused: each
``errors[{email_address, error, error_code, field, field_message}]`` entry rejects the record sent
with that address, except ``ERROR_CONTACT_EXISTS`` (the member exists: the caller skips it on
``create`` or updates it on ``upsert``); an error naming no address sent rejects every record not
listed in ``new_members``/``updated_members``. A 4xx to the whole request is an RFC 7807 problem
``{type, title, status, detail, instance, errors[]}`` and rejects every record with ``title: detail
(field: message)``. Member DELETE/PATCH: 2xx and 404 (already gone) acknowledge, another 4xx
rejects. Member PUT (and its tags): 2xx acknowledges, any 4xx rejects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult
from dbt_activate.delivery import body_snippet
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import DestinationError, Redactor

CONTACT_EXISTS = "ERROR_CONTACT_EXISTS"


def read_batch_response(name: str, response: httpx.Response, members: Mapping[str, Mapping[str, Any]],
                        result: BatchResult, redactor: Redactor) -> dict[str, str]:
    """Fill ``result`` from the answer to a batch subscribe; the records whose member already exists
    (``ERROR_CONTACT_EXISTS``), with Mailchimp's words, are returned instead."""
    status = response.status_code
    body = json_object(response)
    existing: dict[str, str] = {}
    if 400 <= status < 500:
        reason = problem_reason(response, body, redactor)
        result.rejected.update(dict.fromkeys(members, reason))
        return existing
    if status != 200:
        raise DestinationError(redactor(f"{name}: Mailchimp answered HTTP {status} {response.reason_phrase} to the "
                                        f"batch: {body_snippet(response)}; the batch is not acknowledged"))
    by_email = {str(m["email_address"]).lower(): key for key, m in members.items()}
    unnamed = ""
    for error in _dicts(body.get("errors")):
        key = by_email.get(str(error.get("email_address") or "").strip().lower())
        reason = _member_reason(error, redactor)
        if key is None:
            unnamed = unnamed or reason
        elif error.get("error_code") == CONTACT_EXISTS:
            existing[key] = reason
        else:
            result.rejected[key] = reason
    if unnamed:
        # An error names no member we sent: only members Mailchimp lists as written are known to be.
        written = {str(m.get("email_address") or "").lower() for part in ("new_members", "updated_members")
                   for m in _dicts(body.get(part))}
        for email, key in by_email.items():
            if email not in written and key not in result.rejected and key not in existing:
                result.rejected[key] = unnamed
    return existing


def read_member_response(name: str, response: httpx.Response, key: str, result: BatchResult,
                         redactor: Redactor, *, missing_is_error: bool = False) -> None:
    """DELETE or PATCH of one member: 2xx and 404 (already gone) acknowledge, another 4xx rejects;
    with ``missing_is_error`` (a write that needs the member) a 404 rejects too."""
    status = response.status_code
    if 200 <= status < 300 or (status == 404 and not missing_is_error):
        return
    if 400 <= status < 500:
        result.rejected[key] = problem_reason(response, json_object(response), redactor)
        return
    raise DestinationError(redactor(f"{name}: Mailchimp answered HTTP {status} {response.reason_phrase}: "
                                    f"{body_snippet(response)}; the member is not acknowledged"))


def read_put_response(name: str, response: httpx.Response, key: str, result: BatchResult,
                      redactor: Redactor) -> dict[str, Any] | None:
    """``PUT …/members/{hash}``: the member as stored (2xx), else ``None`` with the record rejected (4xx)."""
    if 200 <= response.status_code < 300:
        return json_object(response)
    read_member_response(name, response, key, result, redactor, missing_is_error=True)
    return None


def problem_reason(response: httpx.Response, body: Mapping[str, Any], redactor: Redactor) -> str:
    """``title: detail`` of an RFC 7807 problem, with its field errors; the body's start otherwise."""
    if not body.get("title") and not body.get("detail"):
        return clip_reason(redactor(f"HTTP {response.status_code}: {body_snippet(response)}"))
    text = f"{body.get('title') or response.status_code}: {body.get('detail') or ''}".strip()
    fields = [f"{e.get('field')}: {e.get('message')}" for e in _dicts(body.get("errors")) if e.get("message")]
    return clip_reason(redactor(text + (f" ({'; '.join(fields)})" if fields else "")))


def _member_reason(error: Mapping[str, Any], redactor: Redactor) -> str:
    text = str(error.get("error") or "refused")
    if error.get("field") and error.get("field_message"):
        text += f" ({error['field']}: {error['field_message']})"
    code = error.get("error_code")
    return clip_reason(redactor(f"{code}: {text}" if code else text))


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
