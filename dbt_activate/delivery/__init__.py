"""Delivery: batching support, rate limiting and retries shared by every destination (DESIGN §4.4).

The runner calls ``deliver()`` for each batch with the ``RateLimiter`` of the destination account
(one per account per run, see ``LimiterRegistry``) and a ``RetryPolicy``. HTTP destinations send
through an ``HttpSession``, which waits for that limiter before every request and maps HTTP and
transport failures to the error tree once. ``jobs.poll_job`` waits for a vendor's asynchronous jobs
(Klaviyo imports, Zendesk job statuses, Salesforce Bulk API, Google Ads Customer Match) with one
pair of knobs.
"""

from __future__ import annotations

from dbt_activate.delivery.context import (
    HttpObservers,
    RequestLog,
    TlsSettings,
    current_limiter,
    current_observers,
    current_tls,
    observing_http,
    using_limiter,
    using_tls,
)
from dbt_activate.delivery.encoding import (
    JSON_HEADERS,
    JSONValue,
    UnencodableValue,
    encode_record,
    json_body,
    to_json_value,
    vendor_json_value,
)
from dbt_activate.delivery.headers import body_snippet, parse_retry_after
from dbt_activate.delivery.http import HttpSession, InsecureTLSWarning, RateLimitHeaders, credential_values
from dbt_activate.delivery.ratelimit import LimiterRegistry, RateLimiter
from dbt_activate.delivery.retry import OnRetry, RetryPolicy, deliver

__all__ = [
    "JSON_HEADERS",
    "HttpObservers",
    "HttpSession",
    "InsecureTLSWarning",
    "JSONValue",
    "LimiterRegistry",
    "OnRetry",
    "RateLimitHeaders",
    "RateLimiter",
    "RequestLog",
    "RetryPolicy",
    "TlsSettings",
    "UnencodableValue",
    "body_snippet",
    "credential_values",
    "current_limiter",
    "current_observers",
    "current_tls",
    "deliver",
    "encode_record",
    "json_body",
    "observing_http",
    "parse_retry_after",
    "to_json_value",
    "using_limiter",
    "using_tls",
    "vendor_json_value",
]
