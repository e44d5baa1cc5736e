"""A sync's ``references`` as HubSpot associations (v4 batch API), and the ids a batch wrote.

HubSpot links records by associations, not by a property, so a reference (``as: company`` on
contacts) is taken out of the properties the batch writes and applied after it, per relationship,
for the records the batch wrote (their ids come from the batch's ``results``):

1. ``POST /crm/v4/associations/{from}/{to}/batch/read`` reads each record's current associations;
2. ``POST …/batch/archive`` removes those to any other record (a changed reference moves the link);
3. ``POST …/batch/associate/default`` creates the default (unlabeled) association to the new parent.

A record already linked to its parent costs only the read. A record HubSpot names in an error of
these calls is rejected with the reason (its properties were written; the next run writes and
links it again). A NULL reference (or a parent the engine could not find, ``links.py``) removes the
record's associations of that type and creates none. Endpoint shapes: developers.hubspot.com
``docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations`` and
``…/batch/create-associations``, and the v4 associations guide (``crm-associations-v4/guide``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from dbt_activate.core.types import Batch, BatchResult, Record, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, HttpSession, body_snippet
from dbt_activate.destinations.hubspot.results import Prepared
from dbt_activate.errors import DestinationError, Redactor

# {object: {as: the parent's object}}: the default associations between HubSpot's standard objects.
RELATIONSHIPS: Mapping[str, Mapping[str, str]] = {
    "contacts": {"company": "companies"},
    "deals": {"contact": "contacts", "company": "companies"},
}
Wanted = dict[str, dict[str, str | None]]  # as -> record key -> parent record id (None: no parent)


def split_links(target: SyncTarget, batch: Batch) -> tuple[SyncTarget, Batch, Wanted]:
    """The target and batch without reference fields (no property is sent, nor cleared, for them), and
    the parent id each record wants per relationship."""
    relationships = [r for r in RELATIONSHIPS.get(target.object, {}) if r in target.references]
    if not relationships:
        return target, batch, {}
    target = replace(target, fields=tuple(f for f in target.fields if f.field not in relationships))
    wanted: Wanted = {r: {} for r in relationships}
    records = []
    for record in batch.records:
        for relationship in relationships:
            if relationship in record.values:  # absent (a clear sends only the identity): left as it is
                parent = record.values[relationship]
                wanted[relationship][record.key] = None if parent is None else str(parent)
        records.append(Record(record.key, {k: v for k, v in record.values.items() if k not in relationships}))
    return target, Batch(batch.operation, records), wanted


def written_ids(response: httpx.Response, prepared: Prepared, result: BatchResult) -> dict[str, str]:
    """Record key -> HubSpot id of each record a create/update/upsert batch wrote.

    A result names its input by ``objectWriteTraceId`` where HubSpot echoes it, else by the value of
    the batch's ``idProperty`` among its properties.
    """
    if response.status_code not in (200, 201, 207):
        return {}
    try:
        body = response.json()
    except ValueError:
        return {}
    ids: dict[str, str] = {}
    for item in body.get("results") or [] if isinstance(body, dict) else []:
        if not isinstance(item, dict) or item.get("id") is None:
            continue
        key = str(item.get("objectWriteTraceId") or "")
        if key not in prepared.sent:
            properties = item.get("properties")
            value = properties.get(prepared.id_property) if isinstance(properties, dict) else None
            key = (prepared.key_for_id(value) or "") if prepared.id_property else ""
        if key and key not in result.rejected and key not in result.skipped:
            ids[key] = str(item["id"])
    return ids


def describe_associations(from_type: str, wanted: Wanted) -> list[dict[str, Any]]:
    """What ``associate`` sends after the batch, for ``plan``: per relationship, the parents each record
    wants (the parent's primary key in a plan, which resolves no id; the HubSpot id in a run)."""
    described: list[dict[str, Any]] = []
    for relationship, by_key in wanted.items():
        to_type = RELATIONSHIPS[from_type][relationship]
        base = f"/crm/v4/associations/{quote(from_type, safe='')}/{quote(to_type, safe='')}/batch"
        described.append({"method": "POST", "url": f"{base}/associate/default",
                          "after": f"{base}/read; associations to any other {to_type} archived ({base}/archive)",
                          "associations": [{"record": key, relationship: parent} for key, parent in by_key.items()]})
    return described


async def associate(session: HttpSession, from_type: str, wanted: Wanted, result: BatchResult,
                    redactor: Redactor) -> None:
    """Make each written record's associations equal what it wants (read, archive others, associate)."""
    for relationship, by_key in wanted.items():
        to_type = RELATIONSHIPS[from_type][relationship]
        want = {result.ids[k]: (k, parent) for k, parent in by_key.items() if k in result.ids}
        if not want:
            continue
        base = f"/crm/v4/associations/{quote(from_type, safe='')}/{quote(to_type, safe='')}/batch"
        read = await _post(session, f"{base}/read", {"inputs": [{"id": i} for i in want]}, redactor)
        current: dict[str, set[str]] = {}
        for item in _dicts(read.get("results")):
            from_id = str((item.get("from") or {}).get("id"))
            current[from_id] = {str(t.get("toObjectId")) for t in _dicts(item.get("to"))}
        _reject_named(read, want, result, f"reading its {relationship} association")
        stale = [{"from": {"id": f}, "to": [{"id": t} for t in sorted(linked - {want[f][1]})]}
                 for f, linked in current.items() if f in want and linked - {want[f][1]}]
        if stale:
            # A record archived meanwhile (or a bad id) comes back as an error naming it: that record
            # keeps an association the model no longer has, so it is rejected and retried.
            archived = await _post(session, f"{base}/archive", {"inputs": stale}, redactor)
            _reject_named(archived, want, result, f"removing its old {relationship} association")
        new = [{"from": {"id": f}, "to": {"id": parent}} for f, (key, parent) in want.items()
               if parent is not None and key not in result.rejected and parent not in current.get(f, set())]
        if new:
            created = await _post(session, f"{base}/associate/default", {"inputs": new}, redactor)
            _reject_named(created, want, result, f"associating it with its {relationship}")


async def _post(session: HttpSession, path: str, body: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    response = await session.request("POST", path, content=json.dumps(body).encode(), headers=JSON_HEADERS)
    if response.status_code == 204:
        return {}
    if response.status_code not in (200, 201, 207) and not (response.status_code == 400 and _has_errors(response)):
        raise DestinationError(redactor(f"HubSpot answered HTTP {response.status_code} to {path}: "
                                        f"{body_snippet(response)}; the batch is not acknowledged"))
    data = response.json()
    return data if isinstance(data, dict) else {}


def _has_errors(response: httpx.Response) -> bool:
    try:
        data = response.json()
    except ValueError:
        return False
    return isinstance(data, dict) and bool(data.get("errors"))


def _reject_named(answer: Mapping[str, Any], want: Mapping[str, tuple[str, str | None]], result: BatchResult,
                  doing: str) -> None:
    """Reject the records an error names by id (``context.ids``): their link is not what the model says."""
    for error in _dicts(answer.get("errors")):
        context = error.get("context")
        for named in (context.get("ids") if isinstance(context, dict) else None) or []:
            for from_id, (key, parent) in want.items():
                if str(named) in (from_id, parent) and key not in result.rejected:
                    result.rejected[key] = f"HubSpot refused {doing}: {error.get('message') or 'no reason given'}"
                    result.ids.pop(key, None)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
