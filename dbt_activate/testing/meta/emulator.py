"""Emulator of Meta's Graph API for the Conversions API and Custom Audience members.

Meta publishes no copyable machine-readable spec (``shared/contracts/meta/SOURCE.md``: the
``facebook-business-sdk-codegen`` api_specs are under a field-of-use licence), so this docstring is
the contract, written from Meta's documentation:

- Conversions API, developers.facebook.com/docs/marketing-api/conversions-api/using-the-api:
  ``POST /{version}/{pixel_id}/events`` with ``data`` (up to 1,000 events) and optional
  ``test_event_code``; answer ``{"events_received": n, "messages": [], "fbtrace_id"}``. The
  server event's fields (…/conversions-api/parameters/server-event): ``event_name`` and
  ``event_time`` (unix seconds) required, ``action_source`` one of email, website, app, phone_call,
  chat, physical_store, system_generated, business_messaging, other; ``user_data``
  (…/parameters/customer-information-parameters) needs at least one parameter, and em, ph, fn, ln,
  ct, st, zp, country, ge, db, external_id must be SHA-256 hex; ``custom_data.currency`` a
  three-letter code and ``value`` a number (…/parameters/custom-data). An event older than 7 days
  is refused ("Event Timestamp Too Old", error_subcode 2804003 [R]). One invalid event refuses the
  whole request with ``400 {"error": {"message": "Invalid parameter", "type": "OAuthException",
  "code": 100, "error_subcode", "error_user_title", "error_user_msg", "fbtrace_id"}}`` and nothing
  of it is stored (…/conversions-api/support: "If invalid, a 4xx HTTP response code is returned").
  Events with the same ``event_name`` and ``event_id`` are de-duplicated (…/conversions-api/
  deduplicate-pixel-and-server-events): the later one is dropped.
- Custom Audiences, developers.facebook.com/docs/marketing-api/reference/custom-audience/users and
  …/audiences/guides/custom-audiences: ``POST`` (add) and ``DELETE`` (remove)
  ``/{version}/{audience_id}/users`` with ``payload = {"schema": "EMAIL_SHA256" | [keys…],
  "data": [[…], …]}``, at most 10,000 users per request; keys EXTERN_ID, EMAIL, PHONE, GEN, DOBY,
  DOBM, DOBD, LN, FN, FI, CT, ST, ZIP, MADID, COUNTRY; every value hashed (``""`` when unknown).
  Answer ``{"audience_id", "session_id", "num_received", "num_invalid_entries",
  "invalid_entry_samples"}``; a row whose length differs from the schema's, or with a value that is
  not SHA-256 hex, is an invalid entry (counted, not stored). A removal takes out the members with
  the same row or the same EMAIL, PHONE, EXTERN_ID or MADID (matching itself is not emulated).
- Authentication: the access token in ``Authorization: Bearer`` (or ``OAuth``), or an
  ``access_token`` parameter (counted in ``tokens_in_url``, so tests can assert it never happens);
  a wrong one is ``400 {"error": {"message": "Invalid OAuth access token - Cannot parse access
  token", "type": "OAuthException", "code": 190}}`` [R: status 400].
- Throttling, developers.facebook.com/docs/graph-api/overview/rate-limiting: over the window
  (``rate_limit``) the answer is ``400`` with ``code`` 17 ("User request limit reached",
  ``is_transient`` true) [R: status] and ``X-Business-Use-Case-Usage: {"<business id>":
  [{"type": "ads_management", "call_count", "total_cputime", "total_time",
  "estimated_time_to_regain_access"}]}`` (minutes); every answer carries that header with
  ``usage`` percent (a knob) so clients can slow down before.

Not emulated: matching and audience sizes, ``usersreplace`` sessions, the Test Events tool's
display, event quality scores, ``app_data``, ``messages`` warnings.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from collections.abc import Iterable
from typing import Any

from dbt_activate.testing.limits import Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

MAX_EVENTS = 1_000
MAX_USERS = 10_000
MAX_AGE = 7 * 24 * 3600
BUSINESS_ID = "1000000000001"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_VERSION = r"/(?P<version>v\d+\.\d+)"
ACTION_SOURCES = frozenset({"email", "website", "app", "phone_call", "chat", "physical_store", "system_generated",
                            "business_messaging", "other"})
HASHED_USER_DATA = frozenset({"em", "ph", "fn", "ln", "ct", "st", "zp", "country", "ge", "db", "external_id"})
CLEAR_USER_DATA = frozenset({"client_ip_address", "client_user_agent", "fbc", "fbp", "subscription_id",
                             "fb_login_id", "lead_id", "anon_id", "madid", "page_id", "page_scoped_user_id",
                             "ctwa_clid", "ig_account_id", "ig_sid"})
AUDIENCE_KEYS = frozenset({"EXTERN_ID", "EMAIL", "PHONE", "GEN", "DOBY", "DOBM", "DOBD", "LN", "FN", "FI", "CT",
                           "ST", "ZIP", "MADID", "COUNTRY", "EMAIL_SHA256", "PHONE_SHA256"})


# Keys that single a person out; the others (country, city, names…) only narrow a match down.
STRONG_KEYS = ("EMAIL", "PHONE", "EXTERN_ID", "MADID", "EMAIL_SHA256", "PHONE_SHA256")


def _same_person(member: dict[str, str], removal: dict[str, str]) -> bool:
    """A removal takes out the member with the same row, or sharing a strong key (email, phone, ids)."""
    return member == removal or any(member.get(k) and member.get(k) == removal.get(k) for k in STRONG_KEYS)


class GraphError(ApiError):
    def __init__(self, status: int, message: str, code: int, *, subcode: int | None = None,
                 title: str | None = None, user_message: str | None = None, transient: bool = False) -> None:
        extra: dict[str, Any] = {"type": "OAuthException", "code": code, "is_transient": transient}
        if subcode is not None:
            extra["error_subcode"] = subcode
        if title is not None:
            extra["error_user_title"], extra["error_user_msg"] = title, user_message or title
        super().__init__(status, message, str(code), graph=extra)


def _invalid(title: str, user_message: str, subcode: int = 2804050) -> GraphError:
    return GraphError(400, "Invalid parameter", 100, subcode=subcode, title=title, user_message=user_message)


class MetaEmulator(Emulator):
    """Meta Graph API. ``pixels`` and ``audiences``: the ids that exist; ``usage``: the percentage the
    usage headers report (90+ tells clients to slow down)."""

    vendor = "meta"
    default_rate_limit = RateLimit(60, 60.0)

    def __init__(self, *, pixels: Iterable[str] = ("1234567890",), audiences: Iterable[str] = ("2345678901",),
                 usage: int = 5, regain_minutes: int = 0, **knobs: Any) -> None:
        knobs.setdefault("token", "meta-token")
        super().__init__(**knobs)
        self.events: dict[str, list[dict[str, Any]]] = {p: [] for p in pixels}
        self.audiences: dict[str, list[dict[str, str]]] = {a: [] for a in audiences}
        self.usage, self.regain_minutes = usage, regain_minutes
        self.tokens_in_url = 0
        self.requests_log: list[tuple[str, str, int]] = []  # (method, object id, rows)
        self.route("POST", _VERSION + r"/(?P<id>\d+)/events", self._post_events, writes=True)
        self.route("POST", _VERSION + r"/(?P<id>\d+)/users", self._users, writes=True)
        self.route("DELETE", _VERSION + r"/(?P<id>\d+)/users", self._users, writes=True)

    # -- test helpers --------------------------------------------------------------------------

    def received(self, pixel: str = "1234567890") -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.events[pixel])

    def members(self, audience: str = "2345678901") -> list[dict[str, str]]:
        """The audience's members, each ``{schema key: hash}`` (keys it had a value for)."""
        with self.lock:
            return copy.deepcopy(self.audiences[audience])

    def member_emails(self, audience: str = "2345678901") -> set[str]:
        return {m["EMAIL"] for m in self.members(audience) if m.get("EMAIL")}

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        auth = request.header("Authorization") or ""
        scheme, _, value = auth.partition(" ")
        token = value.strip() if scheme.lower() in ("bearer", "oauth") else None
        if request.arg("access_token") is not None:
            with self.lock:
                self.tokens_in_url += 1
            token = token or request.arg("access_token")
        if self.token is None or token == self.token:
            return None
        return self.error_response(GraphError(400, "Invalid OAuth access token - Cannot parse access token", 190))

    def error_response(self, err: ApiError) -> Response:
        graph = err.extra.get("graph") or {"type": "OAuthException", "code": 1 if err.status >= 500 else 100}
        body = {"error": {"message": err.message, **graph, "fbtrace_id": secrets.token_urlsafe(12)}}
        return Response.json(body, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(GraphError(status, "An unknown error occurred", 1, transient=True))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(GraphError(400, f"Unsupported {method.lower()} request. Object does not exist, "
                                                   "cannot be loaded due to missing permissions, or does not support "
                                                   "this operation.", 100, subcode=33))

    def throttled_response(self, decision: Decision) -> Response:
        response = self.error_response(GraphError(400, "(#17) User request limit reached", 17, subcode=2446079,
                                                  transient=True))
        minutes = max(1, self.regain_minutes or int(decision.reset / 60 + 0.999))
        response.headers.update(self._usage_header(100, minutes))
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        return self._usage_header(self.usage, self.regain_minutes)

    def _usage_header(self, percent: int, minutes: int) -> dict[str, str]:
        entry = {"type": "ads_management", "call_count": percent, "total_cputime": max(1, percent // 2),
                 "total_time": max(1, percent // 2), "estimated_time_to_regain_access": minutes}
        return {"X-Business-Use-Case-Usage": json.dumps({BUSINESS_ID: [entry]})}

    # -- Conversions API -----------------------------------------------------------------------

    def _post_events(self, request: Request) -> Response:
        pixel = request.params["id"]
        if pixel not in self.events:
            raise GraphError(400, f"Unsupported post request. Object with ID '{pixel}' does not exist", 100,
                             subcode=33)
        body = request.json_object()
        data = body.get("data")
        if isinstance(data, str):
            data = json.loads(data)
        if not isinstance(data, list) or not data:
            raise GraphError(400, "(#100) The parameter data is required", 100)
        if len(data) > MAX_EVENTS:
            raise _invalid("Too Many Events", f"You can send at most {MAX_EVENTS} events in one request.")
        self.count_records(len(data))
        now = time.time()
        for index, event in enumerate(data):
            self._check_event(event, now)
            if request.fails(index, len(data)):
                raise _invalid("Invalid Event", "The event is invalid (injected).")
        with self.lock:
            stored = self.events[pixel]
            seen = {(e.get("event_name"), e.get("event_id")) for e in stored if e.get("event_id")}
            for event in data:
                if event.get("event_id") and (event["event_name"], event["event_id"]) in seen:
                    continue  # de-duplicated: Meta keeps the first
                stored.append({**event, "test_event_code": body.get("test_event_code")})
                seen.add((event.get("event_name"), event.get("event_id")))
        return Response.json({"events_received": len(data), "messages": [], "fbtrace_id": secrets.token_urlsafe(12)})

    @staticmethod
    def _check_event(event: Any, now: float) -> None:
        if not isinstance(event, dict) or not event.get("event_name"):
            raise _invalid("Missing Event Name", "The event_name parameter is required.")
        when = event.get("event_time")
        if not isinstance(when, int):
            raise _invalid("Invalid Event Time", "event_time must be a Unix timestamp in seconds.")
        if now - when > MAX_AGE:
            raise _invalid("Event Timestamp Too Old", "The timestamp for this event is too far in the past. Events "
                           "need to be sent from your server within 7 days of when they occurred. Enter a timestamp "
                           "that has occurred within the last 7 days.", 2804003)
        if event.get("action_source") not in ACTION_SOURCES:
            raise _invalid("Invalid Action Source", "action_source is required and must be a known value.")
        user_data = event.get("user_data")
        if not isinstance(user_data, dict) or not user_data:
            raise _invalid("Missing User Data", "The user_data parameter needs at least one customer information "
                           "parameter.")
        for key, value in user_data.items():
            if key in HASHED_USER_DATA:
                values = value if isinstance(value, list) else [value]
                if not all(isinstance(v, str) and _HEX64.fullmatch(v) for v in values):
                    raise _invalid("Unhashed User Data", f"The {key} parameter must be hashed with SHA-256.")
            elif key not in CLEAR_USER_DATA:
                raise _invalid("Invalid User Data", f"Unknown user_data parameter {key}.")
        custom = event.get("custom_data") or {}
        currency = custom.get("currency")
        if currency is not None and not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
            raise _invalid("Invalid Currency Code", "The currency parameter must be a valid ISO 4217 three-letter "
                           "currency code.")
        value = custom.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _invalid("Invalid Value", "The value parameter must be a number.")

    # -- Custom Audiences ----------------------------------------------------------------------

    def _users(self, request: Request) -> Response:
        audience = request.params["id"]
        if audience not in self.audiences:
            raise GraphError(400, f"Unsupported request. Object with ID '{audience}' does not exist", 100, subcode=33)
        payload = request.json_object().get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, dict) or "schema" not in payload or not isinstance(payload.get("data"), list):
            raise GraphError(400, "(#100) The parameter payload is required", 100)
        schema = payload["schema"] if isinstance(payload["schema"], list) else [payload["schema"]]
        unknown = [k for k in schema if k not in AUDIENCE_KEYS]
        if unknown or not schema:
            raise GraphError(400, f"(#100) Invalid schema key(s): {', '.join(map(str, unknown)) or 'none'}", 100)
        rows = payload["data"]
        if len(rows) > MAX_USERS:
            raise GraphError(400, f"(#100) Too many users: at most {MAX_USERS} per request", 100)
        self.count_records(len(rows))
        invalid: dict[str, str] = {}
        members: list[dict[str, str]] = []
        for index, row in enumerate(rows):
            values = row if isinstance(row, list) else [row]
            if len(values) != len(schema) or not all(v == "" or (isinstance(v, str) and _HEX64.fullmatch(v))
                                                     for v in values) or request.fails(index, len(rows)):
                invalid[str(index)] = "invalid entry"
                continue
            members.append({k: v for k, v in zip(schema, values, strict=True) if v})
        with self.lock:
            stored = self.audiences[audience]
            self.requests_log.append((request.method, audience, len(rows)))
            for member in members:
                if request.method == "POST":
                    if member not in stored:
                        stored.append(member)
                else:
                    stored[:] = [m for m in stored if not _same_person(m, member)]
        return Response.json({"audience_id": audience, "session_id": secrets.randbelow(10**15),
                              "num_received": len(rows), "num_invalid_entries": len(invalid),
                              "invalid_entry_samples": invalid})
