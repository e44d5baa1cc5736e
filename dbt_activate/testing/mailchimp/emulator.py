"""Emulator of the Mailchimp Marketing API 3.0: audience members.

Follows the contract in ``shared/contracts/SUMMARY.md`` §5: Mailchimp's API fundamentals
(mailchimp.com/developer/marketing/docs/fundamentals: HTTP Basic ``anystring:<apikey>`` or an
OAuth Bearer token, 10 simultaneous connections per key, no request quota, 429 without rate-limit
headers, RFC 7807 problem JSON for errors), the audience reference
(mailchimp.com/developer/marketing/api/lists/batch-subscribe-or-unsubscribe, up to 500 members per
call, ``update_existing``, ``sync_tags``) and the list-members reference
(mailchimp.com/developer/marketing/api/list-members: the member id is the MD5 of the lower-cased
email; ``DELETE`` archives the member).

Emulated: ``POST /3.0/lists/{list_id}`` (batch subscribe/update, answered ``200`` with
``new_members``, ``updated_members`` and ``errors[{email_address, error, error_code, field,
field_message}]`` even when members were refused), ``GET|PUT|PATCH|DELETE
/3.0/lists/{list_id}/members/{subscriber_hash}``, ``POST …/members/{subscriber_hash}/tags``
(``{"tags": [{"name", "status": "active"|"inactive"}]}``, ``204``;
mailchimp.com/developer/marketing/api/list-member-tags), ``GET /3.0/lists/{list_id}/members``
(``count`` at most 1000, ``offset``), ``GET /3.0/ping``; merge fields of type ``text``, ``number``
and ``date`` (``YYYY-MM-DD``) declared per emulator; tags; a member's new address through ``PATCH``
(``email_address``; refused when another member has it, see ``_change_address``); the connection limit
(``max_connections``, ``True`` = 10) answered with a bare 429 problem.

Status, the consent rule the client must keep (mailchimp.com/developer/marketing/api/list-members/
add-or-update-list-member and the batch subscribe reference, field descriptions as in Mailchimp's
API schema, ``spec/marketing.json`` of mailchimp/mailchimp-client-lib-codegen, contracts
``mailchimp/SOURCE.md``):

- batch subscribe with ``update_existing: true`` applies each member's ``status`` to an existing
  member ("Whether this batch operation will change existing members' subscription status"), so it
  re-subscribes someone who unsubscribed; with ``update_existing`` false or absent an existing
  member is not touched and comes back as ``ERROR_CONTACT_EXISTS``. A batch member has no
  ``status_if_new`` and needs a ``status``.
- ``PUT …/members/{hash}`` ("add or update list member"): ``status_if_new`` is the status of a new
  member ("required only if the email address is not already present on the list"); an existing
  member keeps its status unless the body carries ``status``. That body has no ``tags`` field, so
  tags sent there are ignored; tags of an existing member change through the tags endpoint.

Not emulated: interests, marketing permissions, double opt-in e-mails (``pending`` is stored as
given), ``/batches``, webhooks, merge-field formats other than the three above, the 120-second
request timeout, the "heavy load" bare 403 [3P], the "Member In Compliance State" 400 that refuses
to subscribe someone who unsubscribed through Mailchimp's own link [3P Q&A].
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

MAX_MEMBERS = 500
MAX_COUNT = 1000
CONNECTION_LIMIT = 10
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
MERGE_TYPES = ("text", "number", "date")
DEFAULT_MERGE_FIELDS = {"FNAME": "text", "LNAME": "text"}
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_LIST = r"/3\.0/lists/(?P<list_id>[^/]+)"
_MEMBER = _LIST + r"/members/(?P<hash>[0-9a-fA-F]{32})"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address."""
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


@dataclass
class Member:
    email: str
    status: str
    merge_fields: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    archived: bool = False
    last_changed: str = ""

    def view(self, list_id: str, merge_tags: Iterable[str]) -> dict[str, Any]:
        merged = {tag: self.merge_fields.get(tag, "") for tag in merge_tags}
        return {"id": subscriber_hash(self.email), "email_address": self.email, "list_id": list_id,
                "status": "archived" if self.archived else self.status, "merge_fields": merged,
                "tags": [{"name": t} for t in self.tags], "tags_count": len(self.tags),
                "last_changed": self.last_changed}


class MailchimpEmulator(Emulator):
    """Mailchimp audiences ``list_ids``, each with the merge fields ``FNAME``, ``LNAME`` and ``merge_fields``
    (tag -> ``text``/``number``/``date``). ``max_connections`` limits requests in flight (``True`` = 10)."""

    vendor = "mailchimp"

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        list_ids: Iterable[str] = ("a1b2c3d4e5",),
        merge_fields: Mapping[str, str] | None = None,
        max_connections: int | bool | None = None,
        **knobs: Any,
    ) -> None:
        super().__init__(token=token, **knobs)
        self.merge_types = {**DEFAULT_MERGE_FIELDS, **{k.upper(): v for k, v in (merge_fields or {}).items()}}
        unknown = sorted(t for t in self.merge_types.values() if t not in MERGE_TYPES)
        if unknown:
            raise ValueError(f"merge field types must be one of {MERGE_TYPES}, got {unknown}")
        self.lists: dict[str, dict[str, Member]] = {list_id: {} for list_id in list_ids}
        self.max_connections = CONNECTION_LIMIT if max_connections is True else (max_connections or None)
        self.peak_connections = 0
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self.route("GET", r"/3\.0/ping", lambda req: Response.json({"health_status": "Everything's Chimpy!"}))
        self.route("POST", _LIST, self._batch, writes=True)
        self.route("GET", _LIST + r"/members", self._list_members)
        self.route("GET", _MEMBER, self._get)
        self.route("PUT", _MEMBER, self._put, writes=True)
        self.route("PATCH", _MEMBER, self._patch, writes=True)
        self.route("POST", _MEMBER + r"/tags", self._tags, writes=True)
        self.route("DELETE", _MEMBER, self._archive)

    # -- accessors for tests -------------------------------------------------------------------

    def members(self, list_id: str = "a1b2c3d4e5", archived: bool = False) -> list[dict[str, Any]]:
        """Members (archived ones only with ``archived``), as ``GET …/members/{hash}`` shows them."""
        with self.lock:
            return [m.view(list_id, self.merge_types) for m in self._audience(list_id).values()
                    if m.archived == archived]

    def add_members(self, list_id: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """Seed members without HTTP: ``{"email_address", "status"?, "merge_fields"?, "tags"?}``."""
        with self.lock:
            audience = self._audience(list_id)
            for row in rows:
                email = str(row["email_address"])
                audience[subscriber_hash(email)] = Member(email, str(row.get("status", "subscribed")),
                                                          dict(row.get("merge_fields", {})), list(row.get("tags", [])),
                                                          last_changed=_now())

    # -- the connection limit ------------------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response | None:
        limit = self.max_connections
        if limit is None:
            return super().dispatch(method, target, headers, body)
        with self._flight_lock:
            self._in_flight += 1
            self.peak_connections = max(self.peak_connections, self._in_flight)
            refused = self._in_flight > limit
        try:
            if refused:
                self._counters.request(target.partition("?")[0])
                detail = f"You have exceeded the limit of {limit} simultaneous connections."
                return self._sent(self._problem(429, "Too Many Requests", detail), throttled=True)
            return super().dispatch(method, target, headers, body)
        finally:
            with self._flight_lock:
                self._in_flight -= 1

    # -- handlers ------------------------------------------------------------------------------

    def _batch(self, req: Request) -> Response:
        audience = self._audience(req.params["list_id"])
        body = req.json_object()
        members = body.get("members")
        if not isinstance(members, list):
            raise ApiError(400, "Schema describes array, object found instead", "Invalid Resource",
                           errors=[{"field": "members", "message": "Schema describes array"}])
        if len(members) > MAX_MEMBERS:
            raise ApiError(400, f"You may only add or update up to {MAX_MEMBERS} members per request; "
                                f"{len(members)} given", "Invalid Resource")
        self.count_records(len(members))
        update_existing = body.get("update_existing") is True
        sync_tags = body.get("sync_tags") is True
        created: list[dict[str, Any]] = []
        updated: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(members):
                email = str(item.get("email_address") or "") if isinstance(item, dict) else ""
                try:
                    if not isinstance(item, dict):
                        raise _MemberError("ERROR_GENERIC", "Member must be an object")
                    if req.fails(index, len(members)):
                        raise _MemberError("ERROR_GENERIC", "Injected failure for this member")
                    outcome = self._subscribe(audience, item, update_existing, sync_tags)
                except _MemberError as err:
                    errors.append({"email_address": email, "error": err.message, "error_code": err.code,
                                   "field": err.field, "field_message": err.field_message})
                    continue
                view = outcome[1].view(req.params["list_id"], self.merge_types)
                (created if outcome[0] else updated).append(view)
        return Response.json({"new_members": created, "updated_members": updated, "errors": errors,
                              "total_created": len(created), "total_updated": len(updated),
                              "error_count": len(errors)})

    def _subscribe(self, audience: dict[str, Member], item: Mapping[str, Any], update_existing: bool,
                   sync_tags: bool) -> tuple[bool, Member]:
        """Add or update one member; (created?, member). Raises ``_MemberError`` as Mailchimp would."""
        email = str(item.get("email_address") or "").strip()
        if not _EMAIL.match(email):
            raise _MemberError("ERROR_GENERIC", "Please provide a valid email address.", "email_address",
                               "Please provide a valid email address.")
        status = item.get("status")
        if status not in STATUSES:
            raise _MemberError("ERROR_GENERIC", f"Invalid status {status!r}: one of {', '.join(STATUSES)}",
                               "status", "Schema describes enum")
        merge = self._merge_fields(item.get("merge_fields"))
        tags = _tags(item.get("tags"))
        found = audience.get(subscriber_hash(email))
        if found is not None and not found.archived:
            if not update_existing:
                raise _MemberError("ERROR_CONTACT_EXISTS", f"{email} is already a list member. Use PUT to "
                                                           "insert or update list members.")
            found.status = str(status)
            found.merge_fields.update(merge)
            found.tags = tags if sync_tags else found.tags + [t for t in tags if t not in found.tags]
            found.last_changed = _now()
            return False, found
        member = Member(email, str(status), merge, tags, last_changed=_now())
        audience[subscriber_hash(email)] = member  # an archived member comes back as a new one
        return True, member

    def _change_address(self, audience: dict[str, Member], member: Member, value: Any) -> None:
        """A PATCH's ``email_address``: the member's new address, and so its new subscriber hash.

        Mailchimp lets a member's address change through PATCH (or PUT) on its current hash
        (github.com/ibericode/mailchimp-user-sync/issues/80; brandonseydel/MailChimp.Net#135), but not
        to an address another member of the audience has, archived ones included: 400 Invalid Resource
        with '"<address>" is already in this list with a status of "<status>".' for email_address
        (brandonseydel/MailChimp.Net#201). The two members are never merged.
        """
        if value is None or subscriber_hash(str(value)) == subscriber_hash(member.email):
            return
        email = str(value).strip()
        if not _EMAIL.match(email):
            raise _MemberError("ERROR_GENERIC", "Please provide a valid email address.", "email_address",
                               "Please provide a valid email address.")
        other = audience.get(subscriber_hash(email))
        if other is not None:
            status = "archived" if other.archived else other.status
            raise _MemberError("ERROR_GENERIC", "The resource submitted could not be validated. For field-specific "
                               "details, see the 'errors' array.", "email_address",
                               f'"{email}" is already in this list with a status of "{status}".')
        del audience[subscriber_hash(member.email)]
        member.email = email
        audience[subscriber_hash(email)] = member

    def _merge_fields(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", "merge_fields",
                               "Schema describes object")
        out: dict[str, Any] = {}
        for tag, raw in value.items():
            kind = self.merge_types.get(str(tag))
            if kind is None:
                raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", str(tag),
                                   f"Merge field {tag} does not exist in this audience")
            out[str(tag)] = _merge_value(str(tag), kind, raw)
        return out

    def _get(self, req: Request) -> Response:
        member = self._member(req)
        if member is None:
            raise ApiError(404, "The requested resource could not be found.", "Resource Not Found")
        return Response.json(member.view(req.params["list_id"], self.merge_types))

    def _put(self, req: Request) -> Response:
        """Add or update one member; ``status_if_new`` is required when it is new."""
        audience = self._audience(req.params["list_id"])
        body = req.json_object()
        self.count_records(1)
        with self.lock:
            found = audience.get(req.params["hash"].lower())
            new = found is None or found.archived
            status = body.get("status") or (body.get("status_if_new") if new else found.status if found else None)
            email = str(body.get("email_address") or (found.email if found else ""))
            if subscriber_hash(email) != req.params["hash"].lower():
                raise ApiError(400, "The email address does not match the subscriber hash.", "Invalid Resource")
            # The PUT body has no `tags` (they have their own endpoint): whatever is sent there is ignored.
            item = {k: v for k, v in body.items() if k != "tags"}
            try:
                member = self._subscribe(audience, {**item, "email_address": email, "status": status}, True,
                                         False)[1]
            except _MemberError as err:
                raise ApiError(400, err.message, "Invalid Resource",
                               errors=[{"field": err.field, "message": err.field_message}]) from None
            return Response.json(member.view(req.params["list_id"], self.merge_types))

    def _patch(self, req: Request) -> Response:
        body = req.json_object()
        self.count_records(1)
        with self.lock:
            member = self._member(req)
            if member is None:
                raise ApiError(404, "The requested resource could not be found.", "Resource Not Found")
            try:
                merge = self._merge_fields(body.get("merge_fields"))  # checked before anything changes
                self._change_address(self._audience(req.params["list_id"]), member, body.get("email_address"))
                member.merge_fields.update(merge)
            except _MemberError as err:
                raise ApiError(400, err.message, "Invalid Resource",
                               errors=[{"field": err.field, "message": err.field_message}]) from None
            if body.get("status") in STATUSES:
                member.status = str(body["status"])
            member.last_changed = _now()
            return Response.json(member.view(req.params["list_id"], self.merge_types))

    def _tags(self, req: Request) -> Response:
        """Activate or deactivate a member's tags; ``204`` without a body."""
        body = req.json_object()
        tags = body.get("tags")
        if not isinstance(tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("name"), str) and t.get("status") in ("active", "inactive")
                for t in tags):
            raise ApiError(400, "The resource submitted could not be validated.", "Invalid Resource",
                           errors=[{"field": "tags", "message": "Schema describes array of {name, status}"}])
        with self.lock:
            member = self._member(req)
            if member is None:
                raise ApiError(404, "The requested resource could not be found.", "Resource Not Found")
            for tag in tags:
                if tag["status"] == "active" and tag["name"] not in member.tags:
                    member.tags.append(tag["name"])
                elif tag["status"] == "inactive" and tag["name"] in member.tags:
                    member.tags.remove(tag["name"])
            member.last_changed = _now()
        return Response.empty(204)

    def _archive(self, req: Request) -> Response:
        with self.lock:
            member = self._member(req)
            if member is None:
                raise ApiError(404, "The requested resource could not be found.", "Resource Not Found")
            member.archived = True
            member.last_changed = _now()
        return Response.empty(204)

    def _list_members(self, req: Request) -> Response:
        count, offset = req.int_arg("count", 10), req.int_arg("offset", 0)
        if not 1 <= count <= MAX_COUNT or offset < 0:
            raise ApiError(400, f"count must be between 1 and {MAX_COUNT}", "Invalid Resource")
        status = req.arg("status")
        with self.lock:
            live = [m for m in self._audience(req.params["list_id"]).values()
                    if (m.archived if status == "archived" else not m.archived)
                    and (status in (None, "archived") or m.status == status)]
            page = [m.view(req.params["list_id"], self.merge_types) for m in live[offset:offset + count]]
        return Response.json({"members": page, "list_id": req.params["list_id"], "total_items": len(live)})

    def _member(self, req: Request) -> Member | None:
        member = self._audience(req.params["list_id"]).get(req.params["hash"].lower())
        return None if member is None or member.archived else member

    def _audience(self, list_id: str) -> dict[str, Member]:
        audience = self.lists.get(list_id)
        if audience is None:
            raise ApiError(404, "The requested resource could not be found.", "Resource Not Found")
        return audience

    # -- vendor shapes -------------------------------------------------------------------------

    def _problem(self, status: int, title: str, detail: str, **extra: Any) -> Response:
        body = {"type": ERRORS_DOC, "title": title, "status": status, "detail": detail,
                "instance": str(uuid.uuid4()), **extra}
        return Response.json(body, status, {"Content-Type": "application/problem+json; charset=utf-8"})

    def error_response(self, err: ApiError) -> Response:
        return self._problem(err.status, err.code or "Error", err.message, **err.extra)

    def authenticate(self, request: Request) -> Response | None:
        if self.token is None:
            return None
        scheme, _, value = (request.header("Authorization") or "").partition(" ")
        key: str | None = None
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(value.strip()).decode("utf-8").partition(":")[2]
            except ValueError:
                key = None
        elif scheme.lower() == "bearer":
            key = value.strip()
        if key == self.token:
            return None
        return self._problem(401, "API Key Invalid", "Your API key may be invalid, or you've attempted to "
                                                     "access the wrong datacenter.")

    def server_error(self, status: int) -> Response:
        return self._problem(status, "Internal Server Error", "An unexpected internal error has occurred.")

    def not_found(self, method: str, path: str) -> Response:
        return self._problem(404, "Resource Not Found", f"The requested resource could not be found: {path}")

    def throttled_response(self, decision: Any) -> Response:
        # Mailchimp's 429 carries no Retry-After or rate-limit headers.
        return self._problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous connections.")


class _MemberError(Exception):
    def __init__(self, code: str, message: str, field: str = "", field_message: str = "") -> None:
        super().__init__(message)
        self.code, self.message, self.field, self.field_message = code, message, field, field_message


def _merge_value(tag: str, kind: str, raw: Any) -> Any:
    if raw is None or raw == "":
        return ""  # an empty value clears the merge field
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", tag, "Please enter a number")
        try:
            return float(raw) if not isinstance(raw, int) else raw
        except ValueError:
            raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", tag,
                               "Please enter a number") from None
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(raw)).isoformat()
        except ValueError:
            raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", tag,
                               "Please enter the date in the format YYYY-MM-DD") from None
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise _MemberError("ERROR_GENERIC", "Your merge fields were invalid.", tag, "Please enter text")
    return str(raw)


def _tags(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise _MemberError("ERROR_GENERIC", "Tags must be an array of names", "tags", "Schema describes array")
    return list(dict.fromkeys(value))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
