"""sObject Collections writes, 200 records per request, ``allOrNone=false``: one record's error never
fails the others.

=========  ========================================================================================
UPSERT     ``PATCH /composite/sobjects/{SObject}/{ExternalIdField}``
CREATE     ``POST /composite/sobjects``; ``DUPLICATE_VALUE`` (the external id exists) -> skipped
APPEND     ``POST /composite/sobjects``
UPDATE     Ids found by SOQL on the match field, then ``PATCH /composite/sobjects`` with ``id``;
           no record -> skipped
DELETE     Ids found by SOQL, then ``DELETE /composite/sobjects?ids=…&allOrNone=false``; a record
           that is not there (any more) counts as deleted
CLEAR      Ids found by SOQL, then ``PATCH`` with every clearable mapped field set to null
=========  ========================================================================================

Matching by the ``Id`` field itself skips the lookup. Results come back one per record in request
order and are settled into the batch's ``Ledger``.

A record whose match value changed (``Record.previous``: a new ``Email__c`` under the same primary
key) is moved (``move``): its Id is found by SOQL on the value last sent, then ``PATCH
/composite/sobjects`` with that Id sets every field, the new match value included. A new value that
another record holds is refused by Salesforce per record (``DUPLICATE_VALUE: duplicate value found:
<field> duplicates value on record with id: <id>``, the status code of a unique or External ID
field, developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm
"StatusCode") and the row is rejected with it, never merged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.delivery import JSONValue
from dbt_activate.destinations.salesforce.api import SalesforceApi, error_text
from dbt_activate.destinations.salesforce.bulk import BulkUpload
from dbt_activate.destinations.salesforce.results import item_results, lookup_key, lookup_queries
from dbt_activate.errors import DestinationError, QuotaExhaustedError

Formatted = tuple[str, Mapping[str, JSONValue]]  # (record key, values formatted for Salesforce)


@dataclass
class Ledger:
    """What is settled of one batch, kept across retries of it so no record is written twice."""

    result: BatchResult = field(default_factory=BatchResult)
    done: set[str] = field(default_factory=set)
    bulk: bool = False
    job: str | None = None  # a submitted Bulk API job whose results are still to be read
    upload: BulkUpload | None = None  # the CSV of that job

    def ack(self, key: str, record_id: str | None = None) -> None:
        self.done.add(key)
        if record_id:  # the Id written, for the syncs that reference this one (BatchResult.ids)
            self.result.ids[key] = record_id

    def reject(self, key: str, reason: str) -> None:
        self.done.add(key)
        self.result.rejected[key] = reason

    def skip(self, key: str, reason: str) -> None:
        self.done.add(key)
        self.result.skipped[key] = reason


def sobject_record(sobject: str, values: Mapping[str, JSONValue], record_id: str | None = None
                   ) -> dict[str, JSONValue]:
    record: dict[str, JSONValue] = {"attributes": {"type": sobject}}
    if record_id is not None:
        record["id"] = record_id
    record.update(values)
    return record


@dataclass(frozen=True)
class Target:
    """The sObject and match field of the sync, as Salesforce needs them."""

    sobject: str
    identity: str | None  # the match field; None for append syncs without one
    numeric_identity: bool = False  # the match field is a number: SOQL literals unquoted
    clearable: tuple[str, ...] = ()  # fields CLEAR sets to null

    @property
    def by_id(self) -> bool:
        return (self.identity or "").lower() == "id"

    def without_identity(self, values: Mapping[str, JSONValue]) -> dict[str, JSONValue]:
        wanted = (self.identity or "").lower()
        return {k: v for k, v in values.items() if k.lower() != wanted}


class CollectionWriter:
    def __init__(self, api: SalesforceApi, target: Target, size: int, slots: asyncio.Semaphore) -> None:
        self.api, self.target, self.size, self.slots = api, target, size, slots

    async def write(self, operation: Operation, records: Sequence[Formatted], ledger: Ledger) -> None:
        """Send ``records`` in chunks, concurrently up to the destination's concurrency; the most
        serious failure is raised after every chunk has settled what it could."""
        chunks = [records[i:i + self.size] for i in range(0, len(records), self.size)]
        outcomes = await asyncio.gather(*(self._chunk(operation, c, ledger) for c in chunks), return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise min(failures, key=_severity)

    async def _chunk(self, operation: Operation, chunk: Sequence[Formatted], ledger: Ledger) -> None:
        async with self.slots:
            t, data = self.target, self.api.data
            if operation is Operation.UPSERT:
                body = [sobject_record(t.sobject, v) for _, v in chunk]
                response = await self.api.request("PATCH", f"{data}/composite/sobjects/{t.sobject}/{t.identity}",
                                                  json={"allOrNone": False, "records": body})
                return self._settle(operation, response, [k for k, _ in chunk], ledger)
            if operation in (Operation.CREATE, Operation.APPEND):
                body = [sobject_record(t.sobject, v) for _, v in chunk]
                response = await self.api.request("POST", f"{data}/composite/sobjects",
                                                  json={"allOrNone": False, "records": body})
                return self._settle(operation, response, [k for k, _ in chunk], ledger)
            found = await self._find_ids(operation, chunk, ledger)
            if not found:
                return None
            keys = [k for k, _, _ in found]
            if operation is Operation.DELETE:
                response = await self.api.request("DELETE", f"{data}/composite/sobjects",
                                                  params={"ids": ",".join(i for _, i, _ in found),
                                                          "allOrNone": "false"})
                return self._settle(operation, response, keys, ledger)
            if operation is Operation.CLEAR:
                body = [sobject_record(t.sobject, dict.fromkeys(t.clearable), i) for _, i, _ in found]
            else:
                body = [sobject_record(t.sobject, t.without_identity(v), i) for _, i, v in found]
            response = await self.api.request("PATCH", f"{data}/composite/sobjects",
                                              json={"allOrNone": False, "records": body})
            return self._settle(operation, response, keys, ledger)

    async def move(self, moves: Sequence[tuple[str, JSONValue, Mapping[str, JSONValue]]], ledger: Ledger
                   ) -> list[str]:
        """Update records whose match value changed, found by (key, value last sent, new values); the
        keys of those Salesforce does not have under the old value, for the caller to write as usual."""
        t = self.target
        assert t.identity is not None
        ids = await self._ids_by_match([old for _, old, _ in moves])
        found: list[tuple[str, str, Mapping[str, JSONValue]]] = []
        missing: list[str] = []
        for key, old, values in moves:
            matches = ids.get(lookup_key(old), [])
            if len(matches) == 1:
                found.append((key, matches[0], values))
            elif matches:
                ledger.reject(key, f"{len(matches)} {t.sobject} records have {t.identity} = {old!r}; "
                              "the match field must identify one record")
            else:
                missing.append(key)
        for start in range(0, len(found), self.size):
            chunk = found[start:start + self.size]
            async with self.slots:
                body = [sobject_record(t.sobject, v, i) for _, i, v in chunk]
                response = await self.api.request("PATCH", f"{self.api.data}/composite/sobjects",
                                                  json={"allOrNone": False, "records": body})
            self._settle(Operation.UPDATE, response, [k for k, _, _ in chunk], ledger)
        missing.extend(k for k, _, _ in found if k in ledger.result.skipped)  # deleted since the lookup
        for key in missing:
            ledger.done.discard(key)
            ledger.result.skipped.pop(key, None)
        return missing

    async def _ids_by_match(self, values: Sequence[JSONValue]) -> dict[str, list[str]]:
        """Record Ids by ``lookup_key`` of their match value, for ``values`` (SOQL, in chunks)."""
        t = self.target
        assert t.identity is not None
        ids: dict[str, list[str]] = {}
        for soql in lookup_queries(t.sobject, t.identity, values, t.numeric_identity):
            for row in await self.api.query(soql):
                match = next((value for name, value in row.items() if name.lower() == t.identity.lower()), None)
                ids.setdefault(lookup_key(match), []).append(str(row.get("Id")))
        return ids

    async def _find_ids(self, operation: Operation, chunk: Sequence[Formatted], ledger: Ledger
                        ) -> list[tuple[str, str, Mapping[str, JSONValue]]]:
        """(key, record Id, values) of the records that exist; the others are settled here: an update
        of a missing record is skipped, a delete or clear of one has nothing left to do."""
        t = self.target
        assert t.identity is not None
        if t.by_id:
            return [(k, str(v[t.identity]), v) for k, v in chunk]
        ids = await self._ids_by_match([v[t.identity] for _, v in chunk])
        found = []
        for key, values in chunk:
            matches = ids.get(lookup_key(values[t.identity]), [])
            if len(matches) == 1:
                found.append((key, matches[0], values))
            elif matches:
                ledger.reject(key, f"{len(matches)} {t.sobject} records have {t.identity} = {values[t.identity]!r}; "
                              "the match field must identify one record")
            elif operation is Operation.UPDATE:
                ledger.skip(key, f"no {t.sobject} record has {t.identity} = {values[t.identity]!r}")
            else:
                ledger.ack(key)
        return found

    def _settle(self, operation: Operation, response: httpx.Response, keys: Sequence[str], ledger: Ledger) -> None:
        if response.status_code == 400:
            # The request was refused as a whole (a value its deserializer cannot read): every record
            # is rejected with the reason and retried next run; other requests are not affected.
            reason = self.api.redact(error_text(response))[:500]
            for key in keys:
                ledger.reject(key, f"request refused: {reason}")
            return
        data = self.api.json_of(response, f"{operation.value} of {len(keys)} {self.target.sobject} records")
        try:
            results = item_results(data, len(keys))
        except ValueError as exc:
            raise DestinationError(f"{self.api.name}: cannot match the {operation.value} results to records "
                                   f"({exc}); the batch is not acknowledged") from exc
        for key, result in zip(keys, results, strict=True):
            if result.success:
                ledger.ack(key, None if operation is Operation.DELETE else result.record_id)
            elif operation is Operation.CREATE and "DUPLICATE_VALUE" in result.codes:
                ledger.skip(key, f"already exists in Salesforce ({result.reason})")
            elif "ENTITY_IS_DELETED" in result.codes and operation in (Operation.DELETE, Operation.CLEAR):
                ledger.ack(key)
            elif "ENTITY_IS_DELETED" in result.codes and operation is Operation.UPDATE:
                ledger.skip(key, f"the {self.target.sobject} record was deleted")
            else:
                ledger.reject(key, result.reason)


def _severity(error: BaseException) -> int:
    """Which failure of a batch to raise: bugs first, then a spent quota, then lasting, then passing ones."""
    if not isinstance(error, DestinationError):
        return 0
    if isinstance(error, QuotaExhaustedError):
        return 1
    return 3 if error.retryable else 2
