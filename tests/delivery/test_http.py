"""HttpSession over httpx.MockTransport: status and transport mapping, redaction, limiter, TLS, logs."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import RateLimit
from dbt_activate.delivery import (
    HttpSession,
    InsecureTLSWarning,
    RateLimiter,
    RateLimitHeaders,
    RequestLog,
    UnencodableValue,
    encode_record,
    json_body,
    observing_http,
    parse_retry_after,
    to_json_value,
    using_limiter,
)
from dbt_activate.errors import ConfigError, DestinationError, QuotaExhaustedError, RetryableDestinationError
from tests.support.delivery import FakeClock

SECRET = "sk-live-0123456789abcdef"
Handler = Callable[[httpx.Request], httpx.Response]


def _session(handler: Handler, **kwargs: Any) -> HttpSession:
    return HttpSession("crm", "https://api.example.com/v1", headers={"Authorization": f"Bearer {SECRET}"},
                       secrets=[SECRET], transport=httpx.MockTransport(handler), **kwargs)


def _call(session: HttpSession, method: str = "POST", url: str = "/contacts",
          **kwargs: Any) -> httpx.Response:
    async def run() -> httpx.Response:
        async with session:
            return await session.request(method, url, **kwargs)

    return asyncio.run(run())


def test_a_success_is_returned_with_the_default_headers_sent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    response = _call(_session(handler), json={"a": 1})
    assert response.json() == {"ok": True}
    assert seen[0].url == "https://api.example.com/v1/contacts"
    assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("status", [400, 404, 409, 422, 207])
def test_other_statuses_are_left_to_the_destination(status: int) -> None:
    response = _call(_session(lambda r: httpx.Response(status, json={"errors": []})))
    assert response.status_code == status


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retryable_and_says_what_failed(status: int) -> None:
    session = _session(lambda r: httpx.Response(status, text="upstream exploded"))
    with pytest.raises(RetryableDestinationError) as caught:
        _call(session)
    message = str(caught.value)
    assert f"crm: POST /v1/contacts failed on the server: HTTP {status}" in message
    assert "upstream exploded" in message


def test_429_carries_retry_after_seconds_and_pauses_the_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(100, 10), clock=clock, sleep=clock.sleep)
    session = _session(lambda r: httpx.Response(429, headers={"Retry-After": "7"}), limiter=limiter)
    with pytest.raises(RetryableDestinationError) as caught:
        _call(session)
    assert caught.value.retry_after == 7.0
    assert "throttled" in str(caught.value)
    asyncio.run(limiter.acquire())
    assert clock.now == pytest.approx(1007.0)  # every user of the limiter waited


def test_429_with_an_http_date_retry_after() -> None:
    when = email.utils.formatdate(timeval=__import__("time").time() + 120, usegmt=True)
    with pytest.raises(RetryableDestinationError) as caught:
        _call(_session(lambda r: httpx.Response(429, headers={"Retry-After": when})))
    assert caught.value.retry_after is not None
    assert 110 <= caught.value.retry_after <= 121


@pytest.mark.parametrize("status", [401, 403])
def test_401_403_are_fatal_and_redacted(status: int) -> None:
    body = {"message": f"token {SECRET} is not valid", "header": f"Bearer {SECRET}"}
    with pytest.raises(DestinationError) as caught:
        _call(_session(lambda r: httpx.Response(status, json=body)))
    assert not isinstance(caught.value, RetryableDestinationError)
    message = str(caught.value)
    assert "check the credentials" in message
    assert SECRET not in message
    assert "***" in message


@pytest.mark.parametrize(("error", "fragment"), [
    (httpx.ConnectTimeout("timed out"), "timed out after 30s"),
    (httpx.ReadTimeout("read timed out"), "timed out"),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), "connection failed or dropped"),
    (httpx.ConnectError("[Errno 111] Connection refused"), "connection failed or dropped"),
    (httpx.ReadError("connection reset by peer"), "connection failed or dropped"),
])
def test_transport_failures_are_retryable(error: Exception, fragment: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    with pytest.raises(RetryableDestinationError) as caught:
        _call(_session(handler))
    assert fragment in str(caught.value)
    assert caught.value.__cause__ is error


def test_a_refused_connection_names_host_and_port_never_credentials() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    session = HttpSession("crm_webhook", "http://hook-user:hunter2-pass@127.0.0.1:8765", secrets=[],
                          transport=httpx.MockTransport(handler))
    with pytest.raises(RetryableDestinationError) as caught:
        _call(session, url="/hooks/deals")
    message = str(caught.value)
    assert message == ("crm_webhook: POST /hooks/deals: connection failed or dropped "
                       "(127.0.0.1:8765: [Errno 111] Connection refused)")
    with pytest.raises(RetryableDestinationError) as default_port:
        _call(_session(handler))
    assert "(api.example.com:443: " in str(default_port.value)


def test_secrets_in_urls_and_exception_text_are_redacted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed to reach {request.url}")

    logs: list[RequestLog] = []
    session = _session(handler, on_request=logs.append)
    with pytest.raises(RetryableDestinationError) as caught:
        _call(session, url=f"/hooks/{SECRET}", params={"api_token": SECRET})
    assert SECRET not in str(caught.value)
    assert "/v1/hooks/***" in str(caught.value)
    assert logs == [RequestLog("POST", "/v1/hooks/***", None, logs[0].duration)]


def test_certificate_failures_are_fatal_with_advice() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")

    with pytest.raises(DestinationError) as caught:
        _call(_session(handler))
    assert not isinstance(caught.value, RetryableDestinationError)
    assert "ca_bundle" in str(caught.value)


def test_request_log_has_method_path_status_and_duration_only() -> None:
    logs: list[RequestLog] = []
    with observing_http(on_request=logs.append):
        session = _session(lambda r: httpx.Response(201))
    _call(session, url="/contacts?email=a@b.c", json={"email": "a@b.c"})
    assert len(logs) == 1
    assert (logs[0].method, logs[0].path, logs[0].status) == ("POST", "/v1/contacts", 201)
    assert logs[0].duration >= 0


def test_disabling_tls_verification_is_reported() -> None:
    warned: list[str] = []
    HttpSession("crm", verify=False, on_warning=warned.append)
    assert len(warned) == 1
    assert "TLS certificate verification is disabled" in warned[0]
    with observing_http(on_warning=warned.append):
        HttpSession("crm2", verify=False)
    assert "crm2" in warned[1]
    with pytest.warns(InsecureTLSWarning):
        HttpSession("crm3", verify=False)


def test_a_missing_ca_bundle_is_a_config_error(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot load ca_bundle") as caught:
        HttpSession("crm", ca_bundle=str(tmp_path / "missing.pem"))
    assert caught.value.location == "crm.ca_bundle"


def test_credential_headers_are_secrets_without_being_told() -> None:
    session = HttpSession("crm", headers={"Authorization": "Bearer abcdefgh12345678", "X-Api-Key": "k-123456",
                                          "Accept": "application/json"})
    assert session.redact("abcdefgh12345678 k-123456 application/json") == "*** *** application/json"


def test_an_invalid_url_is_a_fatal_destination_error() -> None:
    with pytest.raises(DestinationError, match="invalid URL"):
        _call(_session(lambda r: httpx.Response(200)), url="http://[::1")


def test_each_request_waits_for_the_current_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(2, 1.0), headroom=0.0, clock=clock, sleep=clock.sleep)
    session = _session(lambda r: httpx.Response(200))
    stamps: list[float] = []

    async def run() -> None:
        with using_limiter(limiter):
            async with session:
                for _ in range(5):
                    await session.request("GET", "/x")
                    stamps.append(clock.now)

    asyncio.run(run())
    assert stamps == [1000.0, 1000.0, 1001.0, 1001.0, 1002.0]


def test_vendor_rate_limit_headers_feed_the_limiter() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(100, 10), clock=clock, sleep=clock.sleep)
    left = iter(["1", "0", "99"])  # another process spent 98 of the vendor's 100 just before us

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"X-HubSpot-RateLimit-Remaining": next(left),
                                            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})

    session = _session(handler, limiter=limiter,
                       rate_limit_headers=RateLimitHeaders("X-HubSpot-RateLimit-Remaining",
                                                           "X-HubSpot-RateLimit-Interval-Milliseconds", 0.001))
    stamps: list[float] = []

    async def run() -> None:
        async with session:
            for _ in range(3):
                await session.request("GET", "/x")
                stamps.append(clock.now)

    asyncio.run(run())
    assert stamps[:2] == [1000.0, 1000.0]
    assert stamps[2] == pytest.approx(1010.0)


def test_a_response_hook_can_raise_a_more_precise_error() -> None:
    def hook(response: httpx.Response) -> None:
        if response.status_code == 429 and response.json().get("policyName") == "DAILY":
            raise QuotaExhaustedError("crm: daily limit reached")

    session = _session(lambda r: httpx.Response(429, json={"policyName": "DAILY"}), response_hook=hook)
    with pytest.raises(QuotaExhaustedError):
        _call(session)


@pytest.mark.parametrize(("value", "expected"), [
    ("3", 3.0), (" 0.5 ", 0.5), ("-4", 0.0), ("", None), (None, None), ("soon", None), ("inf", None),
    ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0), ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:00 GMT").timestamp()
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("0.1"), 0.1), (Decimal("42.00"), 42), (Decimal("-7"), -7),
    (Decimal("12345678901234567890.01"), "12345678901234567890.01"),
    (Decimal("123456789012345678901"), "123456789012345678901"), (Decimal("1E+30"), 1e30),
    (2**70, 2**70), (1.5, 1.5), (True, True), (None, None),
    (__import__("datetime").date(2024, 5, 1), "2024-05-01"),
    (__import__("datetime").datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00"),
    # A zoned timestamp in UTC whatever zone the warehouse session handed it over in.
    (__import__("datetime").datetime(2024, 5, 1, 8, 30, tzinfo=__import__("datetime").timezone(
        __import__("datetime").timedelta(hours=-4))), "2024-05-01T12:30:00+00:00"),
    (__import__("datetime").timedelta(minutes=2), "P0DT120S"), ({3, 1, 2}, [1, 2, 3]),
    (b"\x00\xff", "AP8="), ({"a": [1, Decimal("2.5")]}, {"a": [1, 2.5]}), ((1, 2), [1, 2]),
])
def test_json_values(value: Any, expected: Any) -> None:
    assert to_json_value(value) == expected
    assert type(to_json_value(value)) is type(expected)


def test_request_bodies_are_the_bytes_json_dumps_would_write() -> None:
    import json

    body = {"inputs": [{"id": "ada@example.com", "properties": {
        "name": "Zoë \u2028 \"quoted\" \\ tab\t nl\n nul\x00 bell\x07", "score": 0.1 + 0.2, "n": 2**62,
        "ok": True, "none": None, "emoji": "\U0001F600", "list": ["a;b", 1.5]}}]}
    assert json_body(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    tiny = {"x": 1.5e-7, "big": 1e300}  # exponents are written 1.5e-7, not 1.5e-07: the same numbers
    assert json.loads(json_body(tiny)) == tiny


def test_files_and_json_columns_write_zoned_timestamps_in_utc_too() -> None:
    import datetime as dt
    import json

    from dbt_activate.core.values import json_default

    zoned = dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert json.dumps({"at": zoned}, default=json_default) == '{"at": "2024-05-01T12:30:00+00:00"}'


@pytest.mark.parametrize("value", [float("nan"), float("inf"), Decimal("NaN"), Decimal("-Infinity"), object()])
def test_values_json_cannot_carry_are_refused_with_the_field_named(value: Any) -> None:
    with pytest.raises(UnencodableValue, match="field 'score'"):
        encode_record({"id": 1, "score": value})


def test_a_session_that_sends_nothing_loads_no_certificates_and_one_behind_a_proxy_keeps_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The network transport is made on the first request (a run with nothing to send opens sessions
    for nothing); with a proxy in the environment httpx's own proxy mounts are kept as they were."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    idle = HttpSession("idle", "https://api.example.com")
    transport = idle._client._transport
    assert not isinstance(transport, httpx.AsyncHTTPTransport)
    assert getattr(transport, "_transport", "missing") is None  # nothing made yet
    asyncio.run(idle.aclose())

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example.com:3128")
    proxied = HttpSession("proxied", "https://api.example.com")
    assert isinstance(proxied._client._transport, httpx.AsyncHTTPTransport)
    assert any(mount is not None for mount in proxied._client._mounts.values())
    asyncio.run(proxied.aclose())
