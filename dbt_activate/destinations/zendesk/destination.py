"""``zendesk``: Zendesk Support users and organizations through the bulk job APIs.

Configuration (``destinations.yml``)::

    support:
      type: zendesk
      subdomain: acme                                  # -> https://acme.zendesk.com
      email: ops@acme.com                              # the agent the API token belongs to
      api_token: "{{ env_var('ZENDESK_API_TOKEN') }}"  # or oauth_token: "{{ env_var('ZENDESK_OAUTH') }}"
      rate_limit: {requests: 200, per_seconds: 60}     # default (Team); Growth/Professional 400, Enterprise 700
      batch_size: 100                                  # 1-100, Zendesk's bulk maximum (default)
      job_poll_interval: 1                             # seconds between job status reads
      job_timeout: 300                                 # seconds to wait for a job to complete

A sync's ``object`` is ``users`` or ``organizations``. Its identity (``match``, else the primary
key) is one field: ``external_id`` (users and organizations) or ``email`` (users, upsert only: the
other writes name records by id or external id). Mapped fields named like a standard property
(``name``, ``email``, ``phone``, ``tags``, ``details``...) are sent as such, every other field by its
key in ``user_fields``/``organization_fields`` (``zendesk_format``). Creating a record needs a
``name``.

One bulk request per batch, then its job is polled (``zendesk_jobs``). Endpoints as documented at
developer.zendesk.com/api-reference/ticketing/users/users/ and
…/ticketing/organizations/organizations/:

=============  ==========================================================================
upsert users   ``POST /api/v2/users/create_or_update_many`` ``{"users": [...]}``, matched on
               external_id or email
upsert         Zendesk has no ``organizations/create_or_update_many`` (only users do; the
organizations  organizations page lists single ``create_or_update``, ``create_many`` and
               ``update_many``). So: ``GET /api/v2/organizations/show_many?external_ids=…`` (up
               to 100, "a comma-separated list of … external ids") finds the existing ones, which
               go to ``update_many``; the others to ``POST …/create_many`` (two jobs)
update         ``PUT /api/v2/{object}/update_many`` ``{"users": [{"external_id": …, …}]}``: the
               documented batch update, whose samples name items by ``external_id`` (users:
               ``{"external_id": "123", "verified": true}``; organizations: ``{"external_id":
               "2", "notes": …}``); unknown records are skipped
clear          ``update_many`` with the mapped fields null (name, email kept); unknown: acknowledged
delete         ``DELETE /api/v2/{object}/destroy_many?external_ids=…``; unknown: acknowledged
=============  ==========================================================================

A changed external_id (``Record.previous``: a new value under the same primary key) is found by its
old value (``GET /api/v2/{object}/show_many?external_ids=…``) and updated by Zendesk id in one
``update_many`` job with the new value; an external_id another record has rejects the row with
Zendesk's "External: … has already been taken". A changed email with ``match: email`` is an upsert
by the new email as before: Zendesk finds users by email only in create_or_update_many.

A NULL is left out of an item, so Zendesk keeps the value (the sync's ``nulls: clear`` sends null).

**References.** A users sync may set ``organization_id`` from an organizations sync (``references``
with ``as: organization_id``): the engine sends the organization's Zendesk id, which the job results
reported (``results[].id``, kept as ``BatchResult.ids``); a NULL reference sends ``organization_id:
null``, which takes the user out of the organization.
Per-item ``Failed`` results reject their records with Zendesk's error and details. A whole request
refused with a 4xx rejects the batch with Zendesk's ``error``/``description``. 429 answers carry
``Retry-After``, which the shared limiter honours; it also reads ``X-Rate-Limit-Remaining``.
The default rate limit is the lowest plan's (Team) 200 requests per minute, so no account is
throttled by default (developer.zendesk.com/api-reference/introduction/rate-limits): set your
plan's (Growth and Professional 400, Enterprise 700) to go faster.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, SyncTarget
from dbt_activate.delivery import HttpSession, RateLimitHeaders
from dbt_activate.destinations.api import ApiDestination, Endpoint, checked_base_url
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.jobs import job_keys, job_polling
from dbt_activate.destinations.zendesk.jobs import found_external_ids, job_of, read_results, refusal, wait_for
from dbt_activate.destinations.zendesk.payload import (
    IDENTITIES,
    FormatError,
    build_item,
    clear_item,
    identity_text,
)
from dbt_activate.errors import ConfigError, DestinationError

MAX_BATCH = 100
_JOB_KEYS = job_keys(interval=1.0, timeout=300, then="the batch is sent again (next attempt or run)")
OBJECTS = ("users", "organizations")
ORGANIZATIONS = "/api/v2/organizations"
SHOW_MANY = f"{ORGANIZATIONS}/show_many.json"
_SUBDOMAIN = re.compile(r"^(?:https?://)?([A-Za-z0-9][A-Za-z0-9-]*)(?:\.zendesk\.com)?/?$")


@dataclass
class _Prepared:
    method: str
    path: str
    keys: list[str] = field(default_factory=list)
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None

    @property
    def items(self) -> list[dict[str, Any]]:
        """The bulk items of the body (``{"users": [...]}`` or ``{"organizations": [...]}``), in ``keys`` order."""
        found = next(iter((self.body or {}).values()), None)
        return found if isinstance(found, list) else []


# Plan: the bulk request and at least one read of its job.
_JOB = "; then GET /api/v2/job_statuses/{{id}}.json until completed"
_ENDPOINTS = {
    Operation.UPSERT: Endpoint("POST /api/v2/{object}/create_or_update_many.json" + _JOB, per_batch=2),
    Operation.UPDATE: Endpoint("PUT /api/v2/{object}/update_many.json" + _JOB, per_batch=2),
    Operation.CLEAR: Endpoint("PUT /api/v2/{object}/update_many.json" + _JOB, per_batch=2),
    Operation.DELETE: Endpoint("DELETE /api/v2/{object}/destroy_many.json" + _JOB, per_batch=2),
}


class ZendeskDestination(ApiDestination):
    kind = "zendesk"
    null_handling = Nulls.OMIT
    description = ("Zendesk Support users and organizations through the bulk jobs (create_or_update_many for users, "
                   "show_many + create_many/update_many for organizations, update_many, destroy_many), found by "
                   "external_id, or email for users.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("subdomain", str, help="Your Zendesk subdomain: acme -> https://acme.zendesk.com."),
        ConfigKey("base_url", str, help="API origin instead of subdomain (an emulator in tests, a proxy)."),
        ConfigKey("email", str, help="Email of the agent who owns api_token (API token authentication)."),
        ConfigKey("api_token", str, secret=True, help="Zendesk API token; sent as Basic {email}/token:{api_token}."),
        ConfigKey("oauth_token", str, secret=True, help="OAuth access token, instead of email and api_token."),
        *_JOB_KEYS,
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "rate_limit": " (Team, the lowest plan). Growth and Professional allow 400, Enterprise 700, Enterprise Plus or "
                      "High Volume 2,500.",
        "batch_size": f"Records per bulk request, 1-{MAX_BATCH} (Zendesk's maximum, the default).",
        "max_concurrency": "Batches (background jobs) in flight at once; Zendesk limits concurrent jobs per account.",
    }
    modes = frozenset({Mode.UPSERT, Mode.UPDATE, Mode.MIRROR})
    max_batch_size = MAX_BATCH
    batch_limit = "Zendesk's bulk maximum"
    min_connections = 2
    batch_size = MAX_BATCH
    max_concurrency = 4
    rate_limit = RateLimit(200, 60.0)  # Team, the lowest plan: safe for every account (as HubSpot's default)
    objects = OBJECTS
    endpoints = _ENDPOINTS
    # A user's organization_id holds its (default) organization's Zendesk id (Users API, "organization_id":
    # developer.zendesk.com/api-reference/ticketing/users/users/#json-format); null removes it.
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {"users": {"organization_id": "organizations"}}

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self._authorization = _authorization(name, config)
        self.polling = job_polling(name, config, _JOB_KEYS)

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return _base_url(name, config)

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": self._authorization, "Accept": "application/json"}

    def session_options(self) -> Mapping[str, Any]:
        return {"rate_limit_headers": RateLimitHeaders("X-Rate-Limit-Remaining")}

    def check_target(self, target: SyncTarget) -> None:
        where = f"{target.sync_name}: object"
        if target.object not in OBJECTS:
            raise ConfigError(f"Zendesk object {target.object!r} is not supported (use {', '.join(OBJECTS)})",
                              location=where)
        identity = _identity(target)
        if identity not in IDENTITIES[target.object]:
            raise ConfigError(f"Zendesk finds {target.object} by {' or '.join(IDENTITIES[target.object])}, not "
                              f"{identity!r}: set `match: {{column: external_id}}`",
                              location=f"{target.sync_name}: match")
        if identity == "email" and target.mode is not Mode.UPSERT:
            raise ConfigError(f"mode {target.mode.value} needs Zendesk users found by external_id (update_many and "
                              "destroy_many do not take emails); match on external_id or use mode upsert",
                              location=f"{target.sync_name}: match")
        on_delete = str(target.options.get("on_delete") or "ignore")
        if identity == "email" and on_delete != "ignore":
            # Removed rows are deleted (destroy_many) or cleared (update_many), neither of which finds
            # users by email: every remove batch would fail at run time.
            raise ConfigError(f"on_delete {on_delete} needs Zendesk users found by "
                              "external_id (destroy_many and update_many do not take emails); match on "
                              "external_id or set on_delete: ignore", location=f"{target.sync_name}: on_delete")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        if batch.operation in (Operation.UPSERT, Operation.UPDATE) and _identity(target) == "external_id":
            batch = await self._move(target, batch, result)
        prepared = self._prepare(target, batch, result)
        if not prepared.keys:
            return result
        session = self.session()
        if _upserts_organizations(target, batch.operation):
            for part in await self._split_by_existence(session, prepared, result):
                await self._run_job(session, part, batch.operation, result)
        else:
            await self._run_job(session, prepared, batch.operation, result)
        return result

    async def _move(self, target: SyncTarget, batch: Batch, result: BatchResult) -> Batch:
        """Records whose external_id changed (``Record.previous``): their Zendesk ids are read by the
        old external_ids (``show_many``), then one ``update_many`` job sets every field by id, the new
        external_id included. Zendesk refuses an external_id another record has ("External: … has
        already been taken"): the row is rejected with that reason, never merged. What is left of the
        batch, and records Zendesk does not have under the old external_id, are written as usual."""
        kind = target.object
        olds: dict[str, str] = {}
        for record in batch.records:
            old = identity_text((record.previous or {}).get("external_id"))
            new = identity_text(record.values.get("external_id"))
            if old and new and "," not in old and old.casefold() != new.casefold():
                olds[record.key] = old
        if not olds:
            return batch
        session = self.session()
        response = await session.request("GET", f"/api/v2/{kind}/show_many.json",
                                         params={"external_ids": ",".join(olds.values())})
        if not 200 <= response.status_code < 300:
            raise DestinationError(session.redact(f"{self.name}: GET /api/v2/{kind}/show_many answered "
                                                  f"{refusal(response)}; the batch is not confirmed"))
        found = {str(r.get("external_id") or "").casefold(): r.get("id") for r in _records(response, kind)}
        moving = [r for r in batch.records if found.get(olds.get(r.key, "").casefold()) is not None]
        if not moving:
            return batch
        prepared = _Prepared("PUT", f"/api/v2/{kind}/update_many.json")
        items: list[dict[str, Any]] = []
        for record in moving:
            item = _reject_on_error(result, record.key, lambda r=record: build_item(kind, r.values, "external_id"))
            if item is not None:
                prepared.keys.append(record.key)
                items.append({"id": found[olds[record.key].casefold()], **item})
        prepared.body = {kind: items}
        moved = BatchResult()
        if prepared.keys:
            await self._run_job(session, prepared, Operation.UPDATE, moved)
        result.ids.update(moved.ids)
        for key, reason in moved.rejected.items():
            result.rejected[key] = f"external_id changed from {olds[key]!r}: {reason}"
        done = {r.key for r in moving if r.key not in moved.skipped}
        return Batch(batch.operation, [r for r in batch.records if r.key not in done])

    async def _run_job(self, session: HttpSession, prepared: _Prepared, operation: Operation,
                       result: BatchResult) -> None:
        """Send one bulk request, poll its job, map its results into ``result``."""
        what = f"{self.name}: {prepared.method} {prepared.path}"
        response = await session.request(prepared.method, prepared.path, json=prepared.body, params=prepared.params)
        if 400 <= response.status_code < 500:
            # The whole request was refused (malformed, too many items): no record of it was written.
            result.rejected.update(dict.fromkeys(prepared.keys, session.redact(refusal(response))))
            return
        if not 200 <= response.status_code < 300:
            raise DestinationError(session.redact(f"{what} answered {refusal(response)}; the batch is not confirmed"))
        job = job_of(response, what)
        results = await wait_for(session, job, self.polling, what=what)
        read_results(results, prepared.keys, operation, result, what=what)

    async def _split_by_existence(self, session: HttpSession, prepared: _Prepared,
                                  result: BatchResult) -> list[_Prepared]:
        """Organizations upsert: ``show_many`` by external id, then the found ones for ``update_many`` and
        the others for ``create_many`` (Zendesk has no bulk create-or-update of organizations)."""
        items = prepared.items
        wanted = ",".join(str(item["external_id"]) for item in items)
        what = f"{self.name}: GET {SHOW_MANY}"
        response = await session.request("GET", SHOW_MANY, params={"external_ids": wanted})
        if 400 <= response.status_code < 500:
            result.rejected.update(dict.fromkeys(prepared.keys, session.redact(refusal(response))))
            return []
        if not 200 <= response.status_code < 300:
            raise DestinationError(session.redact(f"{what} answered {refusal(response)}; the batch is not confirmed"))
        found = found_external_ids(response, what)
        update = _Prepared("PUT", f"{ORGANIZATIONS}/update_many.json", body={"organizations": []})
        create = _Prepared("POST", f"{ORGANIZATIONS}/create_many.json", body={"organizations": []})
        for key, item in zip(prepared.keys, items, strict=True):
            part = update if str(item["external_id"]).casefold() in found else create
            part.keys.append(key)
            part.items.append(item)
        return [part for part in (update, create) if part.keys]

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        prepared = self._prepare(target, batch, BatchResult())
        if _upserts_organizations(target, batch.operation):
            return {"method": "GET", "url": self.base_url + SHOW_MANY,
                    "params": {"external_ids": ",".join(str(i["external_id"]) for i in prepared.items)},
                    "then": f"PUT {ORGANIZATIONS}/update_many.json with the organizations found, POST "
                            f"{ORGANIZATIONS}/create_many.json with the others; each job read at "
                            "GET /api/v2/job_statuses/{id}.json until it is completed",
                    "body": prepared.body}
        described: dict[str, Any] = {"method": prepared.method, "url": self.base_url + prepared.path}
        if prepared.params:
            described["params"] = prepared.params
        if prepared.body is not None:
            described["body"] = prepared.body
        described["then"] = "GET /api/v2/job_statuses/{id}.json until the job is completed"
        return described

    # -- requests ------------------------------------------------------------------------------

    def _prepare(self, target: SyncTarget, batch: Batch, result: BatchResult) -> _Prepared:
        """The request of ``batch``; records that cannot be sent go to ``result.rejected``."""
        kind, identity, operation = target.object, _identity(target), batch.operation
        if operation in (Operation.CREATE, Operation.APPEND):
            raise DestinationError(f"{self.name}: Zendesk syncs support upsert, update and mirror, not "
                                   f"{operation.value}")
        if identity == "email" and operation is not Operation.UPSERT:
            raise DestinationError(f"{self.name}: {operation.value} needs {kind} found by external_id, not email")
        base = f"/api/v2/{kind}"
        if operation is Operation.DELETE:
            prepared = _Prepared("DELETE", f"{base}/destroy_many.json")
            wanted: list[str] = []
            for record in batch.records:
                value = _reject_on_error(result, record.key, lambda r=record: identity_text(r.values.get(identity)))
                if value is None:
                    continue
                if not value or "," in value:
                    result.rejected[record.key] = (f"external_id {value!r} cannot be deleted through destroy_many"
                                                   if value else "identity field 'external_id' is empty")
                    continue
                prepared.keys.append(record.key)
                wanted.append(value)
            prepared.params = {"external_ids": ",".join(wanted)}
            return prepared
        upsert = operation is Operation.UPSERT
        method, endpoint = ("POST", "create_or_update_many") if upsert else ("PUT", "update_many")
        prepared = _Prepared(method, f"{base}/{endpoint}.json")
        items: list[dict[str, Any]] = []
        for record in batch.records:
            if operation is Operation.CLEAR:
                item = _reject_on_error(result, record.key, lambda r=record: clear_item(
                    kind, identity, r.values.get(identity), target.field_names))
            else:
                item = _reject_on_error(result, record.key, lambda r=record: build_item(kind, r.values, identity))
            if item is not None and _upserts_organizations(target, operation) and "," in item["external_id"]:
                # show_many takes a comma-separated list: such an external id cannot be looked up.
                result.rejected[record.key] = (f"external_id {item['external_id']!r} cannot be looked up through "
                                               "organizations/show_many (its external_ids are comma-separated)")
                continue
            if item is not None:
                prepared.keys.append(record.key)
                items.append(item)
        prepared.body = {kind: items}
        return prepared


def _upserts_organizations(target: SyncTarget, operation: Operation) -> bool:
    return target.object == "organizations" and operation is Operation.UPSERT


def _records(response: httpx.Response, kind: str) -> list[dict[str, Any]]:
    """The records of a ``show_many`` answer (``{"users": [...]}``)."""
    try:
        data = response.json()
    except ValueError:
        return []
    found = data.get(kind) if isinstance(data, dict) else None
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def _reject_on_error(result: BatchResult, key: str, build: Any) -> Any:
    try:
        return build()
    except FormatError as exc:
        result.rejected[key] = str(exc)
        return None


def _identity(target: SyncTarget) -> str:
    if len(target.identity) != 1:
        raise ConfigError(f"Zendesk finds a record by one field (external_id or email); this sync names "
                          f"{len(target.identity)} ({', '.join(target.identity)})",
                          location=f"{target.sync_name}: match")
    return target.identity[0]


def _base_url(name: str, config: Mapping[str, Any]) -> str:
    base_url = str(config.get("base_url") or "").rstrip("/")
    if base_url:
        return checked_base_url(name, base_url)
    subdomain = str(config.get("subdomain") or "").strip()
    found = _SUBDOMAIN.match(subdomain) if subdomain else None
    if found is None:
        raise ConfigError(f"give subdomain (acme for https://acme.zendesk.com) or base_url, got {subdomain!r}",
                          location=f"{name}.subdomain")
    return f"https://{found.group(1)}.zendesk.com"


def _authorization(name: str, config: Mapping[str, Any]) -> str:
    oauth = config.get("oauth_token")
    if oauth:
        return f"Bearer {oauth}"
    email, token = config.get("email"), config.get("api_token")
    if not (email and token):
        raise ConfigError("give email and api_token (API token authentication) or oauth_token", location=name)
    credential = base64.b64encode(f"{email}/token:{token}".encode()).decode("ascii")
    return f"Basic {credential}"
