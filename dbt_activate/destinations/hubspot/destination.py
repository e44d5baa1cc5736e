"""``hubspot``: CRM v3 objects (contacts, companies, deals, custom objects) through the batch APIs.

Configuration (``destinations.yml``)::

    hubspot:
      type: hubspot
      access_token: "{{ env_var('HUBSPOT_TOKEN') }}"    # private app or OAuth token (required)
      base_url: https://api.hubapi.com                   # default; an emulator's URL in tests
      rate_limit: {requests: 100, per_seconds: 10}       # default (Free/Starter); 190 for Pro/Enterprise
      batch_size: 100                                    # 1-100, HubSpot's batch maximum (default)
      max_concurrency: 8
      nulls: keep                                        # keep (default) | clear

A sync's ``object`` is ``contacts``, ``companies``, ``deals``, a custom object's type id (``2-…``)
or name. Its identity (``match``, else the primary key) must be one field: a HubSpot property with
unique values (``email`` for contacts, or a custom property with ``hasUniqueValue``), sent as
``idProperty``; ``hs_object_id`` means HubSpot's record ID. A record whose identity is empty, or
repeats another's in the same batch (HubSpot refuses such a batch whole), is rejected before
sending. One request per batch, two for delete (contracts SUMMARY §1;
``POST /crm/v3/objects/{object}/batch/…``):

=========  ==============================================================================
upsert     ``batch/upsert``: ``{"inputs": [{"idProperty", "id", "properties", "objectWriteTraceId"}]}``
update     ``batch/update``, same inputs; a record HubSpot does not have comes back as skipped
create     ``batch/create``: ``{"inputs": [{"properties", "objectWriteTraceId"}]}``; a record that
           already exists (HubSpot's ``CONFLICT``, or ``OBJECT_ALREADY_EXISTS`` since 2024) comes
           back as skipped
append     ``batch/create``; a conflict rejects the record
delete     ``batch/read`` by ``idProperty`` to learn record IDs, then ``batch/archive`` (archive
           takes record IDs only); records already gone are acknowledged
clear      ``batch/update`` with ``""`` for every mapped property but the identity; a record
           already gone is acknowledged
=========  ==============================================================================

A changed identity (a new email under the same primary key, ``Record.previous``) updates the
record HubSpot has under the old value: ``batch/update`` with ``idProperty`` and the old value as
``id``, the new value among the properties, one request for the records of a batch that moved. If
another record already holds the new value, HubSpot answers CONFLICT ("Contact already exists.
Existing ID: …", github.com/stape-io/hubspot-tag/issues/7) and the row is rejected with that
reason, never merged; a record HubSpot does not have under the old value is written by the new one.

Values are formatted as ``hubspot_format`` says (strings; dates as midnight-UTC epoch ms; lists
joined with ``;``). A NULL is not sent, so it never wipes a value in HubSpot, unless ``nulls:
clear``. A record with NaN or ±Infinity is rejected before sending, with the field named.

Results are per record (``results``): each input carries ``objectWriteTraceId`` = the
record key, so the errors of a 207 multi-status, or of a 400/409 in which every input failed, map
back to their records (``context.ids`` is the fallback). A 400/409 that refuses a batch whole for
what one input carries (HubSpot's batch upsert and update do) is taken apart (``isolation``): the
inputs carrying the value HubSpot names are settled and the rest resent at once, else the batch
is halved recursively, at most 30 extra requests per batch. Any other 4xx rejects the whole batch
with HubSpot's message. A 429 whose ``policyName`` is ``DAILY`` raises ``QuotaExhaustedError``: the sync
stops and the rest goes with the next run. Other 429s are retried, and the shared rate limiter
reads ``X-HubSpot-RateLimit-Remaining``/``-Interval-Milliseconds`` to stay under the window.

Idempotency: upsert, update, clear and delete find records by ``idProperty``, so a retried batch
writes the same values again. ``create`` and ``append`` cannot be made idempotent: a batch that
HubSpot stored but whose response was lost (a timeout, a dropped connection) is sent again, which
duplicates its records unless a unique property (``email``, a unique custom property) makes
HubSpot refuse the copy (then ``create`` reports them as skipped).

References (a sync's ``references``, ``as: company`` on contacts, ``contact``/``company`` on deals) are
associations, applied after the batch by ``hubspot_associations``; every write reports the ids of the
records it wrote (``BatchResult.ids``) so other syncs can link to them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, HttpSession, body_snippet, json_body
from dbt_activate.destinations.api import ApiDestination, single_identity
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.hubspot.associations import (
    RELATIONSHIPS,
    associate,
    describe_associations,
    split_links,
    written_ids,
)
from dbt_activate.destinations.hubspot.isolation import Isolation
from dbt_activate.destinations.hubspot.payload import UnformattableValue, format_properties, format_value
from dbt_activate.destinations.hubspot.results import (
    Prepared,
    archive_ids,
    daily_quota_error,
    limit_headers,
    record_ids_found,
)
from dbt_activate.errors import ConfigError, DestinationError, Redactor

MAX_BATCH = 100
RECORD_ID = "hs_object_id"  # identity that is HubSpot's own record ID: no idProperty is sent

_OBJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_ENDPOINT = {Operation.UPSERT: "upsert", Operation.UPDATE: "update", Operation.CREATE: "create",
             Operation.APPEND: "create", Operation.CLEAR: "update", Operation.DELETE: "read"}


class HubSpotDestination(ApiDestination):
    kind = "hubspot"
    null_handling = Nulls.OWN
    description = ("HubSpot CRM v3 objects (contacts, companies, deals, custom objects by 2-… type id or "
                   "name) through the batch upsert/update/create/archive APIs.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("access_token", str, required=True, secret=True,
                  help="Private app (or OAuth) access token with the crm.objects.*.write scopes of the objects."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "rate_limit": ", HubSpot's per-app limit for Free/Starter accounts. Professional and Enterprise allow 190 (250 "
                      "with the API limit increase). Shared by every sync of this destination in a run.",
        "batch_size": f"Records per request, 1-{MAX_BATCH} (HubSpot's batch maximum, the default).",
        "max_concurrency": "Batches in flight at once; 8 keeps the 100/10 s window full while a batch takes up "
                           "to 0.8 s to answer. Raise it with a higher rate_limit.",
        "nulls": "keep: a NULL is not sent and HubSpot keeps its value; clear: a NULL empties the property.",
    }
    modes = frozenset(Mode)
    default_base_url = "https://api.hubapi.com"
    max_batch_size = MAX_BATCH
    batch_limit = "HubSpot's batch maximum"
    batch_size = MAX_BATCH
    max_concurrency = 8
    rate_limit = RateLimit(100, 10.0)
    objects = ("contacts", "companies", "deals")
    references: ClassVar[Mapping[str, Mapping[str, str]]] = RELATIONSHIPS

    def check_target(self, target: SyncTarget) -> None:
        if not _OBJECT.match(target.object):
            raise ConfigError(f"object {target.object!r} is not a HubSpot object: use contacts, companies, "
                              "deals, a custom object's type id (2-…) or its name", location=_where(target))
        if target.mode is not Mode.APPEND:
            _single_identity(target)

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        target, batch, links = split_links(target, batch)  # references are associations, not properties
        result = BatchResult()
        if batch.operation in (Operation.UPSERT, Operation.UPDATE):
            batch = await self._move(target, batch, result)
        prepared = self._prepare(target, batch, result)
        if not prepared.inputs:
            return result
        session = self.session()
        if batch.operation is not Operation.DELETE:
            await self._write_isolated(session, prepared, batch.operation, result)
            if links:
                await associate(session, target.object, links, result, self.redactor)
            return result
        if prepared.id_property == RECORD_ID:
            found = dict(prepared.sent)  # the identity is the record ID: nothing to look up
        else:
            response = await session.request("POST", prepared.path, content=json_body(prepared.body),
                                             headers=JSON_HEADERS)
            found = record_ids_found(self.name, response, prepared, result, self.redactor)
        if found:
            archive = await session.request("POST", self._path(target, "archive"),
                                            content=json_body(archive_ids(found)), headers=JSON_HEADERS)
            _check_archive(self.name, archive, found, result, self.redactor)
        return result

    def planned_requests(self, target: SyncTarget, operation: Operation, records: int) -> int:
        """As ``write``: a delete batch is ``batch/read`` (record IDs by ``idProperty``), then ``batch/archive``;
        only ``batch/archive`` when the identity already is the record ID."""
        batches = self.estimate_requests(operation, records)
        reads = operation is Operation.DELETE and target.identity != (RECORD_ID,)
        return 2 * batches if reads else batches

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        prepared = self._prepare(target, batch, BatchResult())
        if batch.operation is Operation.DELETE:
            archive = {"method": "POST", "url": self.base_url + self._path(target, "archive")}
            if prepared.id_property == RECORD_ID:
                return {**archive, "body": archive_ids(prepared.sent)}
            return {"method": "POST", "url": self.base_url + prepared.path, "body": prepared.body,
                    "then": {**archive, "body": {"inputs": [{"id": "<record ID returned by batch/read>"}]}}}
        target, batch, links = split_links(target, batch)  # references are associations, not properties
        prepared = self._prepare(target, batch, BatchResult())
        described: dict[str, Any] = {"method": "POST", "url": self.base_url + prepared.path, "body": prepared.body}
        if links:
            described["then"] = describe_associations(target.object, links)
        return described

    async def _move(self, target: SyncTarget, batch: Batch, result: BatchResult) -> Batch:
        """Records whose identity changed (``Record.previous``): one ``batch/update`` that finds each
        by the value last sent (``idProperty``) and sets the new one among its properties; what is
        left of the batch is written as usual.

        HubSpot refuses a new value that another record already holds (CONFLICT, "Contact already
        exists. Existing ID: …"): the row is rejected with that reason, never merged. A record
        HubSpot does not have under the old value (deleted there, or moved by an earlier run that
        died before its answer was saved) goes with the rest, by its new value.
        """
        id_property = _single_identity(target, during_write=True)
        moving = [r for r in batch.records if _moved(r, id_property)]
        if not moving:
            return batch
        moved = BatchResult()
        prepared = self._prepare(target, Batch(Operation.UPDATE, moving), moved, moving=True)
        if prepared.inputs:
            await self._write_isolated(self.session(), prepared, Operation.UPDATE, moved)
        for record in moving:
            if record.key in moved.rejected:
                old = format_value((record.previous or {}).get(id_property))
                result.rejected[record.key] = (f"{id_property} changed from {old!r} to "
                                               f"{format_value(record.values.get(id_property))!r}: "
                                               f"{moved.rejected[record.key]}")
        result.ids.update(moved.ids)
        done = {r.key for r in moving if r.key not in moved.skipped}
        return Batch(batch.operation, [r for r in batch.records if r.key not in done])

    async def _write_isolated(self, session: HttpSession, prepared: Prepared, operation: Operation,
                              result: BatchResult) -> None:
        """Send a create/upsert/update batch; a batch HubSpot refuses whole is taken apart (``Isolation``)."""
        async def send(part: Prepared, note: str) -> httpx.Response:
            response = await session.request("POST", part.path, content=json_body(part.body), headers=JSON_HEADERS,
                                             note=note)
            result.ids.update(written_ids(response, part, result))  # for the syncs that reference these records
            return response

        await Isolation(self.name, operation, result, self.redactor, send).write(prepared)

    # -- requests ------------------------------------------------------------------------------

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.settings.text('access_token')}"}

    def session_options(self) -> Mapping[str, Any]:
        return {"rate_limit_headers": limit_headers(self.effective_concurrency), "response_hook": self._on_response}

    def _on_response(self, response: httpx.Response) -> None:
        error = daily_quota_error(self.name, response, self.redactor)
        if error is not None:
            raise error

    def _path(self, target: SyncTarget, endpoint: str) -> str:
        return f"/crm/v3/objects/{quote(target.object, safe='')}/batch/{endpoint}"

    def _prepare(self, target: SyncTarget, batch: Batch, result: BatchResult, *, moving: bool = False) -> Prepared:
        """The request body of ``batch`` and how to find its records again in the response.

        Records that cannot be sent (NaN, an empty or repeated identity) go to ``result``. With
        ``moving``, records are found by their ``previous`` identity and the new one is a property.
        """
        operation = batch.operation
        keyed = operation not in (Operation.CREATE, Operation.APPEND)
        id_property = _single_identity(target, during_write=True) if keyed else None
        prepared = Prepared(self._path(target, _ENDPOINT[operation]), id_property)
        clear_nulls = self.clears_nulls(target)
        # Clearing sends "" for every mapped property; the identity stays, or the record is lost.
        cleared = {f: "" for f in target.field_names if f not in target.identity and f != RECORD_ID}
        inputs: list[dict[str, Any]] = []
        sent = prepared.sent
        # What is the same for every record, decided once: this loop runs once per record sent.
        deleting, clearing = operation is Operation.DELETE, operation is Operation.CLEAR
        exclude = RECORD_ID if moving or id_property is None else id_property
        by_property = id_property is not None and id_property != RECORD_ID
        for record in batch.records:
            key = record.key
            try:
                if id_property is None:
                    item: dict[str, Any] = {"properties": format_properties(
                        record.values, clear_nulls=clear_nulls, exclude=exclude), "objectWriteTraceId": key}
                    value = ""
                else:
                    found_by = (record.previous or {}) if moving else record.values
                    value = self._id_value(key, found_by.get(id_property), id_property, prepared)
                    if deleting:
                        item = {"id": value}
                    else:
                        properties = (dict(cleared) if clearing else
                                      format_properties(record.values, clear_nulls=clear_nulls, exclude=exclude))
                        item = ({"id": value, "properties": properties, "idProperty": id_property,
                                 "objectWriteTraceId": key} if by_property else
                                {"id": value, "properties": properties, "objectWriteTraceId": key})
            except UnformattableValue as exc:
                result.rejected[key] = str(exc)
                continue
            sent[key] = value
            inputs.append(item)
        prepared.inputs = inputs
        if operation is Operation.DELETE and id_property != RECORD_ID:
            prepared.body = {"idProperty": id_property, "inputs": inputs, "properties": [id_property]}
        elif operation is Operation.DELETE:
            prepared.path, prepared.body = self._path(target, "archive"), archive_ids(prepared.sent)
        else:
            prepared.body = {"inputs": inputs}
        return prepared

    @staticmethod
    def _id_value(key: str, raw: Any, id_property: str, prepared: Prepared) -> str:
        value = raw if type(raw) is str else format_value(raw)  # an email or a text id: as it is
        if not value:
            raise UnformattableValue(f"identity field {id_property!r} is empty")
        earlier = prepared.claim(value, key, case_insensitive=id_property == "email")
        if earlier is not None:
            raise UnformattableValue(f"record {earlier!r} of the same batch has the same {id_property} {value!r}; "
                                     "HubSpot refuses a batch that names one record twice")
        return value


def _moved(record: Record, id_property: str) -> bool:
    """Whether the record's identity is another value than the one last sent (emails: ignoring case,
    as HubSpot finds them); a record ID never changes."""
    if record.previous is None or id_property == RECORD_ID:
        return False
    old, new = format_value(record.previous.get(id_property)), format_value(record.values.get(id_property))
    if not old or not new:
        return False
    return old.casefold() != new.casefold() if id_property == "email" else old != new


def _where(target: SyncTarget) -> str:
    return f"sync {target.sync_name}"


def _single_identity(target: SyncTarget, *, during_write: bool = False) -> str:
    return single_identity(target, "HubSpot finds a record by one unique property (idProperty)",
                           "set `match: {column: property}` to one unique property such as email",
                           during_write=during_write)


def _check_archive(name: str, response: httpx.Response, found: Mapping[str, str], result: BatchResult,
                   redactor: Redactor) -> None:
    """``batch/archive`` answers 204; any other 4xx refuses the records that were found."""
    status = response.status_code
    if 200 <= status < 300:
        return
    reason = redactor(f"HTTP {status} from batch/archive: {body_snippet(response)}")
    if 400 <= status < 500:
        result.rejected.update(dict.fromkeys(found, reason))
        return
    raise DestinationError(f"{name}: {reason}; the records' archiving is not confirmed")
