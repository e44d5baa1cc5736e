"""``braze``: user attributes and custom events through ``/users/track``; deletes through ``/users/delete``.

Configuration (``destinations.yml``)::

    braze:
      type: braze
      api_key: "{{ env_var('BRAZE_API_KEY') }}"    # REST API key: users.track (and users.delete for mirror)
      base_url: https://rest.iad-01.braze.com       # your instance's REST endpoint (required)
      identify_by: external_id                      # external_id (default) | email | phone | braze_id | user_alias
      alias_label: crm_id                           # with identify_by: user_alias
      delete_prioritization: [most_recently_updated] # mirror by email/phone: which of the users sharing it
      batch_size: 75                                # objects per request, 1-75 (Braze's maximum, the default)
      rate_limit: {requests: 3000, per_seconds: 3}  # default: Braze's /users/track limit per workspace
      max_concurrency: 8

A sync's identity (``match``, else the primary key) must be one field; its value names the Braze
user. The identifier is the identity field's own name when that is ``external_id``, ``email``,
``phone`` or ``braze_id``, else ``identify_by``. One request per batch (contracts SUMMARY §4;
docs: braze.com/docs/api/endpoints/user_data/post_user_track, …/post_user_delete, braze.com/docs/api/errors):

=========  ==============================================================================
upsert     ``attributes`` with ``"_update_existing_only": false``: update the user or create it
update     ``attributes`` with ``"_update_existing_only": true``. Braze does not say which users it
           did not have, so those records are acknowledged (nothing is created), not skipped
append     ``events``: ``name`` = the sync's object (the event name), ``time`` = the record's ``time`` field if mapped,
           else the time of sending; every other field is a property. The user is created if new
delete     ``/users/delete`` with up to 50 identifiers per request (``external_ids``,
           ``email_addresses``, …); users Braze does not have are acknowledged. By email or
           phone each entry is ``{"email": …, "prioritization": [...]}`` (``delete_prioritization``,
           default ``["most_recently_updated"]``: the profile a by-email write updates), as Braze
           requires; Braze deletes nobody when more than one user matches the prioritization
clear      ``attributes`` with null for every mapped field but the identity (null removes an
           attribute), ``_update_existing_only: true`` so a deleted user is not brought back
=========  ==============================================================================

``create`` is not offered: Braze has no create-only write. Values follow ``braze_payload``: JSON,
times as ISO 8601 in UTC, dates as midnight UTC; a NULL is left out, so Braze keeps the attribute
(the sync's ``nulls: clear`` sends null, which removes it). A record with NaN or
±Infinity, or with an empty identifier, is rejected before sending.

Results: ``errors[{type, input_array, index}]`` in a 2xx ("minor errors") reject the records at
those indexes with Braze's ``type`` as the reason; a fatal 4xx rejects the whole batch (records it
names by index get their own reason). 429 is retried after ``X-RateLimit-Reset`` (epoch seconds),
and every response's ``X-RateLimit-Remaining`` keeps the shared limiter under the window; 5xx and
timeouts are retried. Retries are safe for attributes and deletes; an ``events`` batch whose
answer was lost is sent again and its events are recorded twice (Braze has no event id).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, SyncTarget
from dbt_activate.delivery import (
    JSON_HEADERS,
    HttpSession,
    RateLimiter,
    RateLimitHeaders,
    UnencodableValue,
    current_limiter,
)
from dbt_activate.destinations.api import ApiDestination, one_of, single_identity
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.braze.payload import (
    DEFAULT_PRIORITIZATION,
    DELETE_FIELDS,
    EVENT_TIME_FIELD,
    IDENTIFIERS,
    PRIORITIZATIONS,
    Prepared,
    braze_value,
    braze_values,
    check_prioritization,
    delete_entry,
    identifier_of,
    read_delete,
    read_track,
)
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError

MAX_OBJECTS = 75  # attributes (or events) per /users/track request
MAX_DELETE = 50  # identifiers per /users/delete request
# /users/delete has its own limit, apart from /users/track's (braze.com/docs/api/api_limits).
DELETE_RATE_LIMIT = RateLimit(20_000, 60.0)


@dataclass(frozen=True)
class ResetHeaders(RateLimitHeaders):
    """``X-RateLimit-Remaining`` with the window's end from ``X-RateLimit-Reset`` (UTC epoch seconds)."""

    def read(self, headers: httpx.Headers) -> tuple[int, float | None] | None:
        seen = super().read(headers)
        if seen is None:
            return None
        return seen[0], seconds_until(headers.get("X-RateLimit-Reset"))


def seconds_until(reset: str | None) -> float | None:
    try:
        return max(0.0, float(reset or "") - time.time())
    except ValueError:
        return None


class BrazeDestination(ApiDestination):
    kind = "braze"
    null_handling = Nulls.OMIT
    description = "Braze user profiles (attributes) and custom events through /users/track; deletes via /users/delete."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("api_key", str, required=True, secret=True,
                  help="REST API key with the users.track permission (and users.delete for mirror)."),
        ConfigKey("base_url", str, required=True,
                  help="Your Braze instance's REST endpoint, e.g. https://rest.iad-01.braze.com."),
        ConfigKey("identify_by", str, default="external_id",
                  help="Which Braze identifier the sync's identity holds when its field is not named after one: "
                       "external_id, email, phone, braze_id or user_alias."),
        ConfigKey("alias_label", str, help="The alias_label of user aliases (identify_by: user_alias)."),
        ConfigKey("delete_prioritization", list, default=list(DEFAULT_PRIORITIZATION),
                  help="Deletes by email or phone (mirror): which of the users sharing the address Braze deletes, "
                       f"an ordered list of {', '.join(PRIORITIZATIONS)}; default [most_recently_updated], the "
                       "profile a by-email write updates. Braze deletes nobody when several users still match."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Objects per request, 1-{MAX_OBJECTS} (Braze's maximum, the default); lower it to 50 "
                      "on accounts whose contract limits a request to 50 updates.",
        "rate_limit": ", Braze's /users/track limit per workspace. Shared by every sync of this destination in a run.",
        "max_concurrency": "Batches in flight at once.",
    }
    modes = frozenset({Mode.UPSERT, Mode.UPDATE, Mode.APPEND, Mode.MIRROR})
    max_batch_size = MAX_OBJECTS
    batch_limit = "Braze's maximum objects per request"
    batch_size = MAX_OBJECTS
    max_concurrency = 8
    rate_limit = RateLimit(3000, 3.0)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.identify_by = one_of(name, "identify_by", self.settings.text("identify_by"), IDENTIFIERS)
        self.alias_label = self.settings.text("alias_label")
        if self.identify_by == "user_alias" and not self.alias_label:
            raise ConfigError("identify_by: user_alias needs alias_label", location=f"{name}.alias_label")
        try:
            self.delete_prioritization = check_prioritization(self.settings.get("delete_prioritization"))
        except ValueError as exc:
            raise ConfigError(f"delete_prioritization {exc}", location=f"{name}.delete_prioritization") from None
        # Deletes count against their own limit, not the run's /users/track limiter: their session
        # carries its own limiter (one per destination, shared by its syncs' delete batches).
        self.delete_limiter = RateLimiter(DELETE_RATE_LIMIT)

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        base_url = str(config.get("base_url") or "").rstrip("/")
        if urlsplit(base_url).scheme not in ("http", "https"):
            raise ConfigError("base_url must be your instance's REST endpoint, e.g. https://rest.iad-01.braze.com "
                              f"(http:// only for a local emulator), got {base_url!r}",
                              location=f"{name}.base_url")
        return base_url

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.settings.text('api_key')}"}

    def session_options(self) -> Mapping[str, Any]:
        return {"rate_limit_headers": ResetHeaders("X-RateLimit-Remaining"), "response_hook": self._on_response}

    def check_target(self, target: SyncTarget) -> None:
        single_identity(target, "Braze names a user by one identifier", "set `match: {column: external_id}` (or email)")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        deleting = batch.operation is Operation.DELETE
        session = self._session_for_run(deleting=deleting)
        for prepared in self._prepare(target, batch, result):
            response = await session.request("POST", prepared.path, content=_encode(prepared.body),
                                             headers=JSON_HEADERS)
            if deleting:
                read_delete(response, prepared, result, self.redactor)
            else:
                read_track(response, prepared, result, self.redactor)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        requests: list[dict[str, Any]] = [{"method": "POST", "url": self.base_url + p.path, "body": p.body}
                    for p in self._prepare(target, batch, BatchResult())]
        return requests[0] if len(requests) == 1 else {"requests": requests}

    # -- requests ------------------------------------------------------------------------------

    def identifier(self, target: SyncTarget) -> tuple[str, str]:
        """(identity field, Braze identifier it holds)."""
        self.check_target(target)
        field = target.identity[0]
        return field, field if field in IDENTIFIERS[:4] else self.identify_by

    def _prepare(self, target: SyncTarget, batch: Batch, result: BatchResult) -> list[Prepared]:
        field, identifier = self.identifier(target)
        operation = batch.operation
        if operation is Operation.DELETE:
            return self._deletes(batch, field, identifier, result)
        array = "events" if operation is Operation.APPEND else "attributes"
        prepared = Prepared("/users/track", array)
        objects: list[dict[str, Any]] = []
        cleared = {f: None for f in target.field_names if f != field}
        now = braze_value(dt.datetime.now(dt.timezone.utc))
        for record in batch.records:
            try:
                who = identifier_of(identifier, record.values.get(field), self.alias_label)
                if operation is Operation.APPEND:
                    properties = braze_values(record.values, exclude=(field, EVENT_TIME_FIELD))
                    when = record.values.get(EVENT_TIME_FIELD)
                    item: dict[str, Any] = {**who, "name": target.object,
                                            "time": now if when is None else braze_value(when),
                                            "properties": properties}
                else:
                    # An identity field named otherwise (customer_id holding the external_id) is sent
                    # as the identifier only; `email` and `phone` are identifiers and attributes at once.
                    values = cleared if operation is Operation.CLEAR else braze_values(
                        record.values, exclude=() if field == identifier else (field,))
                    item = {**values, **who,
                            "_update_existing_only": operation in (Operation.UPDATE, Operation.CLEAR)}
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            objects.append(item)
            prepared.keys.append(record.key)
        prepared.body = {array: objects}
        return [prepared] if objects else []

    def _deletes(self, batch: Batch, field: str, identifier: str, result: BatchResult) -> list[Prepared]:
        body_field = DELETE_FIELDS[identifier]
        requests: list[Prepared] = []
        for record in batch.records:
            try:
                who = identifier_of(identifier, record.values.get(field), self.alias_label)
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            if not requests or len(requests[-1].keys) >= MAX_DELETE:
                requests.append(Prepared("/users/delete", body_field, {body_field: []}))
            requests[-1].body[body_field].append(delete_entry(identifier, who, self.delete_prioritization))
            requests[-1].keys.append(record.key)
        return requests

    def _session_for_run(self, *, deleting: bool = False) -> HttpSession:
        """The /users/track session (the run's limiter), or with ``deleting`` the /users/delete one."""
        return self.session("delete", limiter=self.delete_limiter) if deleting else self.session()

    def _on_response(self, response: httpx.Response) -> None:
        """A 429 says when the window resets in ``X-RateLimit-Reset``, not ``Retry-After``: wait until then."""
        if response.status_code != 429 or "Retry-After" in response.headers:
            return
        wait = seconds_until(response.headers.get("X-RateLimit-Reset"))
        if wait is None:
            return  # the session's own 429 handling: a pause of one window
        limiter = self.delete_limiter if response.request.url.path.endswith("/users/delete") else current_limiter()
        if limiter is not None:
            limiter.throttled(wait)
        raise RetryableDestinationError(self.redactor(
            f"{self.name}: POST {response.request.url.path} was throttled: HTTP 429 (window resets in "
            f"{wait:.1f}s)"), retry_after=wait)


def _encode(body: Mapping[str, Any]) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except ValueError as exc:  # every value went through braze_value; this is a bug, not a bad record
        raise DestinationError(f"cannot encode a Braze request: {exc}") from exc
