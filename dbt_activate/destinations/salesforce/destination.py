"""``salesforce``: any sObject (Contact, Account, Lead, custom ``__c``) by its external id field.

Configuration (``destinations.yml``; keys in ``salesforce_config``)::

    crm:
      type: salesforce
      instance_url: https://acme.my.salesforce.com
      client_id: "{{ env_var('SF_CLIENT_ID') }}"          # OAuth connected app: refresh-token grant,
      client_secret: "{{ env_var('SF_CLIENT_SECRET') }}"  # or client credentials without refresh_token
      refresh_token: "{{ env_var('SF_REFRESH_TOKEN') }}"
      # access_token: "{{ env_var('SF_ACCESS_TOKEN') }}"  # or a bearer token obtained elsewhere
      api_version: v62.0
      bulk_threshold: 10000     # upsert rows after which Bulk API 2.0 takes over; 0 = never
      max_api_usage: 0.95       # stop when 95% of the org's daily API allocation is used
      nulls: keep               # keep (default) | clear

A sync names the sObject as ``object`` and finds records by one field, its ``match`` (else its
primary key): for upsert and mirror an External ID field (``External_Id__c``), which Salesforce
upserts by; update, delete and clear look Ids up by it with SOQL, so any unique field (or ``Id``
itself) works there. ``open()`` reads the sObject's ``describe`` once: unknown fields and an upsert
key that is not an External ID fail the sync before any row is sent, and every value is formatted
for its field's type (``salesforce_values``). Operations are in ``salesforce_collections``.

**Collections or Bulk API.** Collections take 200 records per request and answer at once; Bulk API
2.0 takes a CSV of up to millions of rows per job but costs five or more requests and polling, so it
pays only for large syncs. A sync's size is not known until its rows have streamed, so an upsert
sync reads batches of ``min(bulk_threshold, 10,000)`` rows (one job's worth): the first
``bulk_threshold`` rows go through Collections, 200 per request, and once the sync has sent more,
every further upsert batch becomes one Bulk API job (``salesforce_bulk``). Other modes keep
batches of ``batch_size`` (at most 200).

**Retries never write a record twice.** A batch's ``Ledger`` remembers which records were settled
(and which Bulk job was submitted) across ``deliver()``'s retries of that batch, so a retry sends
only the rest, and resumes polling a job rather than uploading its rows again. Bulk rows reported
as unprocessed are retried the same way; a job that ``Failed`` fails the sync (rows kept for the
next run). Records that cannot be formatted (NaN, ±Infinity, text in a number field) and records
whose match value is empty are rejected before sending.

**A changed match value** (``Record.previous``, e.g. a new ``Email__c`` under the same primary key)
updates the record found by the value last sent, by Id, with the new value among its fields
(``CollectionWriter.move``, also in syncs that use Bulk API); a value another record already holds
rejects the row with Salesforce's ``DUPLICATE_VALUE``. A record Salesforce does not have under the
old value is written by the new one, as any other.

**References.** A sync's ``references`` may set a lookup field (``references`` below): the engine sends
the parent's Id there, which the parent sync learnt from Salesforce's answers; every write reports the
Id of each record written (``BatchResult.ids``), from Collections results and, for Bulk jobs, from the
job's ``successfulResults`` (``sf__Id``). A NULL reference empties the lookup field (``null`` in
Collections, ``#N/A`` in Bulk CSV) whatever the sync's ``nulls``: the link follows the model.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.delivery import JSONValue, UnencodableValue
from dbt_activate.destinations.base import ConfigKey, Destination
from dbt_activate.destinations.salesforce.api import SalesforceApi, error_text
from dbt_activate.destinations.salesforce.auth import TokenHolder
from dbt_activate.destinations.salesforce.bulk import BulkUpsert, Sleep, build_upload, job_request
from dbt_activate.destinations.salesforce.collections import CollectionWriter, Formatted, Ledger, Target, sobject_record
from dbt_activate.destinations.salesforce.config import BULK_JOB_ROWS, CONFIG_KEYS, MAX_RECORDS, settings_from
from dbt_activate.destinations.salesforce.results import lookup_key, lookup_queries
from dbt_activate.destinations.salesforce.values import NUMBER_TYPES, csv_cell, drop_nulls, field_types, format_record
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NEEDS_IDENTITY = (Operation.UPSERT, Operation.UPDATE, Operation.DELETE, Operation.CLEAR)


class SalesforceDestination(Destination):
    kind = "salesforce"
    null_handling = Nulls.OWN
    description = ("Any sObject (Contact, Account, Lead, custom __c) by an external id field: sObject "
                   "Collections, and Bulk API 2.0 for large upserts.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = CONFIG_KEYS
    batch_size = MAX_RECORDS
    max_concurrency = 4  # Salesforce allows 25 long-running requests per org, shared with others
    # Lookup fields a sync's ``references`` may set (Object Reference: Contact.AccountId, Opportunity.AccountId,
    # Case.AccountId/ContactId): the parent's 18-character Id, from the ids Collections answer per record.
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "Contact": {"AccountId": "Account"},
        "Opportunity": {"AccountId": "Account"},
        "Case": {"AccountId": "Account", "ContactId": "Contact"},
    }

    def __init__(self, name: str, config: Mapping[str, Any], *, transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Sleep = asyncio.sleep) -> None:
        """``transport`` replaces the network (``httpx.MockTransport``); ``sleep`` paces Bulk polling."""
        super().__init__(name, config)
        self.settings = settings_from(name, config)
        self._transport, self._sleep = transport, sleep
        self._api: SalesforceApi | None = None
        self._writer: CollectionWriter | None = None
        self._bulk: BulkUpsert | None = None
        self._target: Target | None = None
        self._clear_nulls = False  # set by open() from the sync's `nulls`, else the destination's
        self._lookups: frozenset[str] = frozenset()  # set by open(): lookup fields the sync's references set
        self._types: dict[str, str] = {}
        self._bulk_sync = False  # set by open(): this sync's upserts may switch to Bulk API
        self._upserts = 0  # upsert records of this sync so far
        self._ledgers: dict[int, tuple[weakref.ref[Batch], Ledger]] = {}

    @property
    def effective_batch_size(self) -> int:
        if self._bulk_sync:
            return max(1, min(self.settings.bulk_threshold, BULK_JOB_ROWS))
        return self.settings.request_size

    # -- seam ------------------------------------------------------------------------------------

    def check_target(self, target: SyncTarget) -> None:
        where = f"sync {target.sync_name}"
        if not _API_NAME.match(target.object):
            raise ConfigError(f"object {target.object!r} is not an sObject API name (Contact, Account, Lead, "
                              "Driver__c)", location=where)
        odd = [f for f in target.field_names if not _API_NAME.match(f)]
        if odd:
            raise ConfigError(f"{', '.join(map(repr, odd))} are not Salesforce field API names (relationship "
                              "fields such as Account.External_Id__c are not supported)", location=where)
        if target.mode is not Mode.APPEND and len(target.identity) != 1:
            raise ConfigError(f"Salesforce finds a record by one field; set `match` to one External ID field "
                              f"(got {', '.join(target.identity) or 'none'})", location=where)
        writes_new = target.mode in (Mode.UPSERT, Mode.MIRROR, Mode.CREATE, Mode.APPEND)
        if writes_new and any(f.lower() == "id" for f in target.field_names):
            raise ConfigError(f"mode {target.mode.value} cannot send the Id field: Salesforce assigns it "
                              "(upsert matches by an External ID field; use mode update to match by Id)",
                              location=where)

    async def open(self, target: SyncTarget) -> None:
        self.check_target(target)
        s = self.settings
        if self._api is None:
            tokens = TokenHolder(self.name, s.access_token, s.oauth)
            self._api = SalesforceApi(self.name, instance_url=s.instance_url, api_version=s.api_version,
                                      tokens=tokens, secrets=self.secrets(), timeout=s.timeout,
                                      # Bulk job requests come on top of the Collections requests
                                      max_connections=2 * max(1, self.effective_concurrency),
                                      max_api_usage=s.max_api_usage, transport=self._transport)
            self._bulk = BulkUpsert(self._api, polling=s.bulk_polling, sleep=self._sleep)
        described = await self._describe(target)
        self._types = field_types(described)
        self._target = _sf_target(target, described)
        self._clear_nulls = self.clears_nulls(target)
        self._lookups = frozenset(self.references.get(target.object, {})) & frozenset(target.references)
        self._writer = CollectionWriter(self._api, self._target, s.request_size,
                                        asyncio.Semaphore(max(1, self.effective_concurrency)))
        self._bulk_sync = s.bulk_threshold > 0 and target.mode in (Mode.UPSERT, Mode.MIRROR)
        self._upserts = 0

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if self._writer is None:
            await self.open(target)
        ledger = self._ledger(batch)
        pending = [r for r in batch.records if r.key not in ledger.done]
        try:
            if batch.operation in (Operation.UPSERT, Operation.UPDATE):
                pending = await self._move(pending, ledger)
            await self._write(batch.operation, self._format(batch.operation, pending, ledger), ledger)
        except RetryableDestinationError:
            raise  # the ledger stays: deliver()'s next attempt sends only what is not settled
        except BaseException:
            self._ledgers.pop(id(batch), None)
            raise
        self._ledgers.pop(id(batch), None)
        return ledger.result

    async def close(self) -> None:
        if self._api is not None:
            api, self._api = self._api, None
            self._writer = self._bulk = None
            await api.aclose()

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        """The first request the batch makes (lookups shown as their SOQL), without network."""
        op, sobject = batch.operation, target.object
        ident = target.identity[0] if len(target.identity) == 1 else None
        data = f"/services/data/{self.settings.api_version}"
        sample = [(k, v) for k, v in self._format(op, batch.records, Ledger())][: self.settings.request_size]
        requests = -(-len(batch.records) // self.settings.request_size)
        threshold = self.settings.bulk_threshold
        if op is Operation.UPSERT and threshold and len(batch.records) > threshold:
            assert ident is not None
            upload = build_upload(ident, sample)
            return {"api": "bulk", "method": "POST", "path": f"{data}/jobs/ingest", "body": job_request(sobject, ident),
                    "csv": upload.body.decode()[:2000]}
        if op is Operation.UPSERT:
            return {"method": "PATCH", "path": f"{data}/composite/sobjects/{sobject}/{ident}", "requests": requests,
                    "body": {"allOrNone": False, "records": [sobject_record(sobject, v) for _, v in sample]}}
        if op in (Operation.CREATE, Operation.APPEND):
            return {"method": "POST", "path": f"{data}/composite/sobjects", "requests": requests,
                    "body": {"allOrNone": False, "records": [sobject_record(sobject, v) for _, v in sample]}}
        assert ident is not None
        lookup = lookup_queries(sobject, ident, [v.get(ident) for _, v in sample],
                                self._types.get(ident.lower()) in NUMBER_TYPES)
        described: dict[str, Any] = {"lookup": lookup[0] if lookup else None, "requests": requests}
        if op is Operation.DELETE:
            return {**described, "method": "DELETE", "path": f"{data}/composite/sobjects",
                    "params": {"ids": "<Ids found by the lookup>", "allOrNone": "false"}}
        fields = [f for f in target.field_names if f.lower() != ident.lower()]
        records = [sobject_record(sobject, dict.fromkeys(fields) if op is Operation.CLEAR else
                                  {k: x for k, x in v.items() if k.lower() != ident.lower()},
                                  f"<Id of {ident} = {v.get(ident)}>") for _, v in sample]
        return {**described, "method": "PATCH", "path": f"{data}/composite/sobjects",
                "body": {"allOrNone": False, "records": records}}

    # -- internals -------------------------------------------------------------------------------

    async def _describe(self, target: SyncTarget) -> list[dict[str, Any]]:
        assert self._api is not None
        api = self._api
        response = await api.request("GET", f"{api.data}/sobjects/{target.object}/describe")
        if response.status_code == 404:
            raise ConfigError(f"Salesforce has no sObject {target.object!r} that this user can see "
                              f"({error_text(response)})", location=f"sync {target.sync_name}")
        data = api.json_of(response, f"describing {target.object}")
        fields = data.get("fields") if isinstance(data, dict) else None
        if not isinstance(fields, list):
            raise DestinationError(f"{self.name}: unreadable describe of {target.object}")
        return [f for f in fields if isinstance(f, dict)]

    def _ledger(self, batch: Batch) -> Ledger:
        entry = self._ledgers.get(id(batch))
        if entry is not None and entry[0]() is batch:
            return entry[1]
        ledger = Ledger()
        if batch.operation is Operation.UPSERT:
            # Decided once per batch, so its retries take the same path.
            self._upserts += len(batch.records)
            ledger.bulk = self._bulk_sync and self._upserts > self.settings.bulk_threshold
        self._ledgers[id(batch)] = (weakref.ref(batch), ledger)
        weakref.finalize(batch, self._ledgers.pop, id(batch), None)  # a batch deliver() gave up on
        return ledger

    def _format(self, operation: Operation, records: Any, ledger: Ledger) -> list[Formatted]:
        """Values formatted per field type; records that cannot be sent are rejected in ``ledger``."""
        ident = self._target.identity if self._target else None
        keep_nulls = not self._clear_nulls and operation is not Operation.CLEAR
        out: list[Formatted] = []
        for record in records:
            try:
                values = format_record(record.values, self._types)
            except UnencodableValue as exc:
                ledger.reject(record.key, str(exc))
                continue
            if operation in _NEEDS_IDENTITY and self._target is not None:
                if ident is None:  # an append sync with a composite key, asked to delete or clear
                    ledger.reject(record.key, f"{operation.value} needs one match field to find the record")
                    continue
                if values.get(ident) in (None, ""):
                    ledger.reject(record.key, f"match field {ident} is empty: Salesforce cannot find the record by it")
                    continue
            out.append((record.key, drop_nulls(values, self._lookups) if keep_nulls else values))
        return out

    async def _move(self, records: list[Record], ledger: Ledger) -> list[Record]:
        """Records whose match value changed (``Record.previous``) are moved by Id through Collections,
        in Bulk syncs too (``CollectionWriter.move``); returns the others, and those Salesforce does
        not have under the old value, to be written as usual."""
        t = self._target
        assert t is not None and self._writer is not None
        if t.identity is None or t.by_id:
            return records
        olds: dict[str, JSONValue] = {}
        for record in records:
            if record.previous is None:
                continue
            try:
                old = format_record({t.identity: record.previous.get(t.identity)}, self._types)[t.identity]
                new = format_record({t.identity: record.values.get(t.identity)}, self._types)[t.identity]
            except UnencodableValue:
                continue
            if old not in (None, "") and new not in (None, "") and lookup_key(old) != lookup_key(new):
                olds[record.key] = old
        if not olds:
            return records
        moving = [r for r in records if r.key in olds]
        formatted = self._format(Operation.UPDATE, moving, ledger)
        await self._writer.move([(key, olds[key], values) for key, values in formatted], ledger)
        for key, values in formatted:
            if key in ledger.result.rejected:
                change = f"{t.identity} changed from {olds[key]!r} to {values.get(t.identity)!r}"
                ledger.result.rejected[key] = f"{change}: {ledger.result.rejected[key]}"
        return [r for r in records if r.key not in ledger.done]

    async def _write(self, operation: Operation, records: list[Formatted], ledger: Ledger) -> None:
        assert self._writer is not None
        if operation is Operation.UPSERT and ledger.bulk:
            await self._write_bulk(records, ledger)
        elif records:
            await self._writer.write(operation, records, ledger)

    async def _write_bulk(self, records: list[Formatted], ledger: Ledger) -> None:
        assert self._bulk is not None and self._target is not None and self._target.identity is not None
        if ledger.job is None:
            sendable = []
            for key, values in records:
                problem = _csv_problem(values)
                if problem is None:
                    sendable.append((key, values))
                else:
                    ledger.reject(key, problem)
            if not sendable:
                return
            ledger.upload = build_upload(self._target.identity, sendable)
            ledger.job = await self._bulk.submit(self._target.sobject, ledger.upload)
        assert ledger.upload is not None
        job, upload = ledger.job, ledger.upload
        outcome = await self._bulk.finish(job, upload)
        ledger.job = ledger.upload = None  # read: a retry of the unprocessed rows is a new job
        for key, reason in outcome.rejected.items():
            ledger.reject(key, reason)
        for keys in upload.keys.values():
            for key in keys:
                if key not in outcome.rejected and key not in outcome.unprocessed:
                    ledger.ack(key, outcome.ids.get(key))
        if not outcome.unprocessed:
            return
        message = (f"{self.name}: Bulk API job {job} ended {outcome.state}"
                   f"{': ' + outcome.error_message if outcome.error_message else ''} with "
                   f"{len(outcome.unprocessed)} rows unprocessed")
        if outcome.state == "Failed":
            raise DestinationError(self._api_redact(message + "; they stay for the next run"))
        raise RetryableDestinationError(self._api_redact(message + "; they are sent again"))

    def _api_redact(self, text: str) -> str:
        return self._api.redact(text) if self._api is not None else text


def _sf_target(target: SyncTarget, described: list[dict[str, Any]]) -> Target:
    """Check the sync's fields against the sObject's describe; the match field and what CLEAR empties."""
    where = f"sync {target.sync_name}"
    by_name = {str(f.get("name", "")).lower(): f for f in described}
    unknown = [f for f in target.field_names if f.lower() not in by_name]
    if unknown:
        raise ConfigError(f"{target.object} has no field {', '.join(map(repr, unknown))} (check the API names, "
                          "including __c, and the field-level security of the integration user)", location=where)
    ident = target.identity[0] if len(target.identity) == 1 else None
    info = by_name.get(ident.lower(), {}) if ident else {}
    if target.mode in (Mode.UPSERT, Mode.MIRROR) and not info.get("externalId"):
        raise ConfigError(f"{target.object}.{ident} is not an External ID field, which upsert matches by: "
                          "mark it External ID (and Unique) in Setup, or match by another field", location=where)
    clearable = tuple(f for f in target.field_names if f.lower() != (ident or "").lower()
                      and by_name[f.lower()].get("nillable", True) and by_name[f.lower()].get("updateable", True))
    return Target(target.object, ident, str(info.get("type")) in NUMBER_TYPES, clearable)


def _csv_problem(values: Mapping[str, Any]) -> str | None:
    """Why a record cannot be a Bulk API CSV row (a list or object value), else None."""
    for name, value in values.items():
        try:
            csv_cell(value)
        except UnencodableValue as exc:
            return f"field {name!r}: {exc}"
    return None
