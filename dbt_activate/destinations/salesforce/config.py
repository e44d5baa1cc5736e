"""The ``salesforce`` entry of destinations.yml: its keys, and the checked settings made from them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dbt_activate.delivery.jobs import JobPolling
from dbt_activate.destinations.base import ConfigKey, check_nulls_key
from dbt_activate.destinations.jobs import job_keys, job_polling
from dbt_activate.destinations.salesforce.auth import OAuthClient
from dbt_activate.errors import ConfigError

MAX_RECORDS = 200  # sObject Collections: records per request
BULK_JOB_ROWS = 10_000  # rows per Bulk API job: one of Salesforce's internal 10,000-record batches
DEFAULT_API_VERSION = "v62.0"
MIN_API_VERSION = 46.0  # sObject Collections upsert exists from v46.0
LOGIN_URL = "https://login.salesforce.com"
_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?$")
# A Bulk API job is read after job_poll_interval, then after pauses doubling up to 10 s: most jobs of a
# few thousand rows finish within seconds, the large ones take minutes.
BULK_JOB_KEYS = job_keys(interval=0.25, timeout=1800, old_timeout="bulk_timeout",
                         then="the batch is retried, and the retry resumes waiting for the same job",
                         interval_help="Seconds before the first read of a Bulk API job's status; each next pause "
                                       "doubles, up to 10 s.")

CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("instance_url", str, help="The org's URL, e.g. https://acme.my.salesforce.com. Required with "
              "access_token; with OAuth the token response's instance_url is used when it is not set."),
    ConfigKey("base_url", str, help="Alias of instance_url (every HTTP destination takes base_url)."),
    ConfigKey("access_token", str, secret=True, help="A bearer token obtained elsewhere (session id)."),
    ConfigKey("client_id", str, secret=True, help="Connected app consumer key, for OAuth."),
    ConfigKey("client_secret", str, secret=True, help="Connected app consumer secret: with client_id alone, "
              "the client-credentials grant (login_url must be the org's My Domain)."),
    ConfigKey("refresh_token", str, secret=True, help="OAuth refresh token: the refresh-token grant."),
    ConfigKey("login_url", str, default=LOGIN_URL, help="Token endpoint host: https://test.salesforce.com for "
              "sandboxes, the org's My Domain for client credentials."),
    ConfigKey("api_version", (str, int, float), default=DEFAULT_API_VERSION,
              help=f"REST API version, e.g. v62.0 (at least v{MIN_API_VERSION:g})."),
    ConfigKey("bulk_threshold", int, default=10_000, help="Upsert rows after which a sync switches from sObject "
              "Collections to Bulk API 2.0 jobs; 0 never uses Bulk API."),
    ConfigKey("max_api_usage", (int, float), default=0.95, help="Stop the sync (rows kept for the next run) once "
              "the org has used this share of its daily API allocation (Sforce-Limit-Info)."),
    ConfigKey("nulls", str, default="keep", help="keep: a NULL is not sent and never wipes a value in "
              "Salesforce; clear: a NULL empties the field."),
    ConfigKey("timeout", (int, float), default=120, help="Seconds to wait for each response."),
    *BULK_JOB_KEYS,
)


@dataclass(frozen=True)
class SalesforceSettings:
    instance_url: str | None
    api_version: str
    access_token: str | None
    oauth: OAuthClient | None
    request_size: int  # records per Collections request
    bulk_threshold: int
    max_api_usage: float
    timeout: float
    bulk_polling: JobPolling


def settings_from(name: str, config: Mapping[str, Any]) -> SalesforceSettings:
    """Check the combination of keys (types are checked by ``check_config``); errors name the key."""
    instance = _url(name, config, "instance_url")
    alias = _url(name, config, "base_url")
    if instance and alias and instance.rstrip("/") != alias.rstrip("/"):
        raise ConfigError("instance_url and base_url differ; set one of them", location=f"{name}.base_url")
    instance = instance or alias
    access_token = _text(config, "access_token")
    client_id = _text(config, "client_id")
    secret, refresh = _text(config, "client_secret"), _text(config, "refresh_token")
    oauth = None
    if client_id and (secret or refresh):
        oauth = OAuthClient(_url(name, config, "login_url") or LOGIN_URL, client_id, secret, refresh)
    elif client_id or secret or refresh:
        raise ConfigError("OAuth needs client_id with refresh_token, client_secret, or both", location=name)
    if access_token is None and oauth is None:
        raise ConfigError("set access_token (with instance_url), or client_id with refresh_token and/or "
                          "client_secret for OAuth", location=name)
    if oauth is None and not instance:
        raise ConfigError("instance_url is required with access_token (e.g. https://acme.my.salesforce.com)",
                          location=name)
    request_size = _int(config.get("batch_size"), MAX_RECORDS)
    if not 1 <= request_size <= MAX_RECORDS:
        raise ConfigError(f"must be between 1 and {MAX_RECORDS} (records per sObject Collections request)",
                          location=f"{name}.batch_size")
    threshold = _int(config.get("bulk_threshold"), 10_000)
    if threshold < 0:
        raise ConfigError("must be 0 (never use Bulk API) or a positive number of rows",
                          location=f"{name}.bulk_threshold")
    configured = config.get("max_api_usage")
    usage = 0.95 if configured is None else float(configured)
    if not 0 < usage <= 1:
        raise ConfigError(f"must be a share of the daily allocation in (0, 1], got {usage:g}",
                          location=f"{name}.max_api_usage")
    check_nulls_key(name, config)
    return SalesforceSettings(
        instance_url=instance, api_version=_version(name, config.get("api_version")), access_token=access_token,
        oauth=oauth, request_size=request_size, bulk_threshold=threshold, max_api_usage=usage,
        timeout=_seconds(name, config, "timeout", 120.0),
        bulk_polling=job_polling(name, config, BULK_JOB_KEYS, backoff=2.0, max_interval=10.0))


def _text(config: Mapping[str, Any], key: str) -> str | None:
    value = config.get(key)
    return str(value) if value not in (None, "") else None


def _int(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _url(name: str, config: Mapping[str, Any], key: str) -> str | None:
    value = _text(config, key)
    if value is not None and urlsplit(value).scheme not in ("http", "https"):
        raise ConfigError(f"must start with https:// (got {value!r})", location=f"{name}.{key}")
    return value


def _seconds(name: str, config: Mapping[str, Any], key: str, default: float) -> float:
    value = config.get(key)
    seconds = default if value is None else float(value)
    if seconds <= 0:
        raise ConfigError("must be a positive number of seconds", location=f"{name}.{key}")
    return seconds


def _version(name: str, value: Any) -> str:
    text = DEFAULT_API_VERSION if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))
    found = _VERSION.match(text.strip())
    if found is None or float(f"{found[1]}.{found[2] or 0}") < MIN_API_VERSION:
        raise ConfigError(f"must be a REST API version like {DEFAULT_API_VERSION}, at least v{MIN_API_VERSION:g} "
                          f"(got {value!r})", location=f"{name}.api_version")
    return f"v{found[1]}.{found[2] or 0}"
