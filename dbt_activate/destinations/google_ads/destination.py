"""``google_ads``: offline click conversions and Customer Match lists through the Google Ads API (REST, v25).

Configuration (``destinations.yml``)::

    google_ads:
      type: google_ads
      developer_token: "{{ env_var('GOOGLE_ADS_DEVELOPER_TOKEN') }}"     # required
      client_id: "{{ env_var('GOOGLE_ADS_CLIENT_ID') }}"                 # OAuth client (required)
      client_secret: "{{ env_var('GOOGLE_ADS_CLIENT_SECRET') }}"         # required
      refresh_token: "{{ env_var('GOOGLE_ADS_REFRESH_TOKEN') }}"         # required
      customer_id: 123-456-7890          # the account written to (required)
      login_customer_id: 111-222-3333    # the manager account, when access goes through one
      conversion_action: 987654321       # default action of conversions (id or resource name)
      currency_code: EUR                 # default currency of conversion values
      phone_country_code: "44"           # for national phone numbers (0…): the country calling code
      consent: {ad_user_data: GRANTED, ad_personalization: GRANTED}      # sent with jobs and conversions
      base_url: https://googleads.googleapis.com    # default; an emulator's URL in tests
      token_url: https://oauth2.googleapis.com/token

Objects (contracts: ``shared/contracts/google-ads``, the v25 protos; REST is their JSON mapping):

- ``conversions`` (mode ``append``): ``POST /v25/customers/{customer_id}:uploadClickConversions``
  with ``{"conversions": [...], "partialFailure": true}``, up to 2,000 conversions per request
  (developers.google.com/google-ads/api/docs/best-practices/quotas). The fields are in
  ``google_ads_payload``. Google refuses a single conversion (an unknown gclid, a conversion older
  than the click…) in ``partialFailureError``, by index: only that row is rejected, with Google's
  code and message; the others are acknowledged. A removed row is skipped: an uploaded conversion
  cannot be taken back.
- ``<user list id>`` (modes ``upsert`` and ``mirror``): Customer Match through an offline user data
  job per batch (``google_ads_jobs``: create, add operations, run, poll until done; one job per
  ``job_size`` rows, so a run of a list makes one job for its additions and one for its removals).
  A new or changed row is a ``create`` of its hashed identifiers; a changed row whose identifiers
  changed also ``remove``\\ s the old ones; a row that left the model or segment is removed (mirror).
  The hashed identifiers last sent are kept in the state's record-id table (hashes only), because
  a removal must name the member by them: the sync's identity must therefore not be a personal
  field (use a customer id as primary key, never ``match`` on email). Jobs run one at a time: Google
  refuses concurrent jobs on one list (CONCURRENT_MODIFICATION).

Every request carries ``Authorization: Bearer <access token>`` (minted from the refresh token,
``google_ads_auth``), ``developer-token`` and, when set, ``login-customer-id``. Emails, phone numbers
and names are normalised and SHA-256 hashed in this process (``google_ads_hashing``); a 64-hex value
is taken as already hashed. Errors (``google_ads_results``): RESOURCE_EXHAUSTED is retried under
the rate limiter after Google's ``retryDelay``; a daily quota stops the sync (the rest goes with the
next run); authentication, developer-token and permission errors stop the sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
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
from dbt_activate.delivery import JSON_HEADERS, json_body
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
from dbt_activate.destinations.google_ads.auth import TOKEN_URL, RefreshTokenAuth
from dbt_activate.destinations.google_ads.jobs import CustomerMatchJob, JobSettings
from dbt_activate.destinations.google_ads.payload import (
    CONVERSION_FIELDS,
    PERSONAL_FIELDS,
    USER_FIELDS,
    Account,
    click_conversion,
    user_identifiers,
)
from dbt_activate.destinations.google_ads.results import (
    check_response,
    partial_failures,
    request_refused,
    unexpected,
)
from dbt_activate.destinations.jobs import job_keys, job_polling
from dbt_activate.destinations.pii import country_calling_code
from dbt_activate.errors import ConfigError, DestinationError

API_VERSION = "v25"
BASE_URL = "https://googleads.googleapis.com"
CONVERSIONS = "conversions"
MAX_CONVERSIONS = 2_000
MAX_OPERATIONS = 100_000  # identifiers per addOperations request
DEFAULT_OPERATIONS = 10_000  # Google's recommendation per request
DEFAULT_JOB_SIZE = 100_000
MAX_JOB_SIZE = 1_000_000
CONSENT_KEYS = {"ad_user_data": "adUserData", "ad_personalization": "adPersonalization"}
CONSENT_VALUES = ("GRANTED", "DENIED", "UNSPECIFIED", "UNKNOWN")
# Google's answer to a conversion it already has (same order id, or same click, action and time) [R].
ALREADY_UPLOADED = frozenset({"CLICK_CONVERSION_ALREADY_EXISTS", "ORDER_ID_ALREADY_IN_USE"})
_USER_LIST = re.compile(r"(?:customers/(\d+)/userLists/)?(\d+)")
# Google processes a Customer Match job in minutes to hours: a poll every 5 s, for up to an hour.
_JOB_KEYS = job_keys(interval=5, timeout=3600, then="the batch fails (nothing acknowledged)",
                     interval_help="Seconds between two polls of a running Customer Match job.",
                     old_interval="poll_interval", old_timeout="poll_timeout")


def _customer_id(name: str, config: Mapping[str, Any], key: str, *, required: bool) -> str | None:
    raw = config.get(key)
    if raw in (None, ""):
        if required:
            raise ConfigError("is required: the 10-digit account id (dashes allowed)", location=f"{name}.{key}")
        return None
    digits = str(raw).replace("-", "").strip()
    if not digits.isdigit() or len(digits) != 10:
        raise ConfigError(f"must be a 10-digit Google Ads customer id like 123-456-7890, got {raw!r}",
                          location=f"{name}.{key}")
    return digits


def _positive(name: str, config: Mapping[str, Any], key: str, default: float, *, maximum: float | None = None
              ) -> float:
    value = config.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or (
            maximum is not None and value > maximum):
        limit = f" and at most {maximum:,g}" if maximum is not None else ""
        raise ConfigError(f"must be a number above 0{limit}, got {value!r}", location=f"{name}.{key}")
    return float(value)


def _consent(name: str, config: Mapping[str, Any]) -> dict[str, str] | None:
    raw = config.get("consent")
    if raw is None:
        return None
    consent: dict[str, str] = {}
    for key, value in dict(raw).items():
        if key not in CONSENT_KEYS or str(value).upper() not in CONSENT_VALUES:
            raise ConfigError(f"expected {{ad_user_data: GRANTED|DENIED, ad_personalization: GRANTED|DENIED}}, got "
                              f"{key}: {value!r}", location=f"{name}.consent")
        consent[CONSENT_KEYS[key]] = str(value).upper()
    return consent


class GoogleAdsDestination(AdPlatformDestination):
    kind = "google_ads"
    description = ("Google Ads: offline click conversions (object conversions, append) and Customer Match "
                   "user lists (object <user list id>, upsert/mirror), with identifiers hashed in process.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("developer_token", str, required=True, secret=True, help="The Google Ads API developer token."),
        ConfigKey("client_id", str, required=True, help="OAuth 2.0 client id."),
        ConfigKey("client_secret", str, required=True, secret=True, help="OAuth 2.0 client secret."),
        ConfigKey("refresh_token", str, required=True, secret=True,
                  help="OAuth 2.0 refresh token of a user with access to the account (scope adwords)."),
        ConfigKey("customer_id", (str, int), required=True, help="The account written to: 123-456-7890."),
        ConfigKey("login_customer_id", (str, int),
                  help="The manager account through which access is granted (login-customer-id header)."),
        ConfigKey("conversion_action", (str, int),
                  help="Default conversion action of conversions: its id or resource name."),
        ConfigKey("currency_code", str, help="Default currency (ISO 4217) of conversion values."),
        ConfigKey("phone_country_code", (str, int),
                  help="Country calling code given to national phone numbers (those starting with 0), e.g. 44."),
        ConfigKey("consent", dict,
                  help="{ad_user_data, ad_personalization}: GRANTED or DENIED, sent with Customer Match jobs "
                       "and conversions (required for users in the EEA)."),
        ConfigKey("token_url", str, default=TOKEN_URL, help="OAuth token endpoint."),
        ConfigKey("api_version", str, default=API_VERSION, help="API version in the request paths."),
        ConfigKey("job_size", int, default=DEFAULT_JOB_SIZE,
                  help=f"Customer Match rows per offline user data job, 1-{MAX_JOB_SIZE:,}."),
        ConfigKey("operations_per_request", int, default=DEFAULT_OPERATIONS,
                  help=f"Customer Match operations per addOperations request, 1-{MAX_OPERATIONS:,} (Google "
                       f"recommends {DEFAULT_OPERATIONS:,})."),
        *_JOB_KEYS,
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Conversions per request, 1-{MAX_CONVERSIONS:,} (Google's maximum, the default).",
        "rate_limit": " (Google publishes no fixed rate; RESOURCE_EXHAUSTED answers slow the limiter down).",
    }
    default_base_url = BASE_URL
    default_timeout = 60.0
    batch_size = MAX_CONVERSIONS
    max_concurrency = 1
    rate_limit = RateLimit(5, 1.0)
    objects = (f"{CONVERSIONS} (append; {MAX_CONVERSIONS:,} per request)",
               f"<user list id> (upsert, mirror; a Customer Match job per {DEFAULT_JOB_SIZE:,} rows)")

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.version = self.settings.text("api_version")
        self.customer_id = _customer_id(name, config, "customer_id", required=True) or ""
        self.login_customer_id = _customer_id(name, config, "login_customer_id", required=False)
        self.consent = _consent(name, config)
        action = config.get("conversion_action")
        currency = config.get("currency_code")
        self.account = Account(self.customer_id, str(action) if action not in (None, "") else None,
                               str(currency).upper() if currency else None, country_calling_code(name, config))
        self.conversion_batch = int(_positive(name, config, "batch_size", MAX_CONVERSIONS, maximum=MAX_CONVERSIONS))
        self.job_size = int(_positive(name, config, "job_size", DEFAULT_JOB_SIZE, maximum=MAX_JOB_SIZE))
        self.job_settings = JobSettings(
            self.version, self.customer_id,
            int(_positive(name, config, "operations_per_request", DEFAULT_OPERATIONS, maximum=MAX_OPERATIONS)),
            job_polling(name, config, _JOB_KEYS), self.consent)
        text = self.settings.text
        self.auth = RefreshTokenAuth(name, text("client_id"), text("client_secret"), text("refresh_token"),
                                     text("token_url"))
        self._object: str | None = None  # the object of the sync being served, set by open()

    # -- the seam ------------------------------------------------------------------------------

    @property
    def effective_batch_size(self) -> int:
        return self.conversion_batch if self._object in (None, CONVERSIONS) else self.job_size

    def estimate_requests(self, operation: Operation, records: int) -> int:
        if operation is Operation.APPEND:
            return -(-records // self.conversion_batch)
        jobs = -(-records // self.job_size)
        adds = -(-records // self.job_settings.operations_per_request)
        return jobs * 3 + adds  # create, run, a poll (at least) per job; addOperations per chunk

    def check_target(self, target: SyncTarget) -> None:
        where = f"sync {target.sync_name}"
        if target.object == CONVERSIONS:
            if target.mode is not Mode.APPEND:
                raise ConfigError(f"object conversions takes mode append (every row is a conversion), not "
                                  f"{target.mode.value}", location=where)
            if not set(target.field_names) & set(CONVERSION_FIELDS):
                raise ConfigError(f"no conversion field is mapped: map {', '.join(CONVERSION_FIELDS)}",
                                  location=where)
            return
        if _USER_LIST.fullmatch(target.object) is None:
            raise ConfigError(f"object {target.object!r} is neither conversions nor a user list id (digits, or "
                              "customers/<id>/userLists/<id>)", location=where)
        if target.mode is Mode.APPEND:
            raise ConfigError("a Customer Match list takes mode upsert or mirror", location=where)
        self.check_identity(target, PERSONAL_FIELDS, " and map the identifiers as fields")
        if not set(target.field_names) & set(USER_FIELDS):
            raise ConfigError(f"no Customer Match identifier is mapped: map {', '.join(USER_FIELDS)}",
                              location=where)

    async def open(self, target: SyncTarget) -> None:
        await super().open(target)
        self._object = target.object

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        self._object = target.object
        if target.object == CONVERSIONS:
            return await self._write_conversions(target, batch)
        return await self._write_members(target, batch)

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        headers = {"developer-token": "***", "Authorization": "Bearer <access token from refresh_token>"}
        if self.login_customer_id:
            headers["login-customer-id"] = self.login_customer_id
        if target.object == CONVERSIONS:
            body, _ = self._conversions_body(batch, BatchResult())
            return {"method": "POST", "url": self.base_url + self._conversions_path(), "headers": headers,
                    "body": body}
        if batch.operation is Operation.DELETE:  # plan has no record-id store: say where the hashes come from
            operations: list[dict[str, Any]] = [{"remove": {"userIdentifiers": KEPT_HASHES}}] * len(batch.records)
        else:
            operations, _ = self._member_operations(target, batch, BatchResult(), MemoryIdStore())
        job = self._job()
        prefix = f"{self.base_url}/{self.version}/customers/{self.customer_id}/offlineUserDataJobs/<job id>"
        return {"method": "POST", "url": self.base_url + job.create_path(), "headers": headers,
                "body": job.create_body(self._user_list(target)),
                "then": [{"method": "POST", "url": prefix + ":addOperations",
                          "body": {"operations": operations, "enablePartialFailure": True}},
                         {"method": "POST", "url": prefix + ":run"},
                         {"method": "GET", "url": f"{self.base_url}/{self.version}/customers/{self.customer_id}"
                                                  "/operations/<operation id>",
                          "repeat": f"every {self.job_settings.polling.interval:g}s until done"}]}

    # -- conversions ---------------------------------------------------------------------------

    def _conversions_path(self) -> str:
        return f"/{self.version}/customers/{self.customer_id}:uploadClickConversions"

    def _conversions_body(self, batch: Batch, result: BatchResult) -> tuple[dict[str, Any], list[str]]:
        conversions, keys = hashed_each(batch, result, self._conversion)
        return {"conversions": conversions, "partialFailure": True}, keys

    def _conversion(self, record: Record) -> dict[str, Any]:
        conversion = click_conversion(record.values, self.account)
        if self.consent:
            conversion["consent"] = dict(self.consent)
        return conversion

    async def _write_conversions(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if batch.operation is not Operation.APPEND:
            return skip_all(batch, "an uploaded conversion cannot be deleted or cleared")
        result = BatchResult()
        body, keys = self._conversions_body(batch, result)
        if not keys:
            return result
        response = await self._send("POST", self._conversions_path(), body)
        if 400 <= response.status_code < 500:
            result.rejected.update(dict.fromkeys(keys, request_refused(self.name, response, self.redactor)))
            return result
        if response.status_code != 200:
            raise unexpected(self.name, response, "uploadClickConversions", self.redactor)
        by_index, unnamed = partial_failures(json_object(response), "conversions", self.redactor)
        for index, (code, reason) in by_index.items():
            # Already uploaded (a batch resent after its answer was lost): Google has it, which is the goal.
            if 0 <= index < len(keys) and code not in ALREADY_UPLOADED:
                result.rejected[keys[index]] = reason
        if unnamed:
            # An error that names no conversion: only those Google returned a result for are known to be in.
            results = json_object(response).get("results")
            answered = results if isinstance(results, list) else []
            for index, key in enumerate(keys):
                if key not in result.rejected and not (index < len(answered) and answered[index]):
                    result.rejected[key] = unnamed
        return result

    # -- Customer Match ------------------------------------------------------------------------

    def _user_list(self, target: SyncTarget) -> str:
        found = _USER_LIST.fullmatch(target.object)
        if found is None:
            raise DestinationError(f"sync {target.sync_name}: object {target.object!r} is not a user list id")
        return f"customers/{found.group(1) or self.customer_id}/userLists/{found.group(2)}"

    def _job(self) -> CustomerMatchJob:
        return CustomerMatchJob(self.name, self.job_settings, self._send, self.redactor)

    def _member_operations(self, target: SyncTarget, batch: Batch, result: BatchResult, store: RecordIdStore
                           ) -> tuple[list[dict[str, Any]], list[Owner]]:
        """The job's operations and, per operation, its owner (record key, store key, identifiers json to keep)."""
        if batch.operation not in (Operation.UPSERT, Operation.DELETE):
            raise DestinationError(f"sync {target.sync_name}: Customer Match cannot {batch.operation.value}")
        operations: list[dict[str, Any]] = []
        owners: list[Owner] = []
        for owner, old, identifiers in member_changes(target, batch, result, store, self._identifiers):
            if old is not None:
                operations.append({"remove": {"userIdentifiers": json.loads(old)}})
                owners.append(owner)
            if identifiers is not None:
                operations.append({"create": {"userIdentifiers": identifiers}})
                owners.append(owner)
        return operations, owners

    def _identifiers(self, record: Record) -> tuple[list[dict[str, Any]], str]:
        """A member's ``userIdentifiers``, and their text as kept in the record-id table."""
        identifiers = user_identifiers(record.values, self.account)
        return identifiers, json.dumps(identifiers, sort_keys=True, separators=(",", ":"))

    async def _write_members(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        store = self.record_id_store()
        operations, owners = self._member_operations(target, batch, result, store)
        if not operations:
            return result
        refused, _ = await self._job().run(self._user_list(target), operations)
        for index, reason in refused.items():
            if 0 <= index < len(owners):
                result.rejected.setdefault(owners[index][0], reason)
        remember_members(store, owners, result.rejected)
        return result

    # -- requests ------------------------------------------------------------------------------

    def session_headers(self) -> Mapping[str, str]:
        return {"developer-token": self.settings.text("developer_token")}

    def session_options(self) -> Mapping[str, Any]:
        return {"response_hook": lambda response: check_response(self.name, response, self.redactor)}

    async def _send(self, method: str, path: str, body: Mapping[str, Any] | None) -> httpx.Response:
        session = self.session()
        headers = dict(await self.auth.header(session))
        if self.login_customer_id:
            headers["login-customer-id"] = self.login_customer_id
        if body is None:
            return await session.request(method, path, headers=headers)
        return await session.request(method, path, content=json_body(body), headers={**headers, **JSON_HEADERS})
