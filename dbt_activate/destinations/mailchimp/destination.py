"""``mailchimp``: audience (list) members through the Marketing API 3.0.

Configuration (``destinations.yml``)::

    newsletter:
      type: mailchimp
      api_key: "{{ env_var('MAILCHIMP_API_KEY') }}"   # required; "…-us6": the suffix is the data center
      base_url: https://us6.api.mailchimp.com          # default: from the key's suffix
      status: subscribed                               # status of NEW members (default); never changes existing ones
      sync_tags: false                                 # true: a row's tags replace the member's tags
      batch_size: 500                                  # 1-500, Mailchimp's batch maximum (default)
      max_concurrency: 10                              # 1-10: Mailchimp allows 10 connections per key

A sync's ``object`` is the audience id (``a1b2c3d4e5``). Its identity (``match``, else the primary
key) is one field holding the e-mail address: it becomes ``email_address``, and its MD5 (lower-cased)
the member's URL (contracts SUMMARY §5; mailchimp.com/developer/marketing/api/list-members).
Every other mapped field is a merge field, its name upper-cased as Mailchimp's merge tags are
(``FNAME``), except ``tags`` (a list of tag names, or comma-separated text), ``status`` (the
member's status, overriding the ``status`` setting), and ``email_type``, ``language`` and ``vip``,
which are member attributes.

Consent: the ``status`` setting is given to NEW members only. An existing member's status (above
all ``unsubscribed``) is never changed unless the sync maps a ``status`` column, whose non-NULL
value is then applied to that member. Batch subscribe with ``update_existing: true`` would apply
the sent ``status`` to existing members too ("Whether this batch operation will change existing
members' subscription status", the field's description in Mailchimp's API schema) and re-subscribe
people who unsubscribed, so it is never used; batch subscribe has no ``status_if_new``. Instead:

=========  ==============================================================================
upsert     1. ``POST /3.0/lists/{id}`` ``{"members": [...], "update_existing": false}`` (500 at
           most) adds the new members with their status. 2. Each member it reports as existing
           (``ERROR_CONTACT_EXISTS``) is updated with ``PUT /3.0/lists/{id}/members/{hash}``
           carrying ``status_if_new`` and no ``status`` (unless mapped): "add or update list
           member", which keeps an existing member's status (mailchimp.com/developer/marketing/api/
           list-members/add-or-update-list-member). That body has no ``tags``, so mapped tags go
           through ``POST …/members/{hash}/tags`` (active; with ``sync_tags`` the member's other
           tags, as the PUT answer lists them, inactive)
create     step 1 only; a member that already exists comes back as skipped
delete     ``DELETE /3.0/lists/{id}/members/{hash}`` per record, which archives the member
           (``mirror``); a member already gone (404) is acknowledged
clear      ``PATCH /3.0/lists/{id}/members/{hash}`` with ``""`` for every mapped merge field; a
           member already gone is acknowledged
=========  ==============================================================================

Values: text as is, numbers as JSON numbers, dates ``YYYY-MM-DD`` (the API format of date merge
fields), timestamps ISO 8601, booleans ``"true"``/``"false"``; a NULL is not sent (Mailchimp keeps
the value; the sync's ``nulls: clear`` sends ``""`` for a merge field). A record with NaN,
±Infinity, an empty address or the address of another record of the same batch is rejected before
sending.

Results (``mailchimp_results``): Mailchimp answers the batch ``200`` even when members were refused, listing them in
``errors[{email_address, error, error_code}]``; each becomes that record's rejection (matched by
address). A 4xx for the whole request rejects every record with Mailchimp's problem ``title:
detail``. 429 (Mailchimp sends no Retry-After), 5xx and dropped connections are retried by the
engine; ``max_concurrency`` bounds the connections so the 10-connection limit is not hit.

A changed address (``Record.previous``: a new email under the same primary key) first PATCHes the
member at the old address's subscriber hash with the new ``email_address`` (Mailchimp's member id is
the hash of the address, so it changes too; no id needs storing), then the batch writes every field
by the new address. An address another member of the audience has, archived ones included, is
refused by Mailchimp (400, '"…" is already in this list'): the row is rejected with that reason and
the two members are never merged.

Idempotency: every operation addresses members by e-mail, so a retried batch writes the same
values again.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, HttpSession, UnencodableValue, to_json_value
from dbt_activate.destinations.api import ApiDestination, await_all, checked_base_url, single_identity
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.mailchimp.results import read_batch_response, read_member_response, read_put_response
from dbt_activate.errors import ConfigError

MAX_BATCH = 500
MAX_CONNECTIONS = 10
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
MEMBER_ATTRIBUTES = ("email_type", "language", "vip")


class MailchimpDestination(ApiDestination):
    kind = "mailchimp"
    null_handling = Nulls.OMIT
    description = ("Mailchimp audience members: batch subscribe/update (500 per request), merge fields and tags; "
                   "mirror archives members.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("api_key", str, required=True, secret=True,
                  help="Marketing API key; its suffix after '-' (us6) is the data center of the account."),
        ConfigKey("base_url", str,
                  help="API origin; default https://<dc>.api.mailchimp.com from the api_key suffix. Point it at "
                       "a local emulator in tests."),
        ConfigKey("status", str, default="subscribed",
                  help=f"Status given to NEW members: {', '.join(STATUSES)}. An existing member's status (an "
                       "unsubscribe above all) is never changed; map a `status` column to set it per row."),
        ConfigKey("sync_tags", bool, default=False,
                  help="true: a row's tags replace the member's tags; false (default): they are added."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Members per request, 1-{MAX_BATCH} (Mailchimp's maximum, the default).",
        "max_concurrency": f"Requests in flight at once, 1-{MAX_CONNECTIONS}: Mailchimp allows {MAX_CONNECTIONS} "
                           "simultaneous connections per API key (there is no request quota).",
        "rate_limit": "none by default: Mailchimp limits connections, not requests.",
        "timeout": "Seconds to wait for each response; Mailchimp gives up on a request after 120 s.",
    }
    modes = frozenset({Mode.UPSERT, Mode.CREATE, Mode.MIRROR})
    max_batch_size = MAX_BATCH
    batch_limit = "Mailchimp's batch maximum"
    default_timeout = 120.0
    batch_size = MAX_BATCH
    max_concurrency = MAX_CONNECTIONS
    rate_limit = None
    objects = ()  # an audience id

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        concurrency = config.get("max_concurrency")
        if concurrency is not None and not (isinstance(concurrency, int) and 1 <= concurrency <= MAX_CONNECTIONS):
            raise ConfigError(f"max_concurrency must be between 1 and {MAX_CONNECTIONS} (Mailchimp allows "
                              f"{MAX_CONNECTIONS} simultaneous connections per API key), got {concurrency!r}",
                              location=f"{name}.max_concurrency")
        self.status = self.settings.text("status")
        if self.status not in STATUSES:
            raise ConfigError(f"status must be one of {', '.join(STATUSES)}, got {self.status!r}",
                              location=f"{name}.status")

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        return base_url_for(name, config)

    def check_target(self, target: SyncTarget) -> None:
        _email_field(target)
        if not target.object.strip() or "/" in target.object:
            raise ConfigError(f"object {target.object!r} is not a Mailchimp audience id (e.g. a1b2c3d4e5)",
                              location=f"sync {target.sync_name}")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        members = self._members(target, batch, result)
        if not members:
            return result
        session = self.session()
        if batch.operation in (Operation.DELETE, Operation.CLEAR):
            await self._per_member(session, target, batch.operation, members, result)
            return result
        if batch.operation is Operation.UPSERT:
            await self._move(session, target, batch, result)
            members = {k: m for k, m in members.items() if k not in result.rejected}
            if not members:
                return result
        body = self._batch_body(list(members.values()))
        response = await session.request("POST", self._list_path(target), content=_encode(body), headers=JSON_HEADERS)
        existing = read_batch_response(self.name, response, members, result, self.redactor)
        if batch.operation is Operation.CREATE:
            result.skipped.update(existing)
        elif existing:
            await self._per_member(session, target, batch.operation,
                                   {key: members[key] for key in existing}, result)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        members = self._members(target, batch, BatchResult())
        if batch.operation in (Operation.DELETE, Operation.CLEAR):
            method = "DELETE" if batch.operation is Operation.DELETE else "PATCH"
            return {"requests": [{"method": method, "url": self.base_url + self._member_path(target, m),
                                  **({"body": _clear_body(m)} if method == "PATCH" else {})}
                                 for m in members.values()]}
        described: dict[str, Any] = {"method": "POST", "url": self.base_url + self._list_path(target),
                                     "body": self._batch_body(list(members.values()))}
        if batch.operation is Operation.UPSERT:
            described["then"] = ("PUT /3.0/lists/{id}/members/{hash} with status_if_new (an existing member's status "
                                 "is kept) for each member Mailchimp reports as existing, and POST …/tags when "
                                 "tags are mapped")
        return described

    # -- requests ------------------------------------------------------------------------------

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": "Basic " + self._credential}

    def session_options(self) -> Mapping[str, Any]:
        return {"secrets": [*self.secrets(), self._credential]}

    @property
    def _credential(self) -> str:
        return _b64(f"dbt-activate:{self.settings.text('api_key')}")

    def _list_path(self, target: SyncTarget) -> str:
        return f"/3.0/lists/{quote(target.object, safe='')}"

    def _member_path(self, target: SyncTarget, member: Mapping[str, Any]) -> str:
        return f"{self._list_path(target)}/members/{subscriber_hash(str(member['email_address']))}"

    def _batch_body(self, members: list[dict[str, Any]]) -> dict[str, Any]:
        """Batch subscribe of NEW members only: ``update_existing: false`` never touches an existing one
        (its status above all); each new member gets the configured status unless the row maps one."""
        return {"members": [{**m, "status": m.get("status", self.status)} for m in members],
                "update_existing": False}

    def _members(self, target: SyncTarget, batch: Batch, result: BatchResult) -> dict[str, dict[str, Any]]:
        """Each sendable record's member object, by record key; the others go to ``result``."""
        email_field = _email_field(target, during_write=True)
        clearing = batch.operation is Operation.CLEAR
        seen: dict[str, str] = {}
        members: dict[str, dict[str, Any]] = {}
        for record in batch.records:
            try:
                member = member_for(record, email_field, target.field_names if clearing else None)
                earlier = seen.setdefault(str(member["email_address"]).lower(), record.key)
                if earlier != record.key:
                    raise UnencodableValue(f"record {earlier!r} of the same batch has the same address "
                                           f"{member['email_address']!r}")
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            members[record.key] = member
        return members

    async def _move(self, session: HttpSession, target: SyncTarget, batch: Batch, result: BatchResult) -> None:
        """Members whose address changed (``Record.previous``): ``PATCH`` the member at the old address's
        subscriber hash with the new ``email_address`` (its hash changes with it), before the batch
        writes every field by the new address. A member Mailchimp does not have at the old address
        (404) is simply written by the new one; an address another member has is refused (400) and
        rejects the row with Mailchimp's reason, never merged."""
        email_field = _email_field(target, during_write=True)
        gate = asyncio.Semaphore(max(1, self.effective_concurrency))

        async def one(record: Record, old: str, new: str) -> None:
            path = f"{self._list_path(target)}/members/{subscriber_hash(old)}"
            async with gate:
                response = await session.request("PATCH", path, content=_encode({"email_address": new}),
                                                 headers=JSON_HEADERS)
            refused = BatchResult()
            read_member_response(self.name, response, record.key, refused, self.redactor)
            if record.key in refused.rejected:
                result.rejected[record.key] = (f"{email_field} changed from {old!r} to {new!r}: "
                                               f"{refused.rejected[record.key]}")

        moves = [(r, _address(r.previous or {}, email_field), _address(r.values, email_field))
                 for r in batch.records if r.previous is not None and r.key not in result.rejected]
        await await_all([one(r, old, new) for r, old, new in moves
                    if old and new and subscriber_hash(old) != subscriber_hash(new)])

    async def _per_member(self, session: HttpSession, target: SyncTarget, operation: Operation,
                          members: Mapping[str, dict[str, Any]], result: BatchResult) -> None:
        """DELETE (archive), PATCH (clear) or, for UPSERT, PUT (update an existing member keeping its
        status) each member, ``max_concurrency`` at a time."""
        gate = asyncio.Semaphore(max(1, self.effective_concurrency))

        async def one(key: str, member: dict[str, Any]) -> None:
            path = self._member_path(target, member)
            async with gate:
                if operation is Operation.UPSERT:
                    await self._update_existing(session, path, key, member, result)
                    return
                if operation is Operation.DELETE:
                    response = await session.request("DELETE", path)
                else:
                    response = await session.request("PATCH", path, content=_encode(_clear_body(member)),
                                                     headers=JSON_HEADERS)
            read_member_response(self.name, response, key, result, self.redactor)

        await await_all([one(k, m) for k, m in members.items()])

    async def _update_existing(self, session: HttpSession, path: str, key: str, member: Mapping[str, Any],
                               result: BatchResult) -> None:
        """PUT one member that exists, ``status_if_new`` and no ``status`` (unless mapped), then its tags."""
        response = await session.request("PUT", path, content=_encode(self._put_body(member)), headers=JSON_HEADERS)
        stored = read_put_response(self.name, response, key, result, self.redactor)
        if stored is None or "tags" not in member:
            return
        tags = tag_changes(member["tags"], stored.get("tags"), sync=self.settings.flag("sync_tags"))
        if tags:
            response = await session.request("POST", path + "/tags", content=_encode({"tags": tags}),
                                             headers=JSON_HEADERS)
            read_member_response(self.name, response, key, result, self.redactor, missing_is_error=True)

    def _put_body(self, member: Mapping[str, Any]) -> dict[str, Any]:
        """``PUT …/members/{hash}``: ``status_if_new`` applies only if the member is gone meanwhile; ``status``
        only when the row maps one. Tags are not part of this body (they have their own endpoint)."""
        body = {k: v for k, v in member.items() if k != "tags"}
        body["status_if_new"] = member.get("status", self.status)
        return body


# -- pure helpers ----------------------------------------------------------------------------------


def base_url_for(name: str, config: Mapping[str, Any]) -> str:
    """``base_url``, else ``https://<dc>.api.mailchimp.com`` from the API key's ``-<dc>`` suffix."""
    explicit = config.get("base_url")
    if explicit:
        return checked_base_url(name, str(explicit)).removesuffix("/3.0")
    dc = str(config.get("api_key") or "").rpartition("-")[2]
    if not dc or not dc.isalnum() or dc == str(config.get("api_key") or ""):
        raise ConfigError("cannot tell the data center: the api_key should end with '-<dc>' (e.g. -us6); "
                          "or set base_url", location=f"{name}.api_key")
    return f"https://{dc.lower()}.api.mailchimp.com"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


def merge_value(value: Any) -> Any:
    """One warehouse value as a merge field value (see the module docstring)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise UnencodableValue(f"{value} is not a number Mailchimp can store")
    if isinstance(value, Decimal):
        return to_json_value(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return ", ".join(str(merge_value(v)) for v in items if v is not None)
    converted = to_json_value(value)
    if isinstance(converted, dict):
        return json.dumps(converted, ensure_ascii=False, separators=(",", ":"))
    return converted


def member_for(record: Record, email_field: str, clear_fields: Sequence[str] | None = None) -> dict[str, Any]:
    """The member object of ``record``, with ``status`` only when the row maps a non-NULL one (never a
    default: the caller decides where the configured status may go); ``clear_fields`` (CLEAR) empties
    those merge fields instead."""
    email = record.values.get(email_field)
    if email is None or not str(email).strip():
        raise UnencodableValue(f"identity field {email_field!r} (the e-mail address) is empty")
    member: dict[str, Any] = {"email_address": str(email).strip()}
    merge: dict[str, Any] = {}
    if clear_fields is not None:
        member["merge_fields"] = {f.upper(): "" for f in clear_fields
                                  if f != email_field and f not in ("tags", "status", *MEMBER_ATTRIBUTES)}
        return member
    for name, value in record.values.items():
        if name == email_field:
            continue
        if value is None:
            # Only with `nulls: clear` (otherwise the pipeline left NULLs out): "" empties a merge field.
            if name not in ("tags", "status", *MEMBER_ATTRIBUTES):
                merge[name.upper()] = ""
            continue
        try:
            if name == "tags":
                member["tags"] = _tag_names(value)
            elif name == "status":
                if value not in STATUSES:
                    raise UnencodableValue(f"{value!r} is not one of {', '.join(STATUSES)}")
                member["status"] = value
            elif name in MEMBER_ATTRIBUTES:
                member[name] = bool(value) if name == "vip" else str(value)
            else:
                merge[name.upper()] = merge_value(value)
        except UnencodableValue as exc:
            raise UnencodableValue(f"field {name!r}: {exc}") from None
    if merge:
        member["merge_fields"] = merge
    return member


def tag_changes(wanted: Sequence[str], current: Any, *, sync: bool) -> list[dict[str, str]]:
    """The body tags of ``POST …/members/{hash}/tags``: ``wanted`` active; with ``sync`` the member's other
    tags (``current``, as a member answer lists them: ``[{"name": …}]``) inactive."""
    changes = [{"name": name, "status": "active"} for name in wanted]
    if sync:
        names = [t.get("name") for t in current if isinstance(t, dict)] if isinstance(current, list) else []
        changes += [{"name": str(n), "status": "inactive"} for n in names if n and n not in wanted]
    return changes


def _address(values: Mapping[str, Any], email_field: str) -> str:
    value = values.get(email_field)
    return "" if value is None else str(value).strip()


def _clear_body(member: Mapping[str, Any]) -> dict[str, Any]:
    return {"merge_fields": dict(member.get("merge_fields") or {})}


def _email_field(target: SyncTarget, *, during_write: bool = False) -> str:
    return single_identity(target, "Mailchimp finds a member by its e-mail address",
                           "set `match: {email_column: email_address}`", during_write=during_write)


def _tag_names(value: Any) -> list[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else list(value)
    else:
        raise UnencodableValue("tags must be a list of names or comma-separated text")
    return [str(t).strip() for t in items if t is not None and str(t).strip()]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
