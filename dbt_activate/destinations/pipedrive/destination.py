"""``pipedrive``: persons, organizations and deals through Pipedrive's v2 API.

Configuration (``destinations.yml``)::

    pipedrive:
      type: pipedrive
      api_token: "{{ env_var('PIPEDRIVE_API_TOKEN') }}"   # required; Settings > Personal preferences > API
      company_domain: acme              # -> https://acme.pipedrive.com (default https://api.pipedrive.com)
      base_url: http://127.0.0.1:8080   # instead of company_domain: an emulator or proxy (v1 at /v1)
      rate_limit: {requests: 20, per_seconds: 2}   # the default; raise it to your plan's burst limit
      max_concurrency: 2                # batches in flight
      timeout: 30                       # seconds per request

The default rate limit is Pipedrive's lowest documented burst limit for an ``api_token``, 20
requests per 2-second window (pipedrive.readme.io/docs/core-api-concepts-rate-limiting; Advanced,
Professional, Power and Enterprise plans allow 40, 80, 100 and 120). Searches are held to their own
documented 10 per 2 s as well. The daily token budget is not paced: when Pipedrive says it is spent
the sync stops with ``QuotaExhaustedError`` and the rows not sent wait for the next run.

A sync (``object: persons | organizations | deals``) maps model columns to Pipedrive field names:
v2 properties (``name``, ``email``, ``phone``, ``org_id``, ``title``, ``value``, ...) or the names of
custom fields as Pipedrive shows them, resolved to their 40-character keys from the v1 fields endpoint
when the sync opens (see ``pipedrive_fields``). ``match`` names the one field that finds a record
(``{email: email}`` for persons); the ids found are kept in the runner's ``RecordIdStore`` so each
record is searched for once, not once per run (see ``pipedrive_ids``).

There is no batch write in Pipedrive: a batch is one request per record, in flight together under
the rate limiter. Per operation: upsert PATCHes the record found, else POSTs; update PATCHes it, else
the row is skipped; create POSTs unless one is found (skipped); append always POSTs; delete DELETEs
the record found (nothing found is acknowledged); clear PATCHes the mapped non-match fields to empty
where Pipedrive has an empty value for them (``fields.NULLABLE``; the others keep their value).
A record Pipedrive refuses (4xx) is rejected with Pipedrive's message; the others are acknowledged.
A changed match value (``Record.previous``: a new email under the same primary key) PATCHes the
record found by the value last sent, with the new value, and files its id under the new one; if
another record already has the new value the row is rejected, never merged (``RecordIdCache.move``):
Pipedrive does not refuse two persons with one email (it lets duplicates be and merges them only
when asked: support.pipedrive.com/en/article/how-does-the-merge-duplicates-feature-identify-
duplicates-in-pipedrive), so the new value is searched first.
A NULL is left out of a PATCH/POST, so Pipedrive keeps the value (the sync's ``nulls: clear`` empties it,
with the same exceptions as clear).

A sync's ``references`` set ``org_id`` on persons and ``person_id``/``org_id`` on deals (``references``
below): the engine sends the parent's Pipedrive id there. Every write reports the id of each record it
wrote (``BatchResult.ids``), found or created, so the syncs that reference it can link to it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, Record, SyncTarget
from dbt_activate.destinations.api import ApiDestination, checked_base_url, searched_per_record
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.pipedrive.api import CONNECTIONS, PipedriveApi
from dbt_activate.destinations.pipedrive.fields import (
    ENTITIES,
    FIELDS_PATH,
    REQUIRED,
    FieldTarget,
    FormatError,
    build_body,
    clear_body,
    needs_definitions,
    resolve,
    standard_target,
)
from dbt_activate.destinations.pipedrive.ids import SINGULAR, RecordIds, search_spec, term
from dbt_activate.destinations.record_ids import MOVES, OK, Outcome, PerRecordWrites, RecordFailed
from dbt_activate.errors import ConfigError

DEFAULT_ORIGIN = "https://api.pipedrive.com"
_DOMAIN = re.compile(r"^(?:https?://)?([A-Za-z0-9][A-Za-z0-9-]*)(?:\.pipedrive\.com)?/?$")
_ENDPOINTS = searched_per_record({
    Operation.UPSERT: "POST or PATCH by match",
    Operation.UPDATE: "PATCH by match (skipped when not found)",
    Operation.CREATE: "POST (skipped when found by match)",
    Operation.APPEND: "POST",
    Operation.DELETE: "DELETE by match (acknowledged when not found)",
    Operation.CLEAR: "PATCH by match, mapped fields that Pipedrive lets be empty set to empty",
})


class PipedriveDestination(ApiDestination):
    kind = "pipedrive"
    null_handling = Nulls.OMIT
    description = "Pipedrive persons, organizations and deals (v2 API; records found by a match field)."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("api_token", str, required=True, secret=True, help="Pipedrive API token (x-api-token)."),
        ConfigKey("company_domain", str, help="Company subdomain: acme -> https://acme.pipedrive.com."),
        ConfigKey("base_url", str, help="API origin instead of company_domain (tests, proxies); v1 at /v1."),
    )
    objects = ENTITIES
    batch_size = 50
    max_concurrency = 2
    rate_limit = RateLimit(20, 2.0)
    uses_id_store = True
    endpoints = _ENDPOINTS
    # Links are fields holding the parent's id (openapi-v2.yaml: Person org_id; Deal person_id, org_id).
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {
        "persons": {"org_id": "organizations"},
        "deals": {"person_id": "persons", "org_id": "organizations"},
    }

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.origin, self.v1_prefix = _endpoints(name, config)
        self._api: PipedriveApi | None = None
        self._targets: dict[str, FieldTarget] | None = None
        self._ids: RecordIds | None = None
        self._writes = PerRecordWrites()
        self._written: dict[str, str] = {}  # record key -> id of the record written (BatchResult.ids)

    def check_target(self, target: SyncTarget) -> None:
        where = f"{target.sync_name}: object"
        if target.object not in ENTITIES:
            raise ConfigError(f"Pipedrive object {target.object!r} is not supported (use {', '.join(ENTITIES)})",
                              location=where)
        if target.mode is not Mode.APPEND and len(target.identity) != 1:
            raise ConfigError(f"Pipedrive finds a record by one field; match names {len(target.identity)} "
                              f"({', '.join(target.identity)})", location=f"{target.sync_name}: match")

    async def open(self, target: SyncTarget) -> None:
        self.check_target(target)
        api = self._api_for_run()
        entity, names = target.object, list(target.field_names)
        where = f"{target.sync_name}: fields"
        # Append never finds records, so a primary key that is no Pipedrive field is simply not sent.
        optional = target.identity if target.mode is Mode.APPEND else ()
        definitions = await api.fields(FIELDS_PATH[entity]) if needs_definitions(entity, names) else []
        targets = resolve(entity, names, definitions, where=where, optional=optional)
        creates = target.mode is not Mode.UPDATE
        if creates and not any(t.prop == REQUIRED[entity] and not t.custom for t in targets.values()):
            raise ConfigError(f"Pipedrive needs {entity} to have a {REQUIRED[entity]!r} to create them: map a "
                              f"column to {REQUIRED[entity]!r} (mode {target.mode.value} creates records)",
                              location=where)
        self._targets = targets
        if target.mode is not Mode.APPEND:
            match = targets[target.identity[0]]
            spec = search_spec(entity, match, where=f"{target.sync_name}: match")
            self._ids = RecordIds(entity, match, spec, self.record_id_store(), api)

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if self._targets is None:
            await self.open(target)
        ids, operation = self._ids, batch.operation
        appending = operation is Operation.APPEND
        result = await self._writes.write(batch, lambda r: self._one(target, operation, r),
                                          None if appending else ids, lambda r: self._term(target, r))
        for record in batch.records:
            record_id = self._written.pop(record.key, None)
            if record_id is not None and record.key not in result.rejected and record.key not in result.skipped:
                result.ids[record.key] = record_id
        return result

    async def close(self) -> None:
        self._targets, self._ids, self._api = None, None, None  # a later write opens again, with a new client
        await super().close()

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        targets = self._targets or _preview_targets(target)
        requests: list[dict[str, Any]] = []
        for record in batch.records:
            request: dict[str, Any] = {"key": record.key, "method": self.endpoints[batch.operation].request}
            if batch.operation is not Operation.APPEND and target.identity:
                request["match"] = {target.identity[0]: term(record.values.get(target.identity[0]))}
            try:
                request["body"] = self._body(target, batch.operation, record, targets)
            except FormatError as exc:
                request["rejected"] = str(exc)
            requests.append(request)
        return {"object": target.object, "path": f"/api/v2/{target.object}", "operation": batch.operation.value,
                "requests": requests}

    # -- one record -----------------------------------------------------------------------------

    async def _one(self, target: SyncTarget, operation: Operation, record: Record) -> Outcome:
        assert self._targets is not None
        try:
            body = self._body(target, operation, record, self._targets)
            api = self._api_for_run()
            if operation is Operation.APPEND:
                created = await api.create(target.object, body)
                if created is not None:
                    self._written[record.key] = created
                return OK
            assert self._ids is not None
            wanted = self._term(target, record)
            if not wanted:
                return ("rejected", f"match field {target.identity[0]!r} is empty: the Pipedrive "
                                    f"{target.object} cannot be found")
            key = self._ids.key(wanted)
            old = self._term(target, record.as_previous()) if operation in MOVES and record.previous else ""
            moving = bool(old) and old.casefold() != wanted.casefold()
            old_key = self._ids.key(old) if moving else key
            async with self._ids.locked(key, old_key):
                outcome: Outcome | None = None
                if moving:
                    update = functools.partial(self._on_existing, Operation.UPDATE, target.object, body=body)
                    outcome = await self._ids.move((old_key, old), (key, wanted), update,
                                                   f"Pipedrive {SINGULAR[target.object]}")
                if outcome is None:
                    outcome = await self._apply(target, operation, key, wanted, body)
                if outcome == OK and (record_id := self._ids.known(key)) is not None:
                    self._written[record.key] = record_id
                return outcome
        except (FormatError, RecordFailed) as exc:
            return ("rejected", str(exc))

    async def _apply(self, target: SyncTarget, operation: Operation, key: str, wanted: str,
                     body: dict[str, Any]) -> Outcome:
        ids, api, entity = self._ids, self._api_for_run(), target.object
        assert ids is not None

        async def create() -> tuple[str | None, Outcome]:
            return await api.create(entity, body), OK

        return await ids.write(operation, key, wanted, create=create,
                               on_existing=functools.partial(self._on_existing, operation, entity, body=body),
                               one=f"a Pipedrive {SINGULAR[entity]}", none=f"no Pipedrive {SINGULAR[entity]}")

    async def _on_existing(self, operation: Operation, entity: str, record_id: str, body: dict[str, Any]) -> bool:
        """DELETE or PATCH the record; False when Pipedrive no longer has it."""
        api = self._api_for_run()
        if operation is Operation.DELETE:
            return await api.delete(entity, record_id)
        return not body or await api.update(entity, record_id, body)

    def _body(self, target: SyncTarget, operation: Operation, record: Record,
              targets: Mapping[str, FieldTarget]) -> dict[str, Any]:
        if operation is Operation.DELETE:
            return {}
        if operation is Operation.CLEAR:
            identity = set(target.identity)
            return clear_body(target.object, (t for n, t in targets.items() if n not in identity))
        return build_body(targets, record.values)

    def _term(self, target: SyncTarget, record: Record) -> str:
        return term(record.values.get(target.identity[0])) if target.identity else ""

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return _endpoints(name, config)[0]

    def session_headers(self) -> Mapping[str, str]:
        return {"x-api-token": self.settings.text("api_token"), "Accept": "application/json"}

    def session_options(self) -> Mapping[str, Any]:
        return {"max_connections": CONNECTIONS, "response_hook": self._inspect}

    def _api_for_run(self) -> PipedriveApi:
        if self._api is None:
            self._api = PipedriveApi(self.name, self.session(), self.v1_prefix)
        return self._api

    def _inspect(self, response: httpx.Response) -> None:
        self._api_for_run().inspect(response)


def _endpoints(name: str, config: Mapping[str, Any]) -> tuple[str, str]:
    """(origin, v1 prefix): api.pipedrive.com serves v1 at /v1, a company domain at /api/v1."""
    base_url = str(config.get("base_url") or "").rstrip("/")
    if base_url:
        return checked_base_url(name, base_url), "/v1"
    domain = str(config.get("company_domain") or "").strip()
    if not domain:
        return DEFAULT_ORIGIN, "/v1"
    found = _DOMAIN.match(domain)
    if found is None:
        raise ConfigError(f"company_domain must be the subdomain of <name>.pipedrive.com, got {domain!r}",
                          location=f"{name}.company_domain")
    return f"https://{found.group(1)}.pipedrive.com", "/api/v1"


def _preview_targets(target: SyncTarget) -> dict[str, FieldTarget]:
    """Field targets without the network, for ``plan``: custom fields shown under their names."""
    entity = target.object if target.object in ENTITIES else "persons"
    previews: dict[str, FieldTarget] = {}
    for name in target.field_names:
        found = standard_target(entity, name)
        if found is None and target.mode is Mode.APPEND and name in target.identity:
            continue  # as open() does: append does not send a primary key Pipedrive has no field for
        previews[name] = found or FieldTarget(name, name, "json", custom=True)
    return previews
