"""The two knobs of a destination whose batches become vendor jobs (Klaviyo imports, Zendesk job
statuses, Salesforce Bulk API, Google Ads Customer Match): ``job_poll_interval`` and ``job_timeout``,
declared once with each vendor's defaults and read into the shared poller's ``JobPolling``
(``delivery/jobs.py``). Not HTTP plumbing, so not in ``api.py``: Salesforce reads them too."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_activate.delivery.jobs import JobPolling
from dbt_activate.destinations.base import ConfigKey, written_as
from dbt_activate.errors import ConfigError


def job_keys(*, interval: float, timeout: float, then: str, interval_help: str = "", old_interval: str = "",
             old_timeout: str = "") -> tuple[ConfigKey, ConfigKey]:
    """``job_poll_interval`` and ``job_timeout``, the knobs of a vendor whose batches become jobs, with
    its defaults: the timeout always counts from the first status read (``delivery.jobs``); ``then``
    says what becomes of the batch when it passes. ``old_*``: the vendor's older (deprecated) names."""
    return (ConfigKey("job_poll_interval", (int, float), default=interval,
                      help=interval_help or "Seconds between two reads of a job's status.",
                      formerly=(old_interval,) if old_interval else ()),
            ConfigKey("job_timeout", (int, float), default=timeout,
                      help=f"Seconds from the first read of a job's status until it must have finished; then {then}.",
                      formerly=(old_timeout,) if old_timeout else ()))


def job_polling(name: str, config: Mapping[str, Any], keys: tuple[ConfigKey, ConfigKey], *, backoff: float = 1.0,
                max_interval: float = 30.0) -> JobPolling:
    """The ``JobPolling`` of ``keys`` (``job_keys``) in ``config``, each a number of seconds >= 0, else a
    config error naming the key as written (an older name too)."""
    interval, timeout = (_job_seconds(name, config, key) for key in keys)
    return JobPolling(interval, timeout, backoff=backoff, max_interval=max_interval)


def _job_seconds(name: str, config: Mapping[str, Any], key: ConfigKey) -> float:
    written = written_as(key, config)
    value = key.default if written is None else config[written]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        as_written = written or key.name
        raise ConfigError(f"{as_written} must be a number of seconds >= 0, got {value!r}",
                          location=f"{name}.{as_written}")
    return float(value)
