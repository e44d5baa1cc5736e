"""``ApiDestination``: the HTTP plumbing every API destination shares, written once.

A vendor's destination (``hubspot``, ``klaviyo``, ``zendesk``, …) subclasses ``ApiDestination`` and
keeps only what is its own: how a batch becomes requests and how answers become per-record results.
What the base owns:

================================  =================================================================
config                            checked once into ``self.settings``, a frozen ``ApiSettings`` with
                                  the declared ``ConfigKey`` defaults applied: code reads
                                  ``self.settings.text("revision")``, never
                                  ``config.get("revision") or default``
``base_url``                      the vendor's origin by default, an http(s) URL without a trailing
                                  slash, else a config error naming the key (exit code 2)
``batch_size``                    1 to the vendor's documented maximum (``max_batch_size``)
``rate_limit``, ``nulls``         their shapes checked before the first request
``job_poll_interval``,            not here: ``destinations/jobs.py`` declares and reads the one pair
``job_timeout``                   of knobs of every vendor whose batches become jobs (Salesforce too)
session                           one ``HttpSession`` per destination (and purpose), opened on first
                                  use with the vendor's headers, closed by ``close()``; ``transport=``
                                  replaces the network (``httpx.MockTransport`` in unit tests)
identity                          ``single_identity``: vendors that find a record by one field
rejection reasons                 ``clip_reason``: one length limit (``REASON_LIMIT``) for every vendor
JSON answers                      ``json_object``: a response body that is a JSON object, else ``{}``
``plan``                          ``describe_request`` and ``estimate_requests`` from ``requests``,
                                  a table of what each operation sends
================================  =================================================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from dbt_activate.core.types import Batch, Operation, SyncTarget
from dbt_activate.delivery import HttpSession
from dbt_activate.destinations.base import COMMON_CONFIG_KEYS, ConfigKey, Destination, check_nulls_key, configured
from dbt_activate.errors import ConfigError, DestinationError, Redactor

# Rejection reasons end up in the results document and the terminal: long enough for a vendor's
# message and the field it names, short enough that a whole HTML error page never becomes one.
REASON_LIMIT = 300


def clip_reason(text: str, limit: int = REASON_LIMIT) -> str:
    """A rejection reason of at most ``limit`` characters, an ellipsis marking a cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def await_all(calls: Iterable[Awaitable[None]]) -> None:
    """Await every call; then raise the first failure, once none is left running (a request never
    outlives the batch that sent it)."""
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response's body when it is a JSON object; ``{}`` for anything else (HTML, empty, a list)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def http_base_url(name: str, config: Mapping[str, Any], default: str) -> str:
    """The ``base_url`` of an HTTP destination (its vendor's origin by default), without a trailing
    slash; anything but an http(s) URL is a configuration error naming the key."""
    return checked_base_url(name, str(config.get("base_url") or default))


def checked_base_url(name: str, url: str) -> str:
    base_url = url.rstrip("/")
    if urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigError(f"base_url must start with https:// (or http:// for a local emulator), "
                          f"got {base_url!r}", location=f"{name}.base_url")
    return base_url


@dataclass(frozen=True)
class ApiSettings:
    """A destination's config, checked once, with the declared defaults applied.

    The keys every API destination reads are typed attributes; the type's own keys are read by kind
    (``text``, ``number``, ``flag``, ``get``) from ``values``, which holds every declared key: the
    configured value, else (missing or empty) the ``ConfigKey`` default. The ``ConfigKey`` table stays
    the one place a key and its default are written, for validation, docs and code alike.
    """

    base_url: str
    batch_size: int
    max_concurrency: int
    timeout: float
    values: Mapping[str, Any]

    def get(self, key: str) -> Any:
        """A declared key's value (None when it has neither value nor default)."""
        if key not in self.values:
            raise KeyError(f"{key!r} is not a declared config key of this destination type")
        return self.values[key]

    def text(self, key: str) -> str:
        value = self.get(key)
        return "" if value is None else str(value)

    def number(self, key: str) -> float:
        return float(self.get(key) or 0)

    def flag(self, key: str) -> bool:
        return bool(self.get(key))


def read_settings(keys: tuple[ConfigKey, ...], config: Mapping[str, Any], *, base_url: str, batch_size: int,
                  max_concurrency: int, timeout: float) -> ApiSettings:
    """The settings of ``config``: a missing or empty key takes its declared default (as
    ``config.get(key) or default`` did, once, here)."""
    values = {}
    for key in (*COMMON_CONFIG_KEYS, *keys):
        value = configured(key, config)
        values[key.name] = key.default if value is None or value == "" else value
    return ApiSettings(base_url, batch_size, max_concurrency, timeout, MappingProxyType(values))


def check_rate_limit(name: str, value: Any) -> None:
    """``rate_limit`` is ``{requests: N, per_seconds: S}`` with N >= 1 and S > 0."""
    if value is None:
        return
    requests, seconds = (value.get("requests"), value.get("per_seconds", 1)) if isinstance(value, dict) else (0, 0)
    if not (isinstance(requests, int) and requests >= 1 and isinstance(seconds, (int, float)) and seconds > 0):
        raise ConfigError(f"rate_limit must be {{requests: N, per_seconds: S}} with N >= 1 and S > 0, got {value!r}",
                          location=f"{name}.rate_limit")


def check_seconds(name: str, config: Mapping[str, Any], key: str) -> None:
    """A duration key, when given, is a positive number of seconds."""
    value = config.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
        raise ConfigError(f"{key} must be a positive number of seconds, got {value!r}", location=f"{name}.{key}")


def one_of(name: str, key: str, value: str, allowed: tuple[str, ...]) -> str:
    """``value`` of ``key`` when it is one of ``allowed``, else a config error naming the choices."""
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(allowed)}, got {value!r}", location=f"{name}.{key}")
    return value


def header_values(value: Any, *, location: str, problem: str) -> dict[str, str]:
    """A ``headers`` key (name -> value) as strings; anything but a mapping is ``problem`` at ``location``."""
    headers = value or {}
    if not isinstance(headers, Mapping):
        raise ConfigError(problem, location=location)
    return {str(k): str(v) for k, v in headers.items()}


def single_identity(target: SyncTarget, finds: str, hint: str, *, during_write: bool = False) -> str:
    """The identity rule of vendors that find a record by one field: that field, else an error
    saying how the vendor ``finds`` records and what to set instead (``hint``): a config error when
    the sync is checked, a destination error when a batch is already being written."""
    if len(target.identity) == 1:
        return target.identity[0]
    message = (f"{finds}, but this sync identifies records by {len(target.identity)} fields "
               f"({', '.join(target.identity) or 'none'}); {hint}")
    where = f"sync {target.sync_name}"
    if during_write:
        raise DestinationError(f"{where}: {message}")
    raise ConfigError(message, location=where)


STANDARD_KEYS = ("batch_size", "max_concurrency", "rate_limit", "nulls", "timeout")


def standard_keys(cls: type[ApiDestination]) -> list[ConfigKey]:
    """The keys every API type takes, declared from the class: its ``key_help``, then ``base_url``
    (with ``default_base_url``) and ``timeout`` unless the type declares them itself.

    A default is the class attribute the code reads (``batch_size``, ``max_concurrency``,
    ``default_timeout``, ``rate_limit`` in the help), written once, so the docs cannot drift from it."""
    declared = {k.name for k in cls.config_keys}
    unknown = set(cls.key_help) - set(STANDARD_KEYS)
    if unknown:
        raise TypeError(f"{cls.__name__}.key_help names keys that are not standard: {', '.join(sorted(unknown))}")
    keys = [_standard_key(cls, name, words) for name, words in cls.key_help.items() if name not in declared]
    declared.update(cls.key_help)
    if cls.default_base_url and "base_url" not in declared:
        keys.append(ConfigKey("base_url", str, default=cls.default_base_url,
                              help="API origin; point it at a local emulator in tests."))
    if "timeout" not in declared:
        keys.append(_standard_key(cls, "timeout", "Seconds to wait for each response."))
    return keys


def _standard_key(cls: type[ApiDestination], name: str, words: str) -> ConfigKey:
    if name == "rate_limit":
        limit = cls.rate_limit
        per = "" if limit is None else "second" if limit.per_seconds == 1 else f"{limit.per_seconds:g} s"
        default = f"default {limit.requests} per {per}" if limit else ""
        return ConfigKey("rate_limit", dict, help=f"{{requests: N, per_seconds: S}}; {default}{words}")
    if name == "nulls":
        return ConfigKey("nulls", str, default="keep", help=words)
    if name == "timeout":
        timeout = cls.default_timeout
        return ConfigKey("timeout", (int, float), default=int(timeout) if timeout.is_integer() else timeout,
                         help=words)
    return ConfigKey(name, int, default=getattr(cls, name), help=words)  # batch_size, max_concurrency


@dataclass(frozen=True)
class Endpoint:
    """What one operation sends, for ``plan``: the request(s) in words, and how many a batch of
    ``n`` records takes: ``per_batch`` + ``per_record`` * n (per-record APIs, lookups, job polls)."""

    request: str  # e.g. "POST /crm/v3/objects/{object}/batch/upsert"; {object} is the sync's object
    per_batch: int = 1
    per_record: int = 0


def searched_per_record(requests: Mapping[Operation, str]) -> dict[Operation, Endpoint]:
    """The plan of a type that writes one request per record and finds a record by a search: one
    write per record, plus at most one search for a record whose id is not stored yet (none to append)."""
    return {operation: Endpoint(request, per_batch=0, per_record=1 if operation is Operation.APPEND else 2)
            for operation, request in requests.items()}


class ApiDestination(Destination):
    """An HTTP API destination: settings checked once, one session, the shared plumbing.

    Subclasses set ``default_base_url``, ``max_batch_size`` (and ``batch_limit`` to say whose
    maximum it is), ``endpoints`` for ``plan``, and implement ``session_headers`` and ``write``;
    they read their config from ``self.settings``, their own keys in ``configure``.
    """

    default_base_url: ClassVar[str] = ""
    max_batch_size: ClassVar[int | None] = None
    batch_limit: ClassVar[str] = ""  # e.g. "HubSpot's batch maximum", named in the batch_size error
    default_timeout: ClassVar[float] = 30.0
    min_connections: ClassVar[int] = 1
    endpoints: ClassVar[Mapping[Operation, Endpoint]] = {}
    # The type's own words for the standard keys it documents (STANDARD_KEYS), in the order they are
    # listed; for rate_limit, the words after its default rate. Their type and default are the class's.
    key_help: ClassVar[Mapping[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.config_keys = (*cls.config_keys, *standard_keys(cls))

    def __init__(self, name: str, config: Mapping[str, Any], *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        """``transport`` replaces the network (``httpx.MockTransport`` in unit tests)."""
        super().__init__(name, config)
        self._transport = transport
        self._check_config(name, config)
        self.settings = read_settings(
            self.config_keys, config, base_url=self.resolve_base_url(name, config),
            batch_size=int(config.get("batch_size") or self.batch_size),
            max_concurrency=int(config.get("max_concurrency") or self.max_concurrency),
            timeout=float(config.get("timeout") or self.default_timeout))
        self.base_url: str = self.settings.base_url
        self.redactor = Redactor(self.secrets())
        self._sessions: dict[str, HttpSession] = {}
        self.configure(name, config)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        """Read and check the type's own keys, once, at the end of ``__init__`` (``self.settings``
        holds them with their defaults); a bad value is a ConfigError naming ``name.key``."""

    # -- config --------------------------------------------------------------------------------

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        """The API origin: ``base_url``, else the vendor's; vendors with regions or subdomains override."""
        return http_base_url(name, config, self.default_base_url)

    def _check_config(self, name: str, config: Mapping[str, Any]) -> None:
        size = config.get("batch_size")
        limit = self.max_batch_size
        if limit is not None and size is not None and not (
                isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= limit):
            note = f" ({self.batch_limit})" if self.batch_limit else ""
            raise ConfigError(f"batch_size must be between 1 and {limit:,}{note}, got {size!r}",
                              location=f"{name}.batch_size")
        check_rate_limit(name, config.get("rate_limit"))
        if any(k.name == "nulls" for k in self.config_keys):
            check_nulls_key(name, config)

    # -- session -------------------------------------------------------------------------------

    def session_headers(self) -> Mapping[str, str]:
        """Headers of every request (authorization, API version)."""
        return {}

    def session_options(self) -> Mapping[str, Any]:
        """More ``HttpSession`` arguments: ``rate_limit_headers``, ``response_hook``, ``secrets``,
        ``max_connections``."""
        return {}

    def session(self, purpose: str = "", **options: Any) -> HttpSession:
        """The destination's session, opened on first use and kept until ``close()``; another
        ``purpose`` (Braze's deletes, Customer.io's App API) is a session of its own, opened with
        ``options`` (see ``new_session``)."""
        found = self._sessions.get(purpose)
        if found is None:
            found = self._sessions[purpose] = self.new_session(**options)
        return found

    def new_session(self, **options: Any) -> HttpSession:
        """A session of this destination's settings, headers and ``transport``; ``options`` add or
        replace ``HttpSession`` arguments (another ``limiter``, ``base_url`` or ``headers``)."""
        return HttpSession.for_destination(
            self.name, self.config, options.pop("base_url", self.base_url), default_timeout=self.default_timeout,
            headers=options.pop("headers", None) or self.session_headers(), transport=self._transport,
            **{"secrets": self.secrets(), "max_connections": max(self.min_connections, self.effective_concurrency),
               **self.session_options(), **options})

    async def open(self, target: SyncTarget) -> None:
        """Check the sync (no network) and open the session before the first batch."""
        self.check_target(target)
        self.session()

    async def close(self) -> None:
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            await session.aclose()

    # -- plan ----------------------------------------------------------------------------------

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        endpoint = self.endpoints.get(batch.operation)
        if endpoint is None:
            return super().describe_request(target, batch)
        return {"request": endpoint.request.format(object=target.object), "url": self.base_url,
                "records": [dict(r.values) for r in batch.records]}

    def estimate_requests(self, operation: Operation, records: int) -> int:
        endpoint = self.endpoints.get(operation)
        if endpoint is None:
            return super().estimate_requests(operation, records)
        return endpoint.per_batch * super().estimate_requests(operation, records) + endpoint.per_record * records
