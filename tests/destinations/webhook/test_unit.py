"""WebhookDestination over httpx.MockTransport: the payload contract and the response contract."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, Operation, Record
from dbt_activate.delivery import RetryPolicy, deliver
from dbt_activate.destinations.base import check_config, load_destination_type
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.errors import ConfigError, DestinationError
from tests.support.delivery import batch, recording, target

TOKEN = "whk_9f8e7d6c5b4a3210"
Handler = Callable[[httpx.Request], httpx.Response]


def _hook(handler: Handler, **config: Any) -> WebhookDestination:
    full = {"type": "webhook", "url": "https://hooks.example.com/dbt",
            "headers": {"Authorization": f"Bearer {TOKEN}"}, **config}
    return WebhookDestination("hook", full, transport=httpx.MockTransport(handler))


def _write(destination: WebhookDestination, the_batch: Batch) -> BatchResult:
    async def run() -> BatchResult:
        try:
            await destination.open(target())
            return await destination.write(target(), the_batch)
        finally:
            await destination.close()

    return asyncio.run(run())


def _recording(status: int = 200, body: Any = None) -> tuple[Handler, list[httpx.Request]]:
    return recording(status=status, json=body)


def test_the_entry_point_loads_the_webhook_type() -> None:
    assert load_destination_type("webhook") is WebhookDestination


def test_payload_follows_the_documented_contract() -> None:
    handler, seen = _recording()
    records = [Record("1", {"id": 1, "email": "ada@example.com", "signed_up": dt.date(2024, 5, 1),
                            "seen_at": dt.datetime(2024, 5, 1, 8, 30, tzinfo=dt.timezone.utc),
                            "ltv": Decimal("1234.50"), "big": Decimal("12345678901234567890.12"),
                            "tags": ["a", "b"], "note": "naïve ünïcode"})]
    result = _write(_hook(handler), Batch(Operation.UPSERT, records))

    assert result == BatchResult()
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://hooks.example.com/dbt"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["User-Agent"].startswith("dbt-activate/")
    assert json.loads(request.content) == {
        "sync": "people__hook__contacts", "object": "contacts", "operation": "upsert", "run_id": "run-1",
        "records": [{"key": "1", "operation": "upsert", "record": {
            "id": 1, "email": "ada@example.com", "signed_up": "2024-05-01",
            "seen_at": "2024-05-01T08:30:00+00:00", "ltv": 1234.5, "big": "12345678901234567890.12",
            "tags": ["a", "b"], "note": "naïve ünïcode"}}],
    }


@pytest.mark.parametrize("operation", list(Operation))
def test_every_operation_is_sent_with_its_name(operation: Operation) -> None:
    handler, seen = _recording()
    _write(_hook(handler, method="put"), batch(["7"], operation))
    body = json.loads(seen[0].content)
    assert seen[0].method == "PUT"
    assert body["operation"] == operation.value
    assert body["records"][0]["operation"] == operation.value


def test_nan_and_infinity_are_rejected_per_record_and_the_rest_is_sent() -> None:
    handler, seen = _recording()
    records = [Record("1", {"id": 1, "score": 1.5}), Record("2", {"id": 2, "score": float("nan")}),
               Record("3", {"id": 3, "score": Decimal("Infinity")})]
    result = _write(_hook(handler), Batch(Operation.UPSERT, records))
    assert set(result.rejected) == {"2", "3"}
    assert "field 'score'" in result.rejected["2"]
    assert [r["key"] for r in json.loads(seen[0].content)["records"]] == ["1"]


def test_timestamps_with_a_zone_are_sent_in_utc_and_naive_ones_without_an_offset() -> None:
    # DuckDB returns timestamptz values in the machine's zone: the payload must not depend on it.
    handler, seen = _recording()
    new_york = dt.timezone(dt.timedelta(hours=-4))
    records = [Record("1", {"id": 1, "at": dt.datetime(2025, 6, 1, 6, 0, tzinfo=new_york),
                            "utc": dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.timezone.utc),
                            "naive": dt.datetime(2025, 6, 1, 10, 0)})]
    _write(_hook(handler), Batch(Operation.UPSERT, records))
    assert json.loads(seen[0].content)["records"][0]["record"] == {
        "id": 1, "at": "2025-06-01T10:00:00+00:00", "utc": "2025-06-01T10:00:00+00:00",
        "naive": "2025-06-01T10:00:00"}


def test_a_batch_with_nothing_sendable_makes_no_request() -> None:
    handler, seen = _recording()
    result = _write(_hook(handler), Batch(Operation.UPSERT, [Record("1", {"x": float("inf")})]))
    assert seen == []
    assert list(result.rejected) == ["1"]


def test_rejected_and_skipped_keys_in_a_2xx_body() -> None:
    handler, _ = _recording(200, {"rejected": [{"key": "1", "reason": "invalid email"}, {"key": "zzz"}],
                                  "skipped": [{"key": 2, "reason": "no such contact"}]})
    result = _write(_hook(handler), batch(["1", "2", "3"]))
    assert result.rejected == {"1": "invalid email"}  # keys that were not in the batch are ignored
    assert result.skipped == {"2": "no such contact"}


@pytest.mark.parametrize("body", [b"", b"ok", b"<html>thanks</html>", b"[1, 2]", b'{"received": 3}'])
def test_any_other_2xx_body_acknowledges_everything(body: bytes) -> None:
    result = _write(_hook(lambda r: httpx.Response(202, content=body)), batch(["1", "2"]))
    assert result == BatchResult()


@pytest.mark.parametrize("body", [{"rejected": "all of them"}, {"rejected": [{"reason": "no key"}]},
                                  {"skipped": [["1", "x"]]}])
def test_a_malformed_rejection_list_leaves_the_batch_unacknowledged(body: Any) -> None:
    with pytest.raises(DestinationError, match="not acknowledged"):
        _write(_hook(lambda r: httpx.Response(200, json=body)), batch(["1"]))


def test_a_4xx_rejects_the_whole_batch_with_status_and_truncated_body() -> None:
    long_body = "field 'email' is required; " * 100
    result = _write(_hook(lambda r: httpx.Response(422, text=long_body)), batch(["1", "2"]))
    assert set(result.rejected) == {"1", "2"}
    reason = result.rejected["1"]
    assert reason.startswith("HTTP 422 Unprocessable Entity: field 'email' is required")
    assert len(reason) <= 300


def test_a_redirect_is_not_an_acknowledgement() -> None:
    response = httpx.Response(302, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(DestinationError, match="redirects are not followed"):
        _write(_hook(lambda r: response), batch(["1"]))


def test_retries_of_a_batch_carry_the_same_idempotency_key() -> None:
    statuses = iter([503, 200])
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(next(statuses))

    destination = _hook(handler)

    async def run() -> BatchResult:
        await destination.open(target())
        try:
            return await deliver(destination, target(), batch(["1", "2"]), limiter=None,
                                 policy=RetryPolicy(base_delay=0.0, jitter=False))
        finally:
            await destination.close()

    assert asyncio.run(run()) == BatchResult()
    assert len(seen) == 2
    assert seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]
    assert seen[0].content == seen[1].content


def test_secrets_cover_headers_bearer_tokens_and_url_credentials() -> None:
    destination = WebhookDestination("hook", {
        "type": "webhook", "url": "https://user:pa55word@hooks.slack.com/services/T000/B000/XXXXxxxx1234yyyy?key=abcdefgh12",
        "headers": {"Authorization": f"Bearer {TOKEN}", "X-Api-Key": "k3y-value"}})
    secrets = set(destination.secrets())
    assert {f"Bearer {TOKEN}", TOKEN, "k3y-value", "pa55word", "XXXXxxxx1234yyyy", "abcdefgh12"} <= secrets
    described = destination.describe_request(target(), batch(["1"]))
    assert "XXXXxxxx1234yyyy" not in json.dumps(described)
    assert described["body"]["records"][0]["key"] == "1"


@pytest.mark.parametrize(("config", "location"), [
    ({"url": "ftp://example.com/x"}, "hook.url"),
    ({"url": "example.com/x"}, "hook.url"),
    ({"url": "https://example.com", "method": "PATCH"}, "hook.method"),
])
def test_bad_config_is_a_config_error_naming_the_key(config: dict[str, Any], location: str) -> None:
    with pytest.raises(ConfigError) as caught:
        WebhookDestination("hook", {"type": "webhook", **config})
    assert caught.value.location == location


def test_config_keys_are_declared_for_validation() -> None:
    check_config(WebhookDestination, "hook", {
        "type": "webhook", "url": "https://x.example.com", "method": "PUT", "headers": {"A": "b"},
        "timeout": 5, "verify": False, "ca_bundle": "/tmp/ca.pem", "batch_size": 50,
        "rate_limit": {"requests": 10, "per_seconds": 1}}, "destinations.yml")
    with pytest.raises(ConfigError, match="required key 'url'"):
        check_config(WebhookDestination, "hook", {"type": "webhook"}, "destinations.yml")
