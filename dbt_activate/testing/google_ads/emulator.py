"""Emulator of the Google Ads API v25 (REST): click conversion uploads and Customer Match jobs, with OAuth.

Contract: the v25 protos in ``shared/contracts/google-ads/protos`` (googleapis/googleapis @ f8291d2b;
``services/conversion_upload_service.proto``, ``services/offline_user_data_job_service.proto``,
``common/offline_user_data.proto``, ``google/longrunning/operations.proto``,
``google/rpc/status.proto``), served as REST through their JSON mapping (lowerCamelCase names;
an unknown field is refused with 400 INVALID_ARGUMENT, as ``json_format.Parse`` does, SOURCE.md).
Behaviour from developers.google.com/google-ads/api/docs: conversions/upload-clicks,
best-practices/partial-failures, remarketing/audience-segments/customer-match/get-started,
best-practices/quotas, oauth/overview; error bodies as quoted in
github.com/PipedreamHQ/pipedream/issues/21554 (quota) and github.com/googleads/google-ads-php/issues/896
(developer token). Codes marked [R] were recalled from the API's error enums (``errors/*.proto``,
not copied), not read in the contract.

Emulated:

- ``POST /token`` (OAuth 2.0 refresh grant: ``grant_type=refresh_token``, ``client_id``,
  ``client_secret``, ``refresh_token``) -> ``{"access_token", "expires_in", "token_type"}``, else
  ``400 {"error": "invalid_grant"|"invalid_client", …}``.
- Every API request needs ``Authorization: Bearer <issued token>`` (else 401 UNAUTHENTICATED,
  ``authenticationError: OAUTH_TOKEN_INVALID`` [R]) and the ``developer-token`` (else 403
  PERMISSION_DENIED, ``authorizationError: DEVELOPER_TOKEN_NOT_APPROVED``); a customer reached
  through a manager (``manager_id``) needs ``login-customer-id`` = the manager (else 403
  ``authorizationError: USER_PERMISSION_DENIED``).
- ``POST /v25/customers/{id}:uploadClickConversions``: ``partialFailure`` must be true (400
  otherwise), at most 2,000 conversions (400 ``TOO_MANY_CONVERSIONS_IN_REQUEST`` [R]). Per
  conversion, refused in ``partialFailureError`` with ``location.fieldPathElements``
  ``[{"fieldName": "conversions", "index": i}, …]`` and an empty result at its index: not exactly
  one of gclid/gbraid/wbraid; an unknown conversion action (``NO_CONVERSION_ACTION_FOUND`` [R]); a
  ``conversionDateTime`` not ``yyyy-mm-dd hh:mm:ss+|-hh:mm`` (``dateError``
  ``INVALID_FIELD_VALUES_IN_DATE_TIME`` [R]); with ``clicks`` registered, a gclid not among them
  (``EVENT_NOT_FOUND`` [R]) or a conversion before its click (``CONVERSION_PRECEDES_EVENT`` [R]);
  a conversion already uploaded (same action and ``orderId``, or same click, action and time:
  ``CLICK_CONVERSION_ALREADY_EXISTS`` [R]). ``partial`` faults refuse conversions the same way.
- Offline user data jobs: ``…/offlineUserDataJobs:create`` (type ``CUSTOMER_MATCH_USER_LIST``, a
  known ``userList``) -> ``{"resourceName"}``; ``{job}:addOperations`` (``create``/``remove``/
  ``removeAll``; at most 100,000 identifiers per request and 20 per ``UserData``; hashed values
  must be 64 lower-case hex characters, else ``offlineUserDataJobError: INVALID_SHA256_FORMAT``;
  per operation in ``partialFailureError`` with ``enablePartialFailure``, else the whole request
  400) only while the job is PENDING; ``{job}:run`` -> a ``google.longrunning.Operation``
  ``{"name": "customers/{id}/operations/{n}", "done": false}``; ``GET /v25/customers/{id}/operations/{n}``
  reports ``done`` after ``polls_until_done`` reads, applies the job's operations to the list then
  (in order), or ``error`` when a failure was injected (``fail_next_job``).
- Quotas: the base's rolling window answers ``429 RESOURCE_EXHAUSTED`` with
  ``quotaErrorDetails.retryDelay`` = the seconds until it frees; ``daily_limit`` the same with the
  seconds left in the day ("Number of operations for basic access", rateScope DEVELOPER).

Not emulated: matching (every member is "matched"), the list's size and match rate, enhanced
conversions matching, call conversions, ``validateOnly``, GAQL/``googleAds:search``, consent rules.
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from dbt_activate.testing.limits import DAY_SECONDS, Decision, RateLimit
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

VERSION = "v25"
FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{VERSION}.errors.GoogleAdsFailure"
MAX_CONVERSIONS = 2_000
MAX_IDENTIFIERS_PER_REQUEST = 100_000
MAX_IDENTIFIERS_PER_USER = 20
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
_GRPC_CODE = {"INVALID_ARGUMENT": 3, "INTERNAL": 13, "RESOURCE_EXHAUSTED": 8}
_CUSTOMER = r"/v25/customers/(?P<customer>\d+)"
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d")
_HEX64 = re.compile(r"[0-9a-f]{64}")
CONVERSION_FIELDS = frozenset({"gclid", "gbraid", "wbraid", "conversionAction", "conversionDateTime",
                               "conversionValue", "currencyCode", "orderId", "externalAttributionData",
                               "customVariables", "cartData", "userIdentifiers", "conversionEnvironment",
                               "consent", "customerType", "userIpAddress", "sessionAttributesEncoded",
                               "sessionAttributesKeyValuePairs"})
IDENTIFIER_FIELDS = frozenset({"userIdentifierSource", "hashedEmail", "hashedPhoneNumber", "mobileId",
                               "thirdPartyUserId", "addressInfo"})
ADDRESS_FIELDS = frozenset({"hashedFirstName", "hashedLastName", "city", "state", "countryCode", "postalCode",
                            "hashedStreetAddress"})


def failure(kind: str, code: str, message: str, path: Iterable[tuple[str, int | None]] = (),
            **details: Any) -> dict[str, Any]:
    """One ``GoogleAdsError``: ``{"errorCode": {kind: code}, "message", "location"}``."""
    error: dict[str, Any] = {"errorCode": {kind: code}, "message": message}
    elements = [{"fieldName": name, **({"index": index} if index is not None else {})} for name, index in path]
    if elements:
        error["location"] = {"fieldPathElements": elements}
    if details:
        error["details"] = details
    return error


def rpc_status(status: int, message: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``google.rpc.Status`` carrying a ``GoogleAdsFailure``."""
    name = _STATUS.get(status, "UNKNOWN")
    return {"code": _GRPC_CODE.get(name, status), "message": message, "status": name,
            "details": [{"@type": FAILURE_TYPE, "errors": errors, "requestId": secrets.token_urlsafe(16)}]}


class AdsError(ApiError):
    def __init__(self, status: int, message: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(status, message, _STATUS.get(status, "UNKNOWN"), errors=errors)


@dataclass
class Job:
    resource_name: str
    user_list: str
    status: str = "PENDING"  # PENDING -> RUNNING -> SUCCESS | FAILED
    operations: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    fail: str | None = None


def _member(identifiers: list[dict[str, Any]]) -> str:
    return json.dumps(sorted(identifiers, key=lambda i: json.dumps(i, sort_keys=True)), sort_keys=True)


class GoogleAdsEmulator(Emulator):
    """Google Ads API v25. ``customer_id`` is the account; ``user_lists`` its Customer Match lists (ids);
    ``conversion_actions`` its action ids; ``clicks`` gclid -> click time (``None``: any gclid)."""

    vendor = "google_ads"
    default_rate_limit = RateLimit(10, 1.0)

    def __init__(self, *, customer_id: str = "1234567890", manager_id: str | None = None,
                 developer_token: str = "dev-token-123", client_id: str = "client-id.apps.googleusercontent.com",
                 client_secret: str = "client-secret", refresh_token: str = "refresh-token",
                 user_lists: Iterable[str] = ("5550001",), conversion_actions: Iterable[str] = ("987",),
                 clicks: Mapping[str, datetime] | None = None, polls_until_done: int = 2,
                 **knobs: Any) -> None:
        knobs.setdefault("token", None)
        super().__init__(**knobs)
        self.customer_id, self.manager_id = customer_id, manager_id
        self.developer_token = developer_token
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.tokens: set[str] = set()
        self.lists: dict[str, set[str]] = {f"customers/{customer_id}/userLists/{i}": set() for i in user_lists}
        self.actions = {f"customers/{customer_id}/conversionActions/{i}" for i in conversion_actions}
        self.clicks = None if clicks is None else dict(clicks)
        self.polls_until_done = polls_until_done
        self.conversions: list[dict[str, Any]] = []
        self.jobs: dict[str, Job] = {}
        self.operations: dict[str, str] = {}  # operation name -> job resource name
        self._ids = itertools.count(1)
        self._failing_jobs: list[str] = []
        self.route("POST", r"/token", self._token, auth=False)
        self.route("POST", _CUSTOMER + r":uploadClickConversions", self._upload, writes=True)
        self.route("POST", _CUSTOMER + r"/offlineUserDataJobs:create", self._create_job)
        self.route("POST", _CUSTOMER + r"/offlineUserDataJobs/(?P<job>\d+):addOperations", self._add_operations,
                   writes=True)
        self.route("POST", _CUSTOMER + r"/offlineUserDataJobs/(?P<job>\d+):run", self._run_job)
        self.route("GET", _CUSTOMER + r"/operations/(?P<operation>\d+)", self._get_operation)

    # -- test helpers --------------------------------------------------------------------------

    def members(self, user_list: str) -> set[str]:
        """The list's members, each its ``userIdentifiers`` as canonical JSON."""
        with self.lock:
            return set(self.lists[f"customers/{self.customer_id}/userLists/{user_list}"])

    def member_emails(self, user_list: str) -> set[str]:
        """The hashed emails of the list's members."""
        return {i["hashedEmail"] for m in self.members(user_list) for i in json.loads(m) if "hashedEmail" in i}

    def records(self, obj: str) -> list[Any]:
        """For ``/_emulator/records/{object}``: the uploaded ``conversions``, or a user list's members."""
        if obj == "conversions":
            return self.uploaded()
        return [json.loads(m) for m in sorted(self.members(obj))]

    def uploaded(self) -> list[dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.conversions)

    def fail_next_job(self, message: str = "Internal error encountered.") -> None:
        """The next job run fails: its operation reports ``done`` with an ``error``, nothing applied."""
        with self.lock:
            self._failing_jobs.append(message)

    def job_statuses(self) -> list[str]:
        with self.lock:
            return [j.status for j in self.jobs.values()]

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        token = self.bearer_token(request)
        if token is None or token not in self.tokens:
            return self.error_response(AdsError(401, "Request is missing required authentication credential. "
                                                     "Expected OAuth 2 access token.",
                                                [failure("authenticationError", "OAUTH_TOKEN_INVALID",
                                                         "Oauth token is invalid.")]))
        if request.header("developer-token") != self.developer_token:
            return self.error_response(AdsError(403, "The caller does not have permission",
                                                [failure("authorizationError", "DEVELOPER_TOKEN_NOT_APPROVED",
                                                         "The developer token is not approved.")]))
        if self.manager_id is not None and request.header("login-customer-id") != self.manager_id:
            return self.error_response(AdsError(403, "The caller does not have permission", [failure(
                "authorizationError", "USER_PERMISSION_DENIED",
                "User doesn't have permission to access customer. Note: If you're accessing a client customer, the "
                "manager's customer id must be set in the 'login-customer-id' header.")]))
        return None

    def error_response(self, err: ApiError) -> Response:
        errors = err.extra.get("errors") or [failure("internalError", "INTERNAL_ERROR", err.message)]
        return Response.json({"error": rpc_status(err.status, err.message, errors)}, err.status)

    def server_error(self, status: int) -> Response:
        return self.error_response(AdsError(status, "Internal error encountered.",
                                            [failure("internalError", "INTERNAL_ERROR", "An internal error has "
                                                                                        "occurred.")]))

    def throttled_response(self, decision: Decision) -> Response:
        if decision.policy == "daily":
            delay, scope, name = DAY_SECONDS, "DEVELOPER", "Number of operations for basic access"
        else:
            delay, scope, name = max(1.0, decision.reset), "CUSTOMER", "Requests per customer per second"
        seconds = int(delay + 0.999)
        return self.error_response(AdsError(429, "Resource has been exhausted (e.g. check quota).", [failure(
            "quotaError", "RESOURCE_EXHAUSTED", f"Too many requests. Retry in {seconds} seconds.",
            quotaErrorDetails={"rateScope": scope, "rateName": name, "retryDelay": f"{seconds}s"})]))

    # -- OAuth ---------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.text()).items()}
        if form.get("grant_type") != "refresh_token":
            return Response.json({"error": "unsupported_grant_type",
                                  "error_description": "Invalid grant_type: " + form.get("grant_type", "")}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response.json({"error": "invalid_client", "error_description": "Unauthorized"}, 401)
        if form.get("refresh_token") != self.refresh_token:
            return Response.json({"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
                                 400)
        token = "ya29.emu-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return Response.json({"access_token": token, "expires_in": 3599, "scope": "https://www.googleapis.com/auth/"
                              "adwords", "token_type": "Bearer"})

    # -- conversions ---------------------------------------------------------------------------

    def _customer(self, request: Request) -> str:
        customer = request.params["customer"]
        if customer != self.customer_id:
            raise AdsError(403, "The caller does not have permission", [failure(
                "authorizationError", "USER_PERMISSION_DENIED", "User doesn't have permission to access customer.")])
        return customer

    @staticmethod
    def _unknown_fields(item: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
        for name in item:
            if name not in allowed:
                raise AdsError(400, f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot '
                                    "find field.", [failure("requestError", "UNKNOWN", "Unknown field.")])

    def _upload(self, request: Request) -> Response:
        self._customer(request)
        body = request.json_object()
        self._unknown_fields(body, frozenset({"conversions", "partialFailure", "validateOnly", "jobId"}), "")
        conversions = body.get("conversions")
        if not isinstance(conversions, list) or not conversions:
            raise AdsError(400, "Request contains an invalid argument.",
                           [failure("requestError", "REQUIRED_FIELD_MISSING", "Required field was not specified.",
                                    [("conversions", None)])])
        if body.get("partialFailure") is not True:
            raise AdsError(400, "Request contains an invalid argument.", [failure(
                "requestError", "INVALID_INPUT", "partial_failure must be set to true for uploadClickConversions.",
                [("partial_failure", None)])])
        if len(conversions) > MAX_CONVERSIONS:
            raise AdsError(400, "Request contains an invalid argument.", [failure(
                "conversionUploadError", "TOO_MANY_CONVERSIONS_IN_REQUEST",
                f"The request contains more than {MAX_CONVERSIONS} conversions.")])
        for index, item in enumerate(conversions):
            if not isinstance(item, dict):
                raise AdsError(400, "Invalid JSON payload received.", [failure("requestError", "INVALID_INPUT",
                                                                               "A conversion must be an object.")])
            self._unknown_fields(item, CONVERSION_FIELDS, f"conversions[{index}]")
        self.count_records(len(conversions))
        errors: list[dict[str, Any]] = []
        results: list[dict[str, Any]] = []
        with self.lock:
            for index, item in enumerate(conversions):
                problem = self._conversion_problem(item)
                if problem is None and request.fails(index, len(conversions)):
                    problem = ("conversionUploadError", "UNPARSEABLE_GCLID", "The click ID could not be decoded.",
                               "gclid")
                if problem is not None:
                    kind, code, message, at = problem
                    errors.append(failure(kind, code, message, [("conversions", index), (at, None)]))
                    results.append({})
                    continue
                self.conversions.append(dict(item))
                results.append({k: item[k] for k in ("gclid", "gbraid", "wbraid", "conversionAction",
                                                     "conversionDateTime") if k in item})
        answer: dict[str, Any] = {"results": results}
        if errors:
            message = "; ".join(f"{e['message']}, at conversions[{e['location']['fieldPathElements'][0]['index']}]"
                                for e in errors)
            answer["partialFailureError"] = rpc_status(400, message, errors)
        return Response.json(answer)

    def _conversion_problem(self, item: Mapping[str, Any]) -> tuple[str, str, str, str] | None:
        clicks = [k for k in ("gclid", "gbraid", "wbraid") if item.get(k)]
        if len(clicks) != 1:
            return ("conversionUploadError", "INVALID_INPUT" if clicks else "REQUIRED_FIELD_MISSING",
                    "Exactly one of gclid, gbraid and wbraid must be set.", "gclid")
        if item.get("conversionAction") not in self.actions:
            return ("conversionUploadError", "NO_CONVERSION_ACTION_FOUND",
                    "The conversion action specified in the upload request cannot be found.", "conversion_action")
        when = str(item.get("conversionDateTime") or "")
        if not _TIME.fullmatch(when):
            return ("dateError", "INVALID_FIELD_VALUES_IN_DATE_TIME", "The date time has invalid field values; "
                    "expected yyyy-mm-dd hh:mm:ss+|-hh:mm.", "conversion_date_time")
        converted = datetime.fromisoformat(when)
        gclid = item.get("gclid")
        if self.clicks is not None and gclid is not None:
            clicked = self.clicks.get(str(gclid))
            if clicked is None:
                return ("conversionUploadError", "EVENT_NOT_FOUND", "The click associated with the given identifier "
                        "was not found in the specified conversion action's account.", "gclid")
            if converted < clicked:
                return ("conversionUploadError", "CONVERSION_PRECEDES_EVENT",
                        "The conversion happened before the click.", "conversion_date_time")
        for done in self.conversions:
            same_order = item.get("orderId") and done.get("orderId") == item.get("orderId")
            same_click = all(done.get(k) == item.get(k) for k in (clicks[0], "conversionDateTime"))
            if done.get("conversionAction") == item.get("conversionAction") and (same_order or same_click):
                return ("conversionUploadError", "CLICK_CONVERSION_ALREADY_EXISTS",
                        "This conversion has already been uploaded.", "order_id" if same_order else clicks[0])
        return None

    # -- Customer Match jobs -------------------------------------------------------------------

    def _job(self, request: Request) -> Job:
        name = f"customers/{self._customer(request)}/offlineUserDataJobs/{request.params['job']}"
        job = self.jobs.get(name)
        if job is None:
            raise AdsError(404, "Requested entity was not found.", [failure(
                "mutateError", "RESOURCE_NOT_FOUND", "The requested resource was not found.")])
        return job

    def _create_job(self, request: Request) -> Response:
        customer = self._customer(request)
        body = request.json_object()
        job = body.get("job")
        if not isinstance(job, dict) or job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            raise AdsError(400, "Request contains an invalid argument.", [failure(
                "offlineUserDataJobError", "INVALID_JOB_TYPE" if isinstance(job, dict) else "REQUIRED_FIELD_MISSING",
                "The emulator runs CUSTOMER_MATCH_USER_LIST jobs only.", [("job", None)])])
        metadata = job.get("customerMatchUserListMetadata")
        user_list = metadata.get("userList") if isinstance(metadata, dict) else None
        with self.lock:
            if user_list not in self.lists:
                raise AdsError(400, "Request contains an invalid argument.", [failure(
                    "offlineUserDataJobError", "INVALID_USER_LIST_ID", "The user list ID provided for the job is "
                    "invalid.", [("job", None), ("customer_match_user_list_metadata", None), ("user_list", None)])])
            name = f"customers/{customer}/offlineUserDataJobs/{next(self._ids)}"
            self.jobs[name] = Job(name, str(user_list))
        return Response.json({"resourceName": name})

    def _identifier_problem(self, identifier: Any) -> str | None:
        if not isinstance(identifier, dict):
            return "A user identifier must be an object."
        unknown = set(identifier) - IDENTIFIER_FIELDS
        if unknown:
            return f"Unknown field {sorted(unknown)[0]!r} in a user identifier."
        hashes = [identifier.get(k) for k in ("hashedEmail", "hashedPhoneNumber")]
        address = identifier.get("addressInfo")
        if isinstance(address, dict):
            hashes += [address.get(k) for k in ("hashedFirstName", "hashedLastName", "hashedStreetAddress")]
            if set(address) - ADDRESS_FIELDS:
                return "Unknown field in addressInfo."
        for value in hashes:
            if value is not None and not _HEX64.fullmatch(str(value)):
                return "INVALID_SHA256_FORMAT"
        return None

    def _operation_problem(self, operation: Any) -> tuple[str, str] | None:
        if not isinstance(operation, dict) or len(operation) != 1 or next(iter(operation)) not in (
                "create", "remove", "removeAll"):
            return "INVALID_INPUT", "An operation must set exactly one of create, remove and removeAll."
        kind, data = next(iter(operation.items()))
        if kind == "removeAll":
            return None
        identifiers = data.get("userIdentifiers") if isinstance(data, dict) else None
        if not isinstance(identifiers, list) or not identifiers:
            return "MISSING_USER_IDENTIFIER" if isinstance(data, dict) else "INVALID_INPUT", \
                "The UserData has no user identifier."
        if len(identifiers) > MAX_IDENTIFIERS_PER_USER:
            return "TOO_MANY_USER_IDENTIFIERS", f"A UserData has at most {MAX_IDENTIFIERS_PER_USER} identifiers."
        for identifier in identifiers:
            problem = self._identifier_problem(identifier)
            if problem == "INVALID_SHA256_FORMAT":
                return problem, "The SHA256 encoded value is malformed."
            if problem is not None:
                return "INVALID_INPUT", problem
        return None

    def _add_operations(self, request: Request) -> Response:
        body = request.json_object()
        operations = body.get("operations")
        if not isinstance(operations, list) or not operations:
            raise AdsError(400, "Request contains an invalid argument.", [failure(
                "requestError", "REQUIRED_FIELD_MISSING", "Required field was not specified.", [("operations", None)])])
        identifiers = sum(len(data.get("userIdentifiers") or []) for o in operations if isinstance(o, dict)
                          for data in o.values() if isinstance(data, dict))
        if identifiers > MAX_IDENTIFIERS_PER_REQUEST:
            raise AdsError(400, "Request contains an invalid argument.", [failure(
                "offlineUserDataJobError", "TOO_MANY_IDENTIFIERS",
                f"A request can hold at most {MAX_IDENTIFIERS_PER_REQUEST} user identifiers.")])
        self.count_records(len(operations))
        partial = body.get("enablePartialFailure") is True
        errors: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        for index, operation in enumerate(operations):
            problem = self._operation_problem(operation)
            if problem is None and request.fails(index, len(operations)):
                problem = ("INVALID_SHA256_FORMAT", "The SHA256 encoded value is malformed.")
            if problem is None:
                accepted.append(operation)
            else:
                errors.append(failure("offlineUserDataJobError", problem[0], problem[1], [("operations", index)]))
        if errors and not partial:
            raise AdsError(400, "Request contains an invalid argument.", errors)
        with self.lock:
            job = self._job(request)
            if job.status != "PENDING":
                raise AdsError(400, "Request contains an invalid argument.", [failure(
                    "requestError", "INVALID_INPUT", f"Operations can be added to a PENDING job only; this one is "
                    f"{job.status}.")])
            job.operations.extend(accepted)
        if errors:
            return Response.json({"partialFailureError": rpc_status(400, "; ".join(e["message"] for e in errors),
                                                                    errors)})
        return Response.json({})

    def _run_job(self, request: Request) -> Response:
        with self.lock:
            job = self._job(request)
            if job.status != "PENDING":
                raise AdsError(400, "Request contains an invalid argument.", [failure(
                    "requestError", "INVALID_INPUT", f"Only a PENDING job can be run; this one is {job.status}.")])
            job.status = "RUNNING"
            if self._failing_jobs:
                job.fail = self._failing_jobs.pop(0)
            operation = f"customers/{self.customer_id}/operations/{next(self._ids)}"
            self.operations[operation] = job.resource_name
        return Response.json({"name": operation, "metadata": {
            "@type": f"type.googleapis.com/google.ads.googleads.{VERSION}.resources.OfflineUserDataJobMetadata"},
            "done": False})

    def _get_operation(self, request: Request) -> Response:
        name = f"customers/{self._customer(request)}/operations/{request.params['operation']}"
        with self.lock:
            job_name = self.operations.get(name)
            if job_name is None:
                raise AdsError(404, "Requested entity was not found.", [failure(
                    "mutateError", "RESOURCE_NOT_FOUND", "The requested resource was not found.")])
            job = self.jobs[job_name]
            job.polls += 1
            answer: dict[str, Any] = {"name": name, "done": False, "metadata": {
                "@type": f"type.googleapis.com/google.ads.googleads.{VERSION}.resources.OfflineUserDataJobMetadata"}}
            if job.status == "RUNNING" and job.polls >= self.polls_until_done:
                if job.fail is not None:
                    job.status = "FAILED"
                else:
                    self._apply(job)
                    job.status = "SUCCESS"
            if job.status == "FAILED":
                answer.update(done=True, error={"code": 13, "message": job.fail or "Internal error encountered."})
            elif job.status == "SUCCESS":
                answer.update(done=True, response={"@type": "type.googleapis.com/google.protobuf.Empty"})
        return Response.json(answer)

    def _apply(self, job: Job) -> None:
        members = self.lists[job.user_list]
        for operation in job.operations:
            kind, data = next(iter(operation.items()))
            if kind == "removeAll":
                members.clear()
                continue
            identifiers = data["userIdentifiers"]
            if kind == "create":
                members.add(_member(identifiers))
                continue
            wanted = {json.dumps(i, sort_keys=True) for i in identifiers}
            for member in [m for m in members if wanted & {json.dumps(i, sort_keys=True) for i in json.loads(m)}]:
                members.discard(member)
