"""``intercom``: Intercom contacts (users or leads), one request per record.

Configuration (``destinations.yml``)::

    intercom:
      type: intercom
      access_token: "{{ env_var('INTERCOM_TOKEN') }}"   # required; app access token
      region: us                        # us (default) | eu | au -> api[.eu|.au].intercom.io
      base_url: http://127.0.0.1:8080   # instead of region: an emulator or proxy
      intercom_version: "2.14"          # the Intercom-Version header (default 2.14)
      role: user                        # user (default) | lead: the contacts this destination writes
      delete_action: delete             # delete (default) | archive: what mirror does to contacts that left
      rate_limit: {requests: 1666, per_seconds: 10}   # the default

The default rate limit is Intercom's 10,000 calls per minute per app, which Intercom spreads over
10-second windows (1,666 per 10 s; developers.intercom.com/docs/references/2.17/rest-api/errors/
rate-limiting; a workspace has 25,000/min across its apps). A 429 is retried after
``X-RateLimit-Reset``.

A sync's ``object`` is ``contacts``. ``match`` names one field that finds a contact:
``external_id`` or ``email``. Mapped fields named like a standard attribute (``email``, ``name``,
``phone``, ``signed_up_at``, ``last_seen_at``, ``owner_id``, ``avatar``, ``unsubscribed_from_emails``)
are sent as such; every other field is a custom data attribute (``intercom_format``), which must
exist in Intercom. Intercom has no batch write (contracts SUMMARY §6): a batch is one request per
record (plus a search the first time a record is seen; ids are kept in the runner's
``RecordIdStore``, ``intercom_ids``), in flight together under the rate limiter. Per operation:
upsert PUTs the contact found, else POSTs (a 409 naming an existing contact, e.g. one not yet
searchable, turns into a PUT to it); update PUTs it, else the row is skipped; create POSTs unless
one is found (skipped); delete DELETEs (or archives) the contact found (nothing found is
acknowledged); clear PUTs the mapped attributes as null. A record Intercom refuses (4xx
``error.list``) is rejected with Intercom's ``code: message``; the others are acknowledged.
A NULL is left out of the PUT/POST, so Intercom keeps the value (the sync's ``nulls: clear`` sends null).

**Companies and references.** A sync with ``object: companies`` (``match`` on ``company_id``, mode
``upsert`` or ``mirror``) writes Intercom companies (``POST /companies``, create or update by
``company_id``) and reports their ids; a contacts sync's ``references`` with ``as: company`` attaches
each contact to its company and detaches it from any other (a NULL detaches it from all), after the
contact is written (``intercom_companies``). A contacts field named ``company`` is that reference,
never a custom attribute.

A changed match value (``Record.previous``: a new email or external_id under the same primary key)
PUTs the contact found by the value last sent (its stored id, else a search), with the new value,
and files its id under the new one (``RecordIdCache.move``). A user whose new value another user
already has is refused by Intercom (409 ``conflict``, "A contact matching those details already
exists", github.com/intercom/Intercom-OpenAPI/pull/543); leads are not unique, so the new value is
searched first and a contact that has it rejects the row either way, never merged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, Record, SyncTarget
from dbt_activate.destinations.api import ApiDestination, checked_base_url, one_of, searched_per_record
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.intercom.api import CONNECTIONS, Conflict, IntercomApi
from dbt_activate.destinations.intercom.companies import IDENTITY as COMPANY_IDENTITY
from dbt_activate.destinations.intercom.companies import (
    LINK,
    RELATIONSHIPS,
    attach,
    company_body,
    delete_company,
    upsert_company,
)
from dbt_activate.destinations.intercom.ids import ContactIds
from dbt_activate.destinations.intercom.payload import IDENTITIES, FormatError, build_body, clear_body, identity_text
from dbt_activate.destinations.record_ids import MOVES, OK, Outcome, PerRecordWrites, RecordFailed
from dbt_activate.errors import ConfigError, DestinationError

REGIONS = {"us": "https://api.intercom.io", "eu": "https://api.eu.intercom.io", "au": "https://api.au.intercom.io"}
ROLES = ("user", "lead")
DELETE_ACTIONS = ("delete", "archive")

_ENDPOINTS = searched_per_record({
    Operation.UPSERT: "PUT /contacts/{id} of the contact found by match, else POST /contacts",
    Operation.UPDATE: "PUT /contacts/{id} of the contact found by match (skipped when not found)",
    Operation.CREATE: "POST /contacts (skipped when one is found by match)",
    Operation.DELETE: "DELETE /contacts/{id} (or POST /contacts/{id}/archive) of the contact found",
    Operation.CLEAR: "PUT /contacts/{id} with the mapped attributes null",
})


class IntercomDestination(ApiDestination):
    kind = "intercom"
    null_handling = Nulls.OMIT
    description = ("Intercom contacts (users or leads), found by external_id or email, and companies by company_id; "
                   "one request per record.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("access_token", str, required=True, secret=True, help="Intercom access token (Bearer)."),
        ConfigKey("region", str, default="us", help="Data hosting region: us, eu or au."),
        ConfigKey("base_url", str, help="API origin instead of region (an emulator in tests, a proxy)."),
        ConfigKey("intercom_version", str, default="2.14", help="API version sent as the Intercom-Version header."),
        ConfigKey("role", str, default="user", help="Role of the contacts written and searched: user or lead."),
        ConfigKey("delete_action", str, default="delete",
                  help="What mirror does to contacts that left the model: delete or archive."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "rate_limit": " (10,000/min per app).",
    }
    modes = frozenset({Mode.UPSERT, Mode.UPDATE, Mode.CREATE, Mode.MIRROR})
    objects = ("contacts", "companies")
    references: ClassVar[Mapping[str, Mapping[str, str]]] = RELATIONSHIPS  # contacts -> companies (companies.py)
    batch_size = 50
    max_concurrency = 2
    rate_limit = RateLimit(1666, 10.0)
    uses_id_store = True
    endpoints = _ENDPOINTS

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.role = one_of(name, "role", self.settings.text("role"), ROLES)
        self.archive = one_of(name, "delete_action", self.settings.text("delete_action"), DELETE_ACTIONS) == "archive"
        self._api: IntercomApi | None = None
        self._ids: ContactIds | None = None
        self._writes = PerRecordWrites()

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        if config.get("base_url"):
            return checked_base_url(name, str(config["base_url"]))
        return REGIONS[one_of(name, "region", str(config.get("region") or "us"), tuple(REGIONS))]

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.settings.text('access_token')}",
                "Intercom-Version": self.settings.text("intercom_version"), "Accept": "application/json"}

    def session_options(self) -> Mapping[str, Any]:
        return {"max_connections": CONNECTIONS, "response_hook": self._inspect}

    def check_target(self, target: SyncTarget) -> None:
        if target.object == "companies":
            if tuple(target.identity) != (COMPANY_IDENTITY,):
                raise ConfigError("Intercom finds a company by company_id; set "
                                  f"`match: {{column: {COMPANY_IDENTITY}}}`", location=f"{target.sync_name}: match")
            if target.mode not in (Mode.UPSERT, Mode.MIRROR):
                raise ConfigError("Intercom companies are written by create-or-update (POST /companies): use mode "
                                  "upsert or mirror", location=f"{target.sync_name}: mode")
            return
        if target.object != "contacts":
            raise ConfigError(f"Intercom object {target.object!r} is not supported (use contacts or companies)",
                              location=f"{target.sync_name}: object")
        if len(target.identity) != 1 or target.identity[0] not in IDENTITIES:
            raise ConfigError(f"Intercom finds a contact by external_id or email; this sync matches on "
                              f"{', '.join(target.identity) or 'nothing'}: set `match: {{column: external_id}}`",
                              location=f"{target.sync_name}: match")
        if self.role == "lead" and target.identity[0] == "external_id":
            raise ConfigError("Intercom leads have no external_id: match leads on email",
                              location=f"{target.sync_name}: match")

    async def open(self, target: SyncTarget) -> None:
        self.check_target(target)
        self._ids = ContactIds(target.identity[0], self.role, self.record_id_store(), self._api_for_run())

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if target.object == "companies":
            return await self._write_companies(target, batch)
        if self._ids is None:
            await self.open(target)
        ids, operation = self._ids, batch.operation
        assert ids is not None
        if operation is Operation.APPEND:
            raise DestinationError(f"{self.name}: Intercom contacts cannot be appended; use upsert or create")
        return await self._writes.write(batch, lambda r: self._one(target, operation, r), ids,
                                        lambda r: self._term(target, r))

    async def _write_companies(self, target: SyncTarget, batch: Batch) -> BatchResult:
        """One ``POST /companies`` (or a find and ``DELETE``) per record; the ids written are reported."""
        self.check_target(target)
        if batch.operation not in (Operation.UPSERT, Operation.DELETE):
            raise DestinationError(f"{self.name}: Intercom companies cannot be written by {batch.operation.value}")
        api, written = self._api_for_run(), dict[str, str]()

        async def one(record: Record) -> Outcome:
            try:
                if batch.operation is Operation.DELETE:
                    await delete_company(api, record.values)
                else:
                    written[record.key] = await upsert_company(api, record.values)
            except (FormatError, RecordFailed) as exc:
                return ("rejected", str(exc))
            return OK

        result = await self._writes.write(batch, one)
        result.ids.update({k: v for k, v in written.items() if k not in result.rejected})
        return result

    async def close(self) -> None:
        self._ids, self._api = None, None
        await super().close()

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        requests: list[dict[str, Any]] = []
        identity = target.identity[0] if target.identity else "external_id"
        for record in batch.records:
            request: dict[str, Any] = {"key": record.key, "method": self._planned(batch.operation)}
            request["match"] = {identity: identity_text(record.values.get(identity))}
            try:
                request["body"] = self._body(target, batch.operation, record)
            except FormatError as exc:
                request["rejected"] = str(exc)
            requests.append(request)
        return {"url": self.base_url + "/contacts", "operation": batch.operation.value, "requests": requests}

    # -- one record -----------------------------------------------------------------------------

    async def _one(self, target: SyncTarget, operation: Operation, record: Record) -> Outcome:
        ids = self._ids
        assert ids is not None
        try:
            body = self._body(target, operation, record)
            wanted = self._term(target, record)
            if not wanted:
                return ("rejected", f"match field {target.identity[0]!r} is empty: the Intercom contact "
                                    "cannot be found")
            key = ids.key(wanted)
            old = self._term(target, record.as_previous()) if operation in MOVES and record.previous else ""
            old_key = ids.key(old) if old else key
            async with ids.locked(key, old_key):
                if old_key != key:
                    update = functools.partial(self._api_for_run().update, body=body)
                    moved = await ids.move((old_key, old), (key, wanted), update, f"Intercom contact ({self.role})")
                    if moved is not None:
                        return await self._attach(target, operation, record, key, moved)
                return await self._attach(target, operation, record, key,
                                          await self._apply(operation, key, wanted, body))
        except (FormatError, RecordFailed) as exc:
            return ("rejected", str(exc))

    async def _apply(self, operation: Operation, key: str, wanted: str, body: dict[str, Any]) -> Outcome:
        ids, api = self._ids, self._api_for_run()
        assert ids is not None

        async def on_existing(contact_id: str) -> bool:
            """DELETE (or archive) or update the contact; False when Intercom no longer has it."""
            if operation is Operation.DELETE:
                return await api.delete(contact_id, archive=self.archive)
            return not body or await api.update(contact_id, body)

        async def create() -> tuple[str | None, Outcome]:
            try:
                return await api.create(body), OK
            except Conflict as exc:
                if operation is Operation.CREATE:
                    return None, ("skipped", f"an Intercom contact with {ids.describe(wanted)} exists ({exc})")
                if exc.existing is None:
                    raise
                # Created earlier but not searchable yet, or archived by an earlier mirror: update the
                # contact Intercom named (back from the archive first, when this destination archives).
                if self.archive and not await api.unarchive(exc.existing):
                    raise
                if not await api.update(exc.existing, body):
                    raise
                return exc.existing, OK

        return await ids.write(operation, key, wanted, on_existing=on_existing, create=create,
                               one="an Intercom contact", none="no Intercom contact")

    async def _attach(self, target: SyncTarget, operation: Operation, record: Record, key: str,
                      outcome: Outcome) -> Outcome:
        """A written contact with a ``company`` reference: attached to that company only (companies.py)."""
        ids = self._ids
        if (outcome != OK or operation not in (*MOVES, Operation.CREATE) or LINK not in target.references
                or LINK not in record.values or ids is None):
            return outcome
        contact_id = ids.known(key)
        if contact_id is None:
            return outcome
        wanted = record.values[LINK]
        await attach(self._api_for_run(), contact_id, None if wanted is None else str(wanted))
        return outcome

    def _body(self, target: SyncTarget, operation: Operation, record: Record) -> dict[str, Any]:
        if operation is Operation.DELETE:
            return {}
        if target.object == "companies":
            return company_body(record.values)
        if operation is Operation.CLEAR:
            return clear_body([f for f in target.field_names if f not in target.references], target.identity[0])
        # A `company` reference is an attachment, not an attribute: applied after the write.
        return build_body({k: v for k, v in record.values.items() if k not in target.references}, target.identity[0],
                          self.role)

    def _term(self, target: SyncTarget, record: Record) -> str:
        return identity_text(record.values.get(target.identity[0])) if target.identity else ""

    def _planned(self, operation: Operation) -> str:
        endpoint = self.endpoints.get(operation)
        return endpoint.request if endpoint is not None else ""

    def _api_for_run(self) -> IntercomApi:
        if self._api is None:
            self._api = IntercomApi(self.name, self.session())
        return self._api

    def _inspect(self, response: httpx.Response) -> None:
        self._api_for_run().inspect(response)
