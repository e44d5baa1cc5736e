"""``meta``: Conversions API events and Custom Audience members through Meta's Graph API.

Configuration (``destinations.yml``)::

    meta:
      type: meta
      access_token: "{{ env_var('META_ACCESS_TOKEN') }}"   # system user token, ads_management (required)
      api_version: v25.0
      event_name: Purchase                 # default event name of events:… syncs
      action_source: system_generated      # default action_source
      test_event_code: TEST12345           # send to the Test Events tool instead
      phone_country_code: "44"             # for national phone numbers (0…)
      base_url: https://graph.facebook.com # default; an emulator's URL in tests

Objects (Meta's documentation is the contract; ``shared/contracts/meta/SOURCE.md``):

- ``events:<pixel or dataset id>`` (mode ``append``): the Conversions API,
  ``POST /{version}/{id}/events`` with ``{"data": [event, …]}``, up to 1,000 events per request
  (developers.facebook.com/docs/marketing-api/conversions-api/using-the-api). Events are built by
  ``meta_payload.server_event``; ``event_id`` is the primary key so Meta de-duplicates a resend. A
  row whose ``event_time`` is more than 7 days old is rejected with that reason and not sent. One
  invalid event makes Meta refuse the whole request (error code 100 with a user title): the request is split in halves
  and resent until the refused events are alone, so only their rows are rejected, with Meta's message
  (at most 2·log2(n) more requests). ``events_received`` must equal what was sent.
- ``audience:<custom audience id>`` (modes ``upsert`` and ``mirror``): Custom Audiences,
  ``POST /{version}/{id}/users`` to add and ``DELETE /{version}/{id}/users`` to remove, with
  ``{"payload": {"schema": [...], "data": [[...]]}}``, up to 10,000 rows per request
  (developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences). The schema has a
  key per mapped identifier (EMAIL, PHONE, FN, LN, CT, ST, ZIP, COUNTRY, GEN, DOBY/DOBM/DOBD,
  EXTERN_ID). Removing names the member by the hashes sent when it was added, kept in the state's
  record-id table (hashes only); a changed row whose identifiers changed is removed under the old
  ones, then added. ``num_received`` must equal the rows sent.

The token goes in the ``Authorization`` header, never in a URL. Throttling (error codes 4, 17, 32,
613 and the business use case codes, ``X-Business-Use-Case-Usage``) slows the shared rate limiter
down and is retried after Meta's estimate; token and permission errors stop the sync
(``meta_results``). Personal values are normalised and hashed in process (``meta_hashing``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import httpx

from dbt_activate.core.types import (
    Batch,
    BatchResult,
    MemoryIdStore,
    Mode,
    Operation,
    RateLimit,
    Record,
    RecordIdStore,
    SyncTarget,
)
from dbt_activate.delivery import JSON_HEADERS, body_snippet, json_body
from dbt_activate.destinations.ad_platform import (
    KEPT_HASHES,
    AdPlatformDestination,
    Owner,
    hashed_each,
    member_changes,
    remember_members,
)
from dbt_activate.destinations.api import json_object
from dbt_activate.destinations.base import ConfigKey, skip_all
from dbt_activate.destinations.meta.payload import (
    ACTION_SOURCES,
    AUDIENCE_KEYS,
    PERSONAL_FIELDS,
    USER_DATA,
    EventDefaults,
    audience_row,
    audience_schema,
    personal_custom_data,
    server_event,
)
from dbt_activate.destinations.meta.results import INVALID_PARAMETER, check_response, code_of, error_of, reason
from dbt_activate.destinations.pii import country_calling_code
from dbt_activate.errors import ConfigError, DestinationError

API_VERSION = "v25.0"
BASE_URL = "https://graph.facebook.com"
MAX_EVENTS = 1_000
MAX_USERS = 10_000
_OBJECT = re.compile(r"(events|audience):(\d+)")
MISSING_OBJECT = 33  # error_subcode: the object does not exist or the token may not use it


class MetaDestination(AdPlatformDestination):
    kind = "meta"
    description = ("Meta: Conversions API events (object events:<pixel id>, append) and Custom Audience members "
                   "(object audience:<audience id>, upsert/mirror), with customer information hashed in process.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("access_token", str, required=True, secret=True,
                  help="A system user access token with ads_management, sent in the Authorization header."),
        ConfigKey("api_version", str, default=API_VERSION, help="Graph API version in the request paths."),
        ConfigKey("event_name", str, help="Default event_name of events (e.g. Purchase, Lead)."),
        ConfigKey("action_source", str, default="system_generated",
                  help=f"Default action_source of events: {', '.join(ACTION_SOURCES)}."),
        ConfigKey("test_event_code", str, help="Send events to the Test Events tool with this code."),
        ConfigKey("phone_country_code", (str, int),
                  help="Country calling code given to national phone numbers (those starting with 0), e.g. 44."),
        ConfigKey("batch_size", int,
                  help=f"Events ({MAX_EVENTS:,} at most, the default) or audience rows ({MAX_USERS:,}) per request."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "rate_limit": ". Meta's limits are hourly allowances by business; its usage headers and throttling codes slow "
                      "the limiter further.",
    }
    default_base_url = BASE_URL
    max_batch_size = MAX_USERS
    default_timeout = 60.0
    batch_size = MAX_EVENTS
    max_concurrency = 1
    rate_limit = RateLimit(60, 60.0)
    objects = (f"events:<pixel id> (append; {MAX_EVENTS:,} events per request)",
               f"audience:<custom audience id> (upsert, mirror; {MAX_USERS:,} users per request)")

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.version = self.settings.text("api_version")
        source = self.settings.text("action_source")
        if source not in ACTION_SOURCES:
            raise ConfigError(f"must be one of {', '.join(ACTION_SOURCES)}, got {source!r}",
                              location=f"{name}.action_source")
        self.phone_country_code = country_calling_code(name, config)
        self.defaults = EventDefaults(self.settings.text("event_name") or None, source, self.phone_country_code)
        self._kind: str | None = None  # events | audience, of the sync being served (set by open())

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.settings.text('access_token')}"}

    def session_options(self) -> Mapping[str, Any]:
        return {"response_hook": lambda response: check_response(self.name, response, self.redactor)}

    # -- the seam ------------------------------------------------------------------------------

    @property
    def effective_batch_size(self) -> int:
        limit = MAX_USERS if self._kind == "audience" else MAX_EVENTS
        return min(int(self.config.get("batch_size") or limit), limit)

    def estimate_requests(self, operation: Operation, records: int) -> int:
        limit = MAX_EVENTS if operation is Operation.APPEND else MAX_USERS
        return -(-records // min(int(self.config.get("batch_size") or limit), limit))

    def check_target(self, target: SyncTarget) -> None:
        where = f"sync {target.sync_name}"
        found = _OBJECT.fullmatch(target.object)
        if found is None:
            raise ConfigError(f"object {target.object!r} is neither events:<pixel id> nor audience:<audience id>",
                              location=where)
        self.check_identity(target, PERSONAL_FIELDS)
        if found.group(1) == "events":
            if target.mode is not Mode.APPEND:
                raise ConfigError(f"events take mode append, not {target.mode.value}", location=where)
            clear = personal_custom_data(target.field_names)
            if clear:
                raise ConfigError(f"field(s) {', '.join(clear)} would be sent in custom_data in clear; map them to a "
                                  f"customer information field ({', '.join(USER_DATA)}) or leave them out",
                                  location=where)
            return
        if target.mode is Mode.APPEND:
            raise ConfigError("an audience takes mode upsert or mirror", location=where)
        if not audience_schema(target.field_names):
            raise ConfigError(f"no audience identifier is mapped: map {', '.join(AUDIENCE_KEYS)} or date_of_birth",
                              location=where)

    async def open(self, target: SyncTarget) -> None:
        await super().open(target)
        found = _OBJECT.fullmatch(target.object)
        self._kind = found.group(1) if found else None

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        kind, object_id = self._parse(target)
        if kind == "events":
            return await self._write_events(object_id, batch)
        return await self._write_audience(target, object_id, batch)

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        kind, object_id = self._parse(target)
        headers = {"Authorization": "Bearer ***"}
        if kind == "events":
            events, _ = self._events(batch, BatchResult())
            return {"method": "POST", "url": f"{self.base_url}/{self.version}/{object_id}/events",
                    "headers": headers, "body": self._events_body(events)}
        if batch.operation is Operation.DELETE:  # plan has no record-id store: say where the hashes come from
            return {"method": "DELETE", "url": f"{self.base_url}/{self.version}/{object_id}/users", "headers": headers,
                    "body": {"payload": {"schema": "<as when added>", "data": [KEPT_HASHES] * len(batch.records)}}}
        requests = self._audience_requests(target, batch, BatchResult(), MemoryIdStore())
        return {"requests": [{"method": method, "url": f"{self.base_url}/{self.version}/{object_id}/users",
                              "headers": headers, "body": {"payload": {"schema": schema, "data": rows}}}
                             for method, schema, rows, _ in requests]}

    # -- events --------------------------------------------------------------------------------

    def _parse(self, target: SyncTarget) -> tuple[str, str]:
        found = _OBJECT.fullmatch(target.object)
        if found is None:
            raise DestinationError(f"sync {target.sync_name}: object {target.object!r} is not events:<id> or "
                                   "audience:<id>")
        self._kind = found.group(1)
        return found.group(1), found.group(2)

    def _events(self, batch: Batch, result: BatchResult) -> tuple[list[dict[str, Any]], list[str]]:
        return hashed_each(batch, result, lambda record: server_event(record.key, record.values, self.defaults))

    def _events_body(self, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {"data": list(events)}
        if self.settings.text("test_event_code"):
            body["test_event_code"] = self.settings.text("test_event_code")
        return body

    async def _write_events(self, pixel: str, batch: Batch) -> BatchResult:
        if batch.operation is not Operation.APPEND:
            return skip_all(batch, "a Conversions API event cannot be deleted or cleared")
        result = BatchResult()
        events, keys = self._events(batch, result)
        if events:
            await self._send_events(f"/{self.version}/{pixel}/events", events, keys, result)
        return result

    async def _send_events(self, path: str, events: list[dict[str, Any]], keys: list[str],
                           result: BatchResult) -> None:
        """Send ``events``; when Meta refuses the request for an invalid event, halve it until that event is alone."""
        response = await self._request("POST", path, self._events_body(events))
        if response.status_code == 200:
            received = json_object(response).get("events_received")
            if received != len(events):
                raise DestinationError(self.redactor(
                    f"{self.name}: Meta received {received} of {len(events)} events: {body_snippet(response)}; "
                    "the batch is not acknowledged"))
            return
        error = error_of(response)
        if error.get("error_subcode") == MISSING_OBJECT:
            raise DestinationError(self.redactor(f"{self.name}: {reason(error, response, self.redactor)}; check the "
                                                 "pixel id and that the token may use it"))
        # An invalid event is reported to the user (error_user_title); halve the request to find it.
        event_level = code_of(error) == INVALID_PARAMETER and bool(error.get("error_user_title"))
        if 400 <= response.status_code < 500 and event_level and len(events) > 1:
            middle = len(events) // 2
            await self._send_events(path, events[:middle], keys[:middle], result)
            await self._send_events(path, events[middle:], keys[middle:], result)
            return
        if 400 <= response.status_code < 500:
            result.rejected.update(dict.fromkeys(keys, reason(error, response, self.redactor)))
            return
        raise DestinationError(self.redactor(f"{self.name}: {path} answered HTTP {response.status_code}: "
                                             f"{body_snippet(response)}; the batch is not acknowledged"))

    # -- audiences -----------------------------------------------------------------------------

    def _audience_requests(self, target: SyncTarget, batch: Batch, result: BatchResult, store: RecordIdStore
                           ) -> list[tuple[str, list[str], list[list[str]], list[Owner]]]:
        """(method, schema, rows, owners) per request: removals first, then additions. An owner is
        (record key, store key, the member json to keep; None to forget it)."""
        if batch.operation not in (Operation.UPSERT, Operation.DELETE):
            raise DestinationError(f"sync {target.sync_name}: a Custom Audience cannot {batch.operation.value}")
        schema = audience_schema(target.field_names)
        removals: dict[str, tuple[list[str], list[list[str]], list[Owner]]] = {}  # by the schema they were added with
        adds: list[list[str]] = []
        add_owners: list[Owner] = []

        def hashed_row(record: Record) -> tuple[list[str], str]:
            row = audience_row(record.values, schema, self.phone_country_code)
            return row, json.dumps({"schema": schema, "row": row}, separators=(",", ":"))

        for owner, old, row in member_changes(target, batch, result, store, hashed_row):
            if old is not None:
                member = json.loads(old)
                entry = removals.setdefault(json.dumps(member["schema"]), (member["schema"], [], []))
                entry[1].append(member["row"])
                entry[2].append(owner)
            if row is not None:
                adds.append(row)
                add_owners.append(owner)
        requests = [("DELETE", s, rows, owners) for s, rows, owners in removals.values()]
        if adds:
            requests.append(("POST", schema, adds, add_owners))
        return requests

    async def _write_audience(self, target: SyncTarget, audience: str, batch: Batch) -> BatchResult:
        result = BatchResult()
        store = self.record_id_store()
        path = f"/{self.version}/{audience}/users"
        for method, schema, rows, owners in self._audience_requests(target, batch, result, store):
            keys = [o[0] for o in owners if o[0] not in result.rejected]
            if not keys:
                continue
            response = await self._request(method, path, {"payload": {"schema": schema, "data": rows}})
            error = error_of(response)
            if error.get("error_subcode") == MISSING_OBJECT:
                raise DestinationError(self.redactor(f"{self.name}: {reason(error, response, self.redactor)}; check "
                                                     "the audience id and that the token may use it"))
            if 400 <= response.status_code < 500:
                why = reason(error, response, self.redactor)
                result.rejected.update({k: why for k in keys if k not in result.rejected})
                continue
            received = json_object(response).get("num_received")
            if response.status_code != 200 or received != len(rows):
                raise DestinationError(self.redactor(
                    f"{self.name}: {method} {path} answered HTTP {response.status_code} ({received} of {len(rows)} "
                    f"users received): {body_snippet(response)}; the batch is not acknowledged"))
            remember_members(store, owners, result.rejected, keep=method == "POST")
        return result

    # -- requests ------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, body: Mapping[str, Any]) -> httpx.Response:
        return await self.session().request(method, path, content=json_body(body), headers=JSON_HEADERS)
