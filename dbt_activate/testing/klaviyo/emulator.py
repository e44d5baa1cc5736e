"""Emulator of Klaviyo's profile bulk import API (JSON:API, revision-dated).

Follows the contract in ``shared/contracts/SUMMARY.md`` §6 ("Klaviyo"), itself from Klaviyo's
OpenAPI document (klaviyo/openapi ``openapi/stable.json``, revision 2026-07-15, MIT) and the
reference pages developers.klaviyo.com/en/reference/bulk_import_profiles,
…/get_bulk_import_profiles_job and …/get_errors_for_bulk_import_profiles_job, and the guide
developers.klaviyo.com/en/docs/use_klaviyos_bulk_profile_import_api.

Emulated: ``POST /api/profile-bulk-import-jobs`` (``202`` with the job; at most 10,000 profiles,
5 MB per request, 100 KB per profile; optional ``relationships.lists``), ``GET
/api/profile-bulk-import-jobs/{id}`` (``queued`` -> ``processing`` -> ``complete`` after
``polls_to_complete`` polls, with ``total_count``/``completed_count``/``failed_count``), ``GET
…/{id}/import-errors`` (``import-error`` resources ``{code, title, detail, source.pointer,
original_payload}``, cursor pages of ``page[size]`` at most 100 via ``links.next``), ``GET
/api/profiles`` with ``filter=any(<field>,[…])`` or ``equals(<field>,"…")`` on id, email,
phone_number or external_id (the operators the OpenAPI document allows for those fields; one page).
Profiles are upserted the way Klaviyo documents: a profile resource with an ``id`` (the
``ProfileUpsertQueryResourceObject`` of the spec: "Primary key that uniquely identifies this
profile") updates that profile, its identifiers included, unless another profile has one of them:
an import error ``duplicate_profile`` [R: the code Klaviyo gives a create that collides]; without
an id, matched by ``external_id``, else ``email``, else ``phone_number``; attributes and
``properties`` left out keep their value, ``null`` clears it. Auth ``Authorization:
Klaviyo-API-Key <key>``; a ``revision`` header is required. Throttling: ``rate_limit=True`` is the
endpoint's steady limit (150/min) and ``burst_limit=True`` its burst (10/s); a 429 carries
``Retry-After`` and ``RateLimit-Limit``/``-Remaining``/``-Reset`` [R] and a JSON:API ``throttled`` error.

Processing is immediate: the job's changes are applied when it is submitted, and polls only walk
its status forward. ``POST /api/event-bulk-create-jobs`` (bulk create events, at most 1,000 events
[R]) validates the whole request (a 400 names the first bad entry), upserts each entry's profile and
keeps one event per metric, profile and ``unique_id``, answering ``202``. Not emulated: the
single-profile endpoints, list membership reads, consent/subscriptions, job cancellation, OAuth.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.testing.limits import Decision, Limits, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

MAX_PROFILES = 10_000
MAX_BODY = 5 * 1024 * 1024
MAX_PROFILE = 100 * 1024
MAX_ERROR_PAGE = 100
MAX_EVENTS = 1_000
IDENTIFIERS = ("external_id", "email", "phone_number")
_JOBS = r"/api/profile-bulk-import-jobs"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")  # E.164
_POINTER = "/data/attributes/profiles/data/{}/attributes/{}"
_FILTER = re.compile(r"^(any|equals)\((id|email|phone_number|external_id),(.+)\)$")


@dataclass
class Job:
    id: str
    total: int
    errors: list[dict[str, Any]]
    list_ids: list[str]
    created_at: str
    polls: int = 0


@dataclass
class Profile:
    id: str
    attributes: dict[str, Any] = field(default_factory=dict)  # standard attributes, location included
    properties: dict[str, Any] = field(default_factory=dict)
    lists: set[str] = field(default_factory=set)


class KlaviyoEmulator(Emulator):
    """Klaviyo profile bulk import. ``polls_to_complete``: job polls before it reports ``complete``."""

    vendor = "klaviyo"
    default_rate_limit = RateLimit(150, 60.0)

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        polls_to_complete: int = 2,
        burst_limit: RateLimitSpec = None,
        **knobs: Any,
    ) -> None:
        super().__init__(token=token, **knobs)
        self.polls_to_complete = polls_to_complete
        self._burst = Limits()
        self._burst.set_window("default", RateLimit.parse(burst_limit, RateLimit(10, 1.0)))
        self.jobs: dict[str, Job] = {}
        self.store: dict[str, Profile] = {}
        self._index: dict[tuple[str, str], str] = {}  # (identifier, folded value) -> profile id
        self.route("POST", _JOBS, self._create_job, writes=True)
        self.route("GET", _JOBS + r"/(?P<id>[^/]+)", self._get_job)
        self.route("GET", _JOBS + r"/(?P<id>[^/]+)/import-errors", self._job_errors)
        self.route("POST", r"/api/event-bulk-create-jobs", self._create_events, writes=True)
        self.route("GET", r"/api/profiles", self._list_profiles)
        self.event_log: list[dict[str, Any]] = []

    # -- accessors for tests -------------------------------------------------------------------

    def profiles(self) -> list[dict[str, Any]]:
        """Every profile: ``{"id", **standard attributes, "properties", "lists"}``, in creation order."""
        with self.lock:
            return [{"id": p.id, **json.loads(json.dumps(p.attributes)), "properties": dict(p.properties),
                     "lists": sorted(p.lists)} for p in self.store.values()]

    def events(self, metric: str | None = None) -> list[dict[str, Any]]:
        """Events kept (one per metric, profile and ``unique_id``): ``{"metric", "profile_id", "properties",
        "time", "value", "unique_id"}``, in arrival order."""
        with self.lock:
            return [dict(e) for e in self.event_log if metric is None or e["metric"] == metric]

    def add_profiles(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Seed profiles without HTTP: ``{"email": …, "properties": {…}}``."""
        with self.lock:
            for row in rows:
                self._upsert({k: v for k, v in row.items() if k != "properties"}, row.get("properties"), [])

    # -- handlers ------------------------------------------------------------------------------

    def _create_job(self, req: Request) -> Response:
        if len(req.body) > MAX_BODY:
            raise ApiError(413, f"The request body exceeds {MAX_BODY} bytes.", "request_too_large")
        data = req.json_object().get("data")
        if not isinstance(data, dict) or data.get("type") != "profile-bulk-import-job":
            raise ApiError(400, "Expected a `profile-bulk-import-job` resource at /data.", "invalid", pointer="/data")
        attributes = data.get("attributes") or {}
        profiles = ((attributes.get("profiles") or {}).get("data")) if isinstance(attributes, dict) else None
        if not isinstance(profiles, list) or not profiles:
            raise ApiError(400, "`profiles` must be a non-empty array.", "invalid",
                           pointer="/data/attributes/profiles/data")
        if len(profiles) > MAX_PROFILES:
            raise ApiError(400, f"A job may contain at most {MAX_PROFILES} profiles; {len(profiles)} given.",
                           "invalid", pointer="/data/attributes/profiles/data")
        list_ids = [str(i.get("id")) for i in _dicts(((data.get("relationships") or {}).get("lists") or {})
                                                     .get("data"))]
        self.count_records(len(profiles))
        errors: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(profiles):
                try:
                    if req.fails(index, len(profiles)):
                        raise _ProfileError("invalid", "Injected failure for this profile.", "email")
                    attrs = self._valid_attributes(item)
                    self._upsert({k: v for k, v in attrs.items() if k != "properties"}, attrs.get("properties"),
                                 list_ids, profile_id=item.get("id"))
                except _ProfileError as err:
                    errors.append(_import_error(index, err, item))
            job = Job(_id(), len(profiles), errors, list_ids, _now())
            self.jobs[job.id] = job
            return _json_api({"data": self._job_view(job, "queued")}, 202)

    def _create_events(self, req: Request) -> Response:
        """Bulk create events: validated whole (Klaviyo reports no per-event errors later), then kept."""
        if len(req.body) > MAX_BODY:
            raise ApiError(413, f"The request body exceeds {MAX_BODY} bytes.", "request_too_large")
        data = req.json_object().get("data")
        entries = ((data.get("attributes") or {}).get("events-bulk-create") or {}).get("data") if isinstance(
            data, dict) and data.get("type") == "event-bulk-create-job" else None
        if not isinstance(entries, list) or not entries:
            raise ApiError(400, "Expected an `event-bulk-create-job` with events.", "invalid", pointer="/data")
        parsed: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for i, entry in enumerate(entries):
            where = f"/data/attributes/events-bulk-create/data/{i}/attributes"
            attrs = entry.get("attributes") if isinstance(entry, dict) else None
            profile = (((attrs or {}).get("profile") or {}).get("data") or {}).get("attributes")
            events = ((attrs or {}).get("events") or {}).get("data")
            try:
                valid = self._valid_attributes({"type": "profile", "attributes": profile})
            except _ProfileError as err:
                raise ApiError(400, err.detail, err.code, pointer=f"{where}/profile") from None
            for event in _dicts(events):
                parsed.append((valid, _valid_event(event.get("attributes"), f"{where}/events")))
        if len(parsed) > MAX_EVENTS:
            raise ApiError(400, f"A job may contain at most {MAX_EVENTS} events; {len(parsed)} given.", "invalid",
                           pointer="/data/attributes/events-bulk-create/data")
        self.count_records(len(parsed))
        with self.lock:
            for profile_attrs, event in parsed:
                profile = self._upsert({k: v for k, v in profile_attrs.items() if k != "properties"},
                                       profile_attrs.get("properties"), [])
                event["profile_id"] = profile.id
                if not any(e["metric"] == event["metric"] and e["profile_id"] == profile.id
                           and e["unique_id"] == event["unique_id"] for e in self.event_log):
                    self.event_log.append(event)
        return Response.empty(202)

    def _valid_attributes(self, item: Any) -> dict[str, Any]:
        """One profile's attributes, validated as Klaviyo does; ``_ProfileError`` names the attribute."""
        if not isinstance(item, dict) or item.get("type") != "profile" or not isinstance(item.get("attributes"), dict):
            raise _ProfileError("invalid", "Each profile must be a `profile` resource with attributes.", "")
        attrs: dict[str, Any] = item["attributes"]
        if len(json.dumps(attrs)) > MAX_PROFILE:
            raise _ProfileError("invalid", f"The profile exceeds {MAX_PROFILE} bytes.", "")
        if not any(attrs.get(k) not in (None, "") for k in IDENTIFIERS):
            raise _ProfileError("invalid", "A profile needs at least one identifier: email, phone_number or "
                                           "external_id.", "")
        email = attrs.get("email")
        if email is not None and not (isinstance(email, str) and _EMAIL.match(email)):
            raise _ProfileError("invalid", f"Invalid email address: {email!r}.", "email")
        phone = attrs.get("phone_number")
        if phone is not None and not (isinstance(phone, str) and _PHONE.match(phone)):
            raise _ProfileError("invalid", "Invalid phone number format (Example of a valid format: +12345678901).",
                                "phone_number")
        properties = attrs.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise _ProfileError("invalid", "`properties` must be an object.", "properties")
        return attrs

    def _upsert(self, attrs: Mapping[str, Any], properties: Any, list_ids: list[str],
                profile_id: Any = None) -> Profile:
        found = None
        if profile_id is not None:
            found = self._by_id(str(profile_id), attrs)
        for key in IDENTIFIERS if found is None else ():
            value = attrs.get(key)
            if value not in (None, ""):
                found = self.store.get(self._index.get((key, _folded(key, value)), ""))
                if found is not None and _folded(key, found.attributes.get(key)) == _folded(key, value):
                    break
                found = None
        if found is None:
            found = Profile(_id())
            self.store[found.id] = found
        if isinstance(attrs.get("email"), str):
            attrs = {**attrs, "email": attrs["email"].lower()}  # Klaviyo keeps addresses lower-cased [R]
        _merge(found.attributes, attrs)
        for key in IDENTIFIERS:  # an index per identifier: a 10,000-profile job stays linear
            if found.attributes.get(key) not in (None, ""):
                self._index[(key, _folded(key, found.attributes[key]))] = found.id
        _merge(found.properties, properties if isinstance(properties, dict) else {})
        found.lists.update(list_ids)
        return found

    def _by_id(self, profile_id: str, attrs: Mapping[str, Any]) -> Profile:
        """A profile named by its ``id``: its identifiers change to the ones given, unless another
        profile has one of them (``duplicate_profile``; the two are never merged)."""
        found = self.store.get(profile_id)
        if found is None:
            raise _ProfileError("not_found", f"A profile with id {profile_id} does not exist.", "")
        for key in IDENTIFIERS:
            value = attrs.get(key)
            if value in (None, ""):
                continue
            other = self.store.get(self._index.get((key, _folded(key, value)), ""))
            if other is not None and other is not found and _folded(key, other.attributes.get(key)) == _folded(
                    key, value):
                raise _ProfileError("duplicate_profile", f"A profile already exists with one of these identifiers "
                                    f"(id {other.id}).", key)
        return found

    def _list_profiles(self, req: Request) -> Response:
        """``GET /api/profiles?filter=any(email,["a","b"])`` (or ``equals``; fields id, email, phone_number,
        external_id), ``page[size]`` at most 100; this emulator answers one page."""
        found = _FILTER.match(req.arg("filter") or "")
        if found is None:
            raise ApiError(400, "filter must be any(<field>,[…]) or equals(<field>,\"…\") on id, email, "
                           "phone_number or external_id", "invalid", parameter="filter")
        operator, key, raw = found.groups()
        try:
            wanted = json.loads(raw)
        except ValueError:
            raise ApiError(400, f"cannot read the filter value {raw!r}", "invalid", parameter="filter") from None
        values = {_folded(key, v) for v in (wanted if operator == "any" else [wanted])}
        size = req.int_arg("page[size]", 20)
        if not 1 <= size <= 100 or len(values) > 100:
            raise ApiError(400, "page[size] must be 1-100, and any() takes at most 100 values", "invalid",
                           parameter="page[size]")
        with self.lock:
            hits = [p for p in self.store.values()
                    if _folded(key, p.id if key == "id" else p.attributes.get(key)) in values][:size]
            data = [{"type": "profile", "id": p.id, "attributes": {k: p.attributes.get(k) for k in IDENTIFIERS}}
                    for p in hits]
        return Response.json({"data": data, "links": {"next": None}}, 200,
                             {"Content-Type": "application/vnd.api+json"})

    def _get_job(self, req: Request) -> Response:
        with self.lock:
            job = self._job(req)
            job.polls += 1
            state = "complete" if job.polls >= self.polls_to_complete else "processing"
            return _json_api({"data": self._job_view(job, state)})

    def _job_errors(self, req: Request) -> Response:
        size = req.int_arg("page[size]", 20)
        start = req.int_arg("page[cursor]", 0)
        if not 1 <= size <= MAX_ERROR_PAGE:
            raise ApiError(400, f"page[size] must be between 1 and {MAX_ERROR_PAGE}.", "invalid",
                           parameter="page[size]")
        with self.lock:
            job = self._job(req)
            page = job.errors[start:start + size]
            more = start + size < len(job.errors)
        base = f"{self.base_url}{req.path}"
        links = {"self": f"{base}?page[size]={size}&page[cursor]={start}", "first": f"{base}?page[size]={size}",
                 "next": f"{base}?page[size]={size}&page[cursor]={start + size}" if more else None,
                 "prev": None}
        return _json_api({"data": page, "links": links})

    def _job(self, req: Request) -> Job:
        job = self.jobs.get(req.params["id"])
        if job is None:
            raise ApiError(404, "A job with the given ID does not exist.", "not_found")
        return job

    def _job_view(self, job: Job, state: str) -> dict[str, Any]:
        done = state == "complete"
        return {"type": "profile-bulk-import-job", "id": job.id,
                "attributes": {"status": state, "created_at": job.created_at, "total_count": job.total,
                               "completed_count": job.total - len(job.errors) if done else 0,
                               "failed_count": len(job.errors) if done else 0,
                               "completed_at": _now() if done else None, "expires_at": None, "started_at": None},
                "relationships": {"lists": {"data": [{"type": "list", "id": i} for i in job.list_ids]}},
                "links": {"self": f"{self.base_url}{_JOBS}/{job.id}"}}

    # -- rate limits and vendor shapes ---------------------------------------------------------

    def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Response | None:
        if not target.startswith("/_emulator"):
            decision = self._burst.check()
            if not decision.allowed:
                self._counters.request(target.partition("?")[0])
                return self._sent(self.throttled_response(decision), throttled=True)
        return super().dispatch(method, target, headers, body)

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, key = (request.header("Authorization") or "").partition(" ")
        if self.token is not None and (scheme != "Klaviyo-API-Key" or key.strip() != self.token):
            return self.error_response(ApiError(401, "Missing or invalid private key.", "not_authenticated",
                                                title="Authentication credentials were not provided."))
        if not request.header("revision"):
            return self.error_response(ApiError(400, "Missing `revision` header; see "
                                                     "https://developers.klaviyo.com/en/docs/api_versioning_and_"
                                                     "deprecation_policy", "invalid", parameter="revision"))
        return None

    def error_response(self, err: ApiError) -> Response:
        extra = dict(err.extra)
        source = {k: extra.pop(k) for k in ("pointer", "parameter") if k in extra}
        error = {"id": str(uuid.uuid4()), "status": err.status, "code": err.code or "error",
                 "title": extra.pop("title", _TITLES.get(err.status, "Error.")), "detail": err.message,
                 "source": source or {"pointer": "/data/"}}
        return _json_api({"errors": [error]}, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(ApiError(status, "A server error occurred.", "error"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, f"No route for {method} {path}.", "not_found"))

    def throttled_response(self, decision: Decision) -> Response:
        wait = int(decision.reset) + 1
        response = self.error_response(ApiError(429, f"Request was throttled. Expected available in {wait} "
                                                     "seconds.", "throttled", title="Request was throttled."))
        response.headers.update({"Retry-After": str(wait), **self.limit_headers(decision)})
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        if decision.limit is None:
            return {}
        return {"RateLimit-Limit": str(decision.limit), "RateLimit-Remaining": str(decision.remaining or 0),
                "RateLimit-Reset": str(int(decision.reset))}


_TITLES = {400: "Invalid input.", 401: "Authentication credentials were not provided.", 404: "Not found.",
           413: "Request too large.", 429: "Request was throttled.", 500: "A server error occurred."}


class _ProfileError(Exception):
    def __init__(self, code: str, detail: str, attribute: str) -> None:
        super().__init__(detail)
        self.code, self.detail, self.attribute = code, detail, attribute


def _valid_event(attrs: Any, where: str) -> dict[str, Any]:
    if not isinstance(attrs, dict):
        raise ApiError(400, "An event needs attributes.", "invalid", pointer=where)
    metric = (((attrs.get("metric") or {}).get("data") or {}).get("attributes") or {}).get("name")
    if not isinstance(metric, str) or not metric.strip():
        raise ApiError(400, "An event needs a metric name.", "invalid", pointer=f"{where}/metric")
    properties = attrs.get("properties")
    if not isinstance(properties, dict):
        raise ApiError(400, "`properties` must be an object.", "invalid", pointer=f"{where}/properties")
    when = attrs.get("time")
    if when is not None:
        try:
            dt.datetime.fromisoformat(str(when))
        except ValueError:
            raise ApiError(400, f"Invalid time {when!r}.", "invalid", pointer=f"{where}/time") from None
    value = attrs.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise ApiError(400, "`value` must be a number.", "invalid", pointer=f"{where}/value")
    return {"metric": metric, "profile_id": "", "properties": properties, "time": when or _now(), "value": value,
            "unique_id": str(attrs.get("unique_id") or uuid.uuid4())}


def _import_error(index: int, err: _ProfileError, item: Any) -> dict[str, Any]:
    pointer = _POINTER.format(index, err.attribute) if err.attribute else f"/data/attributes/profiles/data/{index}"
    payload = item.get("attributes") if isinstance(item, dict) else None
    return {"type": "import-error", "id": str(uuid.uuid4()),
            "attributes": {"code": err.code, "title": "Invalid input.", "detail": err.detail,
                           "source": {"pointer": pointer}, "original_payload": payload}}


def _merge(stored: dict[str, Any], given: Mapping[str, Any]) -> None:
    """Klaviyo's upsert: a key left out keeps its value, ``null`` clears it; ``location`` merges the same way."""
    for key, value in given.items():
        if value is None:
            stored.pop(key, None)
        elif key == "location" and isinstance(value, dict):
            location = stored.setdefault("location", {})
            _merge(location, value)
            if not location:
                stored.pop("location")
        else:
            stored[key] = value


def _folded(key: str, value: Any) -> str:
    text = "" if value is None else str(value)
    return text.lower() if key == "email" else text


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _id() -> str:
    return uuid.uuid4().hex[:26].upper()


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat()


def _json_api(payload: Any, status: int = 200) -> Response:
    """Klaviyo answers in JSON:API, ``Content-Type: application/vnd.api+json`` (the media type of every
    response in ``shared/contracts/klaviyo/*.json``)."""
    response = Response.json(payload, status)
    response.content_type = "application/vnd.api+json"
    return response
