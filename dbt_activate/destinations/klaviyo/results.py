"""Klaviyo responses -> per-record results (pure: a response in, a ``BatchResult`` filled in).

A bulk import job (``klaviyo``) is ``Job``: its profiles as sent and how to find their records again.
Klaviyo's import errors (``GET /api/profile-bulk-import-jobs/{id}/import-errors``, resources
``{code, title, detail, source: {pointer}, original_payload}``) name a profile by its index in the
job (``source.pointer`` ``/data/attributes/profiles/data/<i>/…``) or by the identifiers in
``original_payload``; each rejects its record with ``code: detail (attribute)``. A 4xx to a job or
an events request (JSON:API ``errors[]``) rejects every record it carried.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from dbt_activate.core.types import BatchResult
from dbt_activate.delivery import body_snippet
from dbt_activate.destinations.api import clip_reason, json_object
from dbt_activate.errors import DestinationError, Redactor

_POINTER = re.compile(r"^/data/attributes/profiles/data/(\d+)(?:/|$)")


@dataclass
class Job:
    """The profiles of one import job, encoded, with how to find their records again."""

    keys: list[str] = field(default_factory=list)  # by index in the job's profiles
    encoded: list[bytes] = field(default_factory=list)
    size: int = 0
    by_identifier: dict[tuple[str, str], str] = field(default_factory=dict)  # (identifier, value) -> key

    def add(self, key: str, encoded: bytes, attributes: Mapping[str, Any], identifiers: Sequence[str]) -> None:
        self.keys.append(key)
        self.encoded.append(encoded)
        self.size += len(encoded) + 1
        for name in identifiers:
            self.by_identifier.setdefault((name, _folded(name, attributes.get(name))), key)

    def key_of(self, error: Mapping[str, Any]) -> str | None:
        attributes = _object(error.get("attributes"))
        source = _object(attributes.get("source"))
        found = _POINTER.match(str(source.get("pointer") or ""))
        if found and int(found.group(1)) < len(self.keys):
            return self.keys[int(found.group(1))]
        payload = attributes.get("original_payload")
        if isinstance(payload, dict):
            for (name, value), key in self.by_identifier.items():
                if payload.get(name) is not None and _folded(name, payload[name]) == value:
                    return key
        return None


def read_job_created(response: httpx.Response, job: Job, result: BatchResult, redactor: Redactor) -> str | None:
    """The id of the job Klaviyo accepted (202); a 4xx refuses every profile of the job."""
    status = response.status_code
    if status in (200, 201, 202):
        data = json_object(response).get("data")
        job_id = data.get("id") if isinstance(data, dict) else None
        if job_id:
            return str(job_id)
        raise DestinationError(redactor(f"Klaviyo accepted an import job without an id: {body_snippet(response)}"))
    if 400 <= status < 500:
        errors = json_objects(json_object(response).get("errors"))
        reason = "; ".join(_reason(e, redactor) for e in errors) if errors else redactor(
            f"HTTP {status}: {body_snippet(response)}")
        result.rejected.update(dict.fromkeys(job.keys, clip_reason(reason)))
        return None
    raise DestinationError(redactor(f"Klaviyo answered HTTP {status} to a new import job: {body_snippet(response)}"))


def apply_import_errors(errors: Sequence[Mapping[str, Any]], failed: int, job: Job, result: BatchResult,
                        redactor: Redactor) -> None:
    """Reject the records the import errors name; if some failures name none, reject the job's other records."""
    named = 0
    for error in errors:
        key = job.key_of(error)
        if key is None:
            continue
        attributes = error.get("attributes")
        result.rejected.setdefault(key, _reason(attributes if isinstance(attributes, dict) else {}, redactor))
        named += 1
    if named < failed:
        reason = (f"Klaviyo reported {failed} failed profiles in this job but named only {named}; "
                  "this one may have failed, so it is sent again next run")
        for key in job.keys:
            result.rejected.setdefault(key, reason)


def read_events_accepted(response: httpx.Response, keys: Sequence[str], result: BatchResult,
                         redactor: Redactor) -> None:
    """``202``: every event accepted (Klaviyo reports no per-event errors); a 4xx refuses them all."""
    status = response.status_code
    if 200 <= status < 300:
        return
    if 400 <= status < 500:
        errors = json_objects(json_object(response).get("errors"))
        reason = "; ".join(_reason(e, redactor) for e in errors) if errors else redactor(
            f"HTTP {status}: {body_snippet(response)}")
        result.rejected.update(dict.fromkeys(keys, clip_reason(reason)))
        return
    raise DestinationError(redactor(f"Klaviyo answered HTTP {status} to an events job: {body_snippet(response)}"))


def _reason(error: Mapping[str, Any], redactor: Redactor) -> str:
    code, detail = error.get("code"), error.get("detail") or error.get("title") or "refused"
    source = _object(error.get("source"))
    pointer = str(source.get("pointer") or "")
    attribute = pointer.rsplit("/attributes/", 1)[1] if "/attributes/" in pointer else ""
    text = f"{code}: {detail}" if code else str(detail)
    return clip_reason(redactor(text + (f" ({attribute})" if attribute else "")))


def _folded(name: str, value: Any) -> str:
    text = "" if value is None else str(value)
    return text.lower() if name == "email" else text


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def json_objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
