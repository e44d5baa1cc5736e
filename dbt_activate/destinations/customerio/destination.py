"""``customerio``: people and events through Customer.io's Track API v2 ``/api/v2/batch``.

Configuration (``destinations.yml``)::

    customerio:
      type: customerio
      site_id: "{{ env_var('CIO_SITE_ID') }}"       # Track API credentials (required)
      api_key: "{{ env_var('CIO_TRACK_API_KEY') }}"
      region: us                                    # us (track.customer.io, default) | eu (track-eu.customer.io)
      identify_by: id                               # id (default) | email | cio_id
      app_api_key: "{{ env_var('CIO_APP_API_KEY') }}"  # optional: follow a changed email/id by cio_id
      batch_size: 200                               # records per batch; requests are split by size
      rate_limit: {requests: 100, per_seconds: 1}   # default: Customer.io's fair-use limit
      max_concurrency: 8

``base_url`` replaces the region's host (an emulator in tests). Auth is HTTP Basic
``site_id:api_key``. A sync's identity must be one field; its value goes in ``identifiers`` under
the field's name when that is ``id``, ``email`` or ``cio_id``, else under ``identify_by``.
(contracts SUMMARY §6; docs.customer.io/api/track/):

=========  ==============================================================================
upsert     ``action: identify`` with every other mapped field in ``attributes``: creates or
           updates the person
append     ``action: event``, ``name`` = the sync's object (the event name); ``attributes`` = the record's fields,
           ``timestamp`` = the time of sending, ``id`` = a ULID that is the same on every retry in
           a run, so Customer.io drops a duplicate of an event whose answer was lost
delete     ``action: delete``; a person Customer.io does not have is acknowledged
clear      ``action: identify`` with ``""`` for every mapped attribute but the identity
=========  ==============================================================================

``update`` and ``create`` are not offered: the Track API has no update-only or create-only write.
Values are JSON, with dates and timestamps as Unix seconds (UTC); a NULL is left out, so Customer.io
keeps the attribute (the sync's ``nulls: clear`` sends ``""``, which removes it). Records with NaN
or ±Infinity or an empty identifier are rejected before sending, as is any item over 32 KB (with its
size as the reason).
A batch is split into as many requests as keep each under 500 KB.

A changed identifier (``Record.previous``: a new email or id under the same primary key) can only be
written by the person's ``cio_id`` ("If you want to update a person's identifiers after they are set,
you must reference them using their cio_id", docs.customer.io/integrations/api/track/ identify),
which only the App API tells. With ``app_api_key`` the person is looked up by the old value
(``GET /v1/customers/{value}/attributes?id_type=…``) and identified by ``cio_id`` with the new value
among its attributes; a person who already has the new value rejects the row (Customer.io would
answer 200 and keep the old value). Without ``app_api_key`` the new value identifies a new person.

Results: ``errors[{batch_index, reason, field, message}]`` reject the items named; another 4xx
rejects that request's records with Customer.io's ``meta.error``; 401/403 fail the sync; 429, 5xx
and timeouts are retried (every request of the batch again: identify and delete are idempotent,
events carry their id).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, UnencodableValue, body_snippet
from dbt_activate.destinations.api import ApiDestination, http_base_url, one_of, single_identity
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.customerio.payload import (
    Request,
    cio_attributes,
    cio_value,
    encode_item,
    event_id,
    pack,
    read_batch,
)
from dbt_activate.errors import DestinationError

REGIONS = {"us": "https://track.customer.io", "eu": "https://track-eu.customer.io"}
APP_REGIONS = {"us": "https://api.customer.io", "eu": "https://api-eu.customer.io"}  # the App API
IDENTIFIERS = ("id", "email", "cio_id")
MAX_BATCH = 1000
_PATH = "/api/v2/batch"


class CustomerIODestination(ApiDestination):
    kind = "customerio"
    null_handling = Nulls.OMIT
    description = "Customer.io people (identify), events and deletes through the Track API v2 batch endpoint."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("site_id", str, required=True, secret=True, help="Track API site ID (the Basic auth user)."),
        ConfigKey("api_key", str, required=True, secret=True, help="Track API key (the Basic auth password)."),
        ConfigKey("region", str, default="us", help="us (track.customer.io) or eu (track-eu.customer.io)."),
        ConfigKey("base_url", str, help="API origin replacing the region's host; an emulator's URL in tests."),
        ConfigKey("identify_by", str, default="id",
                  help="The identifier the sync's identity holds when its field is not named after one: "
                       "id, email or cio_id."),
        ConfigKey("app_api_key", str, secret=True,
                  help="App API key (Bearer), to find a person's cio_id when the identifier of a row changes (a "
                       "new email): the person is then updated by cio_id. Without it a changed identifier "
                       "identifies a new person. Served by the region's App API host, or base_url when set."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Records per batch, 1-{MAX_BATCH}; each batch is sent in requests of at most 500 KB.",
        "rate_limit": ", Customer.io's fair-use limit for the Track API.",
        "max_concurrency": "Batches in flight at once.",
    }
    modes = frozenset({Mode.UPSERT, Mode.APPEND, Mode.MIRROR})
    max_batch_size = MAX_BATCH
    batch_size = 200
    max_concurrency = 8
    rate_limit = RateLimit(100, 1.0)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.app_url = str(config.get("base_url") or APP_REGIONS[self._region(name, config)]).rstrip("/")
        self.identify_by = one_of(name, "identify_by", self.settings.text("identify_by"), IDENTIFIERS)
        # Event ids take this instance's start as their time: the same on every retry of a batch.
        self._started_ms = int(time.time() * 1000)

    @staticmethod
    def _region(name: str, config: Mapping[str, Any]) -> str:
        return one_of(name, "region", str(config.get("region") or "us").lower(), tuple(REGIONS))

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return http_base_url(name, config, REGIONS[self._region(name, config)])

    def session_headers(self) -> Mapping[str, str]:
        pair = f"{self.settings.text('site_id')}:{self.settings.text('api_key')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    def check_target(self, target: SyncTarget) -> None:
        single_identity(target, "Customer.io identifies a person by one identifier",
                        "set `match: {column: id}` (or email)")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        session = self.session()
        moved: dict[str, str] = {}
        if batch.operation is Operation.UPSERT:
            moved = await self._moves(target, batch, result)
            if result.rejected:  # a new identifier another person has: not sent
                batch = Batch(batch.operation, [r for r in batch.records if r.key not in result.rejected])
        for request in self._prepare(target, batch, result, moved):
            response = await session.request("POST", _PATH, content=request.body(), headers=JSON_HEADERS)
            read_batch(response, request, result, self.redactor)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        requests: list[dict[str, Any]] = [{"method": "POST", "url": self.base_url + _PATH,
                                           "body": json.loads(r.body())}
                    for r in self._prepare(target, batch, BatchResult())]
        return requests[0] if len(requests) == 1 else {"requests": requests}

    # -- requests ------------------------------------------------------------------------------

    async def _moves(self, target: SyncTarget, batch: Batch, result: BatchResult) -> dict[str, str]:
        """The cio_id of each record whose identifier changed (``Record.previous``), found by the old
        value through the App API; such a record is identified by cio_id, its new value among its
        attributes. Customer.io would answer 200 and quietly keep the old identifier if another
        person had the new one (an "Attribute Update Failure"), so the new value is looked up too and
        a person who has it rejects the row, never merged. Without ``app_api_key``: nothing."""
        field = target.identity[0]
        identifier = field if field in IDENTIFIERS else self.identify_by
        if not self.settings.text("app_api_key") or identifier == "cio_id":
            return {}
        changes = [(r.key, _text(r.previous.get(field)), _text(r.values.get(field)))
                   for r in batch.records if r.previous is not None]
        changes = [(k, old, new) for k, old, new in changes if old and new and
                   (old.casefold() != new.casefold() if identifier == "email" else old != new)]
        if not changes:
            return {}

        async def one(key: str, old: str, new: str) -> tuple[str, str | None]:
            cio_id = await self._cio_id(identifier, old)
            if cio_id is None:
                return key, None  # no person under the old value: identified by the new one as usual
            holder = await self._cio_id(identifier, new)
            if holder is not None and holder != cio_id:
                result.rejected[key] = (f"{identifier} changed from {old!r} to {new!r}, which Customer.io person "
                                        f"{holder} (cio_id) already has: not merged into it")
                return key, None
            return key, cio_id

        found = await asyncio.gather(*(one(*change) for change in changes))
        return {key: cio_id for key, cio_id in found if cio_id is not None}

    async def _cio_id(self, identifier: str, value: str) -> str | None:
        """``GET /v1/customers/{value}/attributes?id_type=…`` (App API): the person's cio_id, None on 404."""
        app = self.session("app", base_url=self.app_url,
                           headers={"Authorization": f"Bearer {self.settings.text('app_api_key')}"})
        response = await app.request("GET", f"/v1/customers/{quote(value, safe='')}/attributes",
                                     params={"id_type": identifier})
        if response.status_code == 404:
            return None
        try:
            customer = response.json().get("customer") or {}
            cio_id = (customer.get("identifiers") or {}).get("cio_id")
        except (ValueError, AttributeError):
            cio_id = None
        if response.status_code != 200 or not cio_id:
            raise DestinationError(self.redactor(f"{self.name}: the App API answered HTTP {response.status_code} "
                                                 f"when looking a person up by {identifier}: "
                                                 f"{body_snippet(response)}; the batch is not confirmed"))
        return str(cio_id)

    def _prepare(self, target: SyncTarget, batch: Batch, result: BatchResult,
                 moved: Mapping[str, str] | None = None) -> list[Request]:
        """Track API requests of ``batch``; a record in ``moved`` (key -> cio_id) is identified by its
        cio_id and carries its new identifier among its attributes."""
        self.check_target(target)
        field = target.identity[0]
        identifier = field if field in IDENTIFIERS else self.identify_by
        moved = moved or {}
        # `email` is an identifier and an attribute; `id`/`cio_id` and other identity fields are not repeated.
        exclude = () if field == "email" else (field,)
        operation = batch.operation
        cleared = {f: "" for f in target.field_names if f != field}
        now = int(time.time())
        items: list[tuple[str, bytes]] = []
        for record in batch.records:
            try:
                raw = record.values.get(field)
                value = "" if raw is None else str(cio_value(raw))
                if not value:
                    raise UnencodableValue(f"the person identifier ({identifier}) is empty")
                item: dict[str, Any] = {"type": "person", "identifiers": {identifier: value}}
                if operation is Operation.DELETE:
                    item["action"] = "delete"
                elif operation is Operation.APPEND:
                    item.update(action="event", name=target.object,
                                id=event_id(f"{target.sync_name}|{target.run_id}|{record.key}", self._started_ms),
                                timestamp=now,
                                attributes=cio_attributes(record.values, exclude=(field,), null=None))
                else:
                    item.update(action="identify", attributes=cleared if operation is Operation.CLEAR
                                else cio_attributes(record.values, exclude=exclude))
                    if record.key in moved:
                        item["identifiers"] = {"cio_id": moved[record.key]}
                        item["attributes"][identifier] = value
                items.append((record.key, encode_item(item)))
            except (UnencodableValue, ValueError) as exc:
                result.rejected[record.key] = str(exc)
        return pack(items, result)


def _text(value: Any) -> str:
    return "" if value is None else str(cio_value(value))
