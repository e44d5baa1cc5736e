"""KlaviyoDestination against httpx.MockTransport: job submission, polling, import errors, config."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.destinations.base import load_destination_type
from dbt_activate.destinations.klaviyo import destination as klaviyo
from dbt_activate.destinations.klaviyo.destination import KlaviyoDestination, profile_for
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from tests.support.delivery import write_batches

KEY = "pk_5f4dcc3b5aa765d61d8327deb882cf99"
Handler = Callable[[httpx.Request], httpx.Response]
FIELDS = ("email", "first_name", "city", "plan", "signed_up")


def target(identity: Sequence[str] = ("email",), fields: Sequence[str] = FIELDS, obj: str = "profiles") -> SyncTarget:
    return SyncTarget("people__klaviyo", obj, Mode.UPSERT, tuple(FieldSpec(f, f) for f in fields), tuple(identity))


def person(i: int, **changes: Any) -> Record:
    return Record(str(i), {"email": f"u{i}@example.com", "first_name": f"Name {i}", "city": "Paris", "plan": "pro",
                           "signed_up": dt.date(2024, 5, 1), **changes})


def klaviyo_dest(handler: Handler, **config: Any) -> KlaviyoDestination:
    return KlaviyoDestination("kl", {"type": "klaviyo", "api_key": KEY, "job_poll_interval": 0, **config},
                              transport=httpx.MockTransport(handler))


def write(destination: KlaviyoDestination, batch: Batch, tgt: SyncTarget | None = None) -> BatchResult:
    return write_batches(destination, tgt or target(), batch, open_first=False)[0]


def job(status: str, failed: int = 0, job_id: str = "J1") -> httpx.Response:
    code = 202 if status == "queued" else 200
    return httpx.Response(code, json={"data": {"type": "profile-bulk-import-job", "id": job_id,
                                               "attributes": {"status": status, "failed_count": failed}}})


def import_error(pointer: str = "", payload: dict[str, Any] | None = None, detail: str = "Invalid email address"
                 ) -> dict[str, Any]:
    return {"type": "import-error", "id": "e", "attributes": {
        "code": "invalid", "title": "Invalid input.", "detail": detail, "source": {"pointer": pointer},
        "original_payload": payload}}


def scripted(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return handler, seen


# -- config ---------------------------------------------------------------------------------------


def test_declared_limits() -> None:
    assert load_destination_type("klaviyo") is KlaviyoDestination
    assert KlaviyoDestination.batch_size == 10_000
    # 10 per 4 s never passes the burst (10/s) nor the steady limit (150/min).
    assert KlaviyoDestination.rate_limit == RateLimit(10, 4.0)


@pytest.mark.parametrize(("config", "where"), [
    ({"batch_size": 10_001}, "kl.batch_size"), ({"job_poll_interval": -1}, "kl.job_poll_interval"),
    ({"job_timeout": "soon"}, "kl.job_timeout"), ({"poll_interval": -1}, "kl.poll_interval"),
    ({"poll_timeout": "soon"}, "kl.poll_timeout"), ({"nulls": "drop"}, "kl.nulls"), ({"base_url": "a.klaviyo.com"},
                                                                                       "kl.base_url"),
])
def test_bad_config_names_the_key(config: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        KlaviyoDestination("kl", {"type": "klaviyo", "api_key": KEY, **config})
    assert caught.value.location == where


@pytest.mark.parametrize("tgt", [target(identity=("customer_id",)), target(identity=()), target(obj="events")])
def test_targets_klaviyo_cannot_serve_are_config_errors(tgt: SyncTarget) -> None:
    with pytest.raises(ConfigError):
        klaviyo_dest(scripted()[0]).check_target(tgt)


# -- the job --------------------------------------------------------------------------------------


def test_a_batch_is_one_job_polled_until_complete() -> None:
    handler, seen = scripted(job("queued"), job("processing"), job("processing"), job("complete"))
    result = write(klaviyo_dest(handler, list_id="L1", revision="2025-01-15"), Batch(Operation.UPSERT, [person(1)]))
    assert result == BatchResult()
    assert [(r.method, r.url.path) for r in seen] == [("POST", "/api/profile-bulk-import-jobs")] + [
        ("GET", "/api/profile-bulk-import-jobs/J1")] * 3
    post = seen[0]
    assert post.headers["Authorization"] == f"Klaviyo-API-Key {KEY}"
    assert post.headers["revision"] == "2025-01-15"
    assert post.headers["Content-Type"] == "application/vnd.api+json"
    assert json.loads(post.content) == {"data": {
        "type": "profile-bulk-import-job",
        "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {
            "email": "u1@example.com", "first_name": "Name 1", "location": {"city": "Paris"},
            "properties": {"plan": "pro", "signed_up": "2024-05-01"}}}]}},
        "relationships": {"lists": {"data": [{"type": "list", "id": "L1"}]}}}}


def test_import_errors_reject_their_profiles_by_pointer_or_payload() -> None:
    errors = {"data": [import_error("/data/attributes/profiles/data/1/attributes/email"),
                       import_error("", {"email": "U3@EXAMPLE.com"}, "Invalid phone number")],
              "links": {"next": "https://a.klaviyo.com/api/profile-bulk-import-jobs/J1/import-errors?page[cursor]=2"}}
    last = {"data": [], "links": {"next": None}}
    handler, seen = scripted(job("queued"), job("complete", failed=2), httpx.Response(200, json=errors),
                             httpx.Response(200, json=last))
    result = write(klaviyo_dest(handler), Batch(Operation.UPSERT, [person(1), person(2), person(3)]))
    assert result.rejected == {"2": "invalid: Invalid email address (email)", "3": "invalid: Invalid phone number"}
    assert seen[2].url.params["page[size]"] == "100"
    assert (seen[3].url.host, seen[3].url.params["page[cursor]"]) == ("a.klaviyo.com", "2")


def test_failures_the_errors_do_not_name_reject_the_rest_of_the_job() -> None:
    errors = {"data": [import_error("/data/attributes/profiles/data/0/attributes/email")], "links": {}}
    handler, _ = scripted(job("queued"), job("complete", failed=2), httpx.Response(200, json=errors))
    result = write(klaviyo_dest(handler), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert result.rejected["1"].startswith("invalid:")
    assert "named only 1" in result.rejected["2"]


def test_a_refused_job_rejects_its_profiles_and_a_cancelled_one_fails_the_batch() -> None:
    refused = httpx.Response(400, json={"errors": [{"code": "invalid", "detail": "bad body",
                                                    "source": {"pointer": "/data"}}]})
    result = write(klaviyo_dest(scripted(refused)[0]), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert result.rejected == {"1": "invalid: bad body", "2": "invalid: bad body"}
    with pytest.raises(DestinationError, match="cancelled"):
        write(klaviyo_dest(scripted(job("queued"), job("cancelled"))[0]), Batch(Operation.UPSERT, [person(1)]))


def test_a_job_that_never_completes_fails_after_job_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return job("queued") if request.method == "POST" else job("processing")

    with pytest.raises(DestinationError, match="job_timeout") as caught:
        write(klaviyo_dest(handler, job_timeout=0), Batch(Operation.UPSERT, [person(1)]))
    assert not isinstance(caught.value, RetryableDestinationError)


def test_throttling_is_retryable_with_retry_after() -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "7"}, json={"errors": [{"code": "throttled"}]})
    with pytest.raises(RetryableDestinationError) as caught:
        write(klaviyo_dest(scripted(throttled)[0]), Batch(Operation.UPSERT, [person(1)]))
    assert caught.value.retry_after == 7


def test_a_batch_over_5_mb_is_split_into_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(klaviyo, "MAX_BODY", 1200)
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            bodies.append(json.loads(request.content))
            return job("queued", job_id=f"J{len(bodies)}")
        return job("complete")

    assert write(klaviyo_dest(handler), Batch(Operation.UPSERT, [person(i) for i in range(8)])) == BatchResult()
    sizes = [len(b["data"]["attributes"]["profiles"]["data"]) for b in bodies]
    assert len(sizes) > 1 and sum(sizes) == 8


def test_records_that_cannot_be_sent_are_rejected_before_sending() -> None:
    handler, seen = scripted(job("queued"), job("complete"))
    big = "x" * (100 * 1024)
    result = write(klaviyo_dest(handler), Batch(Operation.UPSERT, [
        person(1), person(2, email="U1@example.com"), person(3, email=""), person(4, plan=float("inf")),
        person(5, plan=big)]))
    assert set(result.rejected) == {"2", "3", "4", "5"}
    assert "same identifiers" in result.rejected["2"] and "'plan'" in result.rejected["4"]
    assert "100" in result.rejected["5"]
    assert len(json.loads(seen[0].content)["data"]["attributes"]["profiles"]["data"]) == 1


def test_clear_sends_null_for_every_mapped_field() -> None:
    handler, seen = scripted(job("queued"), job("complete"))
    write(klaviyo_dest(handler), Batch(Operation.CLEAR, [Record("1", {"email": "u1@example.com"})]))
    profile = json.loads(seen[0].content)["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert profile == {"email": "u1@example.com", "first_name": None, "location": {"city": None},
                       "properties": {"plan": None, "signed_up": None}}


def test_nulls_are_left_out_unless_nulls_clear() -> None:
    record = person(1, plan=None, first_name=None)
    kept = profile_for(record, ("email",))["attributes"]
    assert "first_name" not in kept and "plan" not in kept["properties"]
    cleared = profile_for(record, ("email",), clear_nulls=True)["attributes"]
    assert cleared["first_name"] is None and cleared["properties"]["plan"] is None


def test_identifiers_and_standard_attributes_are_text() -> None:
    record = Record("1", {"external_id": 42, "email": "a@b.co", "latitude": 48.85, "score": 1.5,
                          "seen": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)})
    attributes = profile_for(record, ("external_id", "email"))["attributes"]
    assert attributes == {"external_id": "42", "email": "a@b.co", "location": {"latitude": 48.85},
                          "properties": {"score": 1.5, "seen": "2024-05-01T12:00:00+00:00"}}


def test_describe_request_shows_the_job_and_the_polls() -> None:
    described = klaviyo_dest(scripted()[0]).describe_request(target(), Batch(Operation.UPSERT, [person(1)]))
    assert described["url"] == "https://a.klaviyo.com/api/profile-bulk-import-jobs"
    assert described["jobs"] == 1 and described["then"][0]["method"] == "GET"
    assert KEY not in json.dumps(described)


def test_a_throttled_poll_is_polled_again_without_resubmitting_the_job() -> None:
    throttled = httpx.Response(429, headers={"Retry-After": "0"}, json={"errors": [{"code": "throttled"}]})
    failing = httpx.Response(503, json={"errors": []})
    handler, seen = scripted(job("queued"), throttled, failing, job("complete", failed=1), throttled,
                             httpx.Response(200, json={"data": [import_error(
                                 "/data/attributes/profiles/data/0/attributes/email")], "links": {}}))
    result = write(klaviyo_dest(handler), Batch(Operation.UPSERT, [person(1)]))
    assert [r.method for r in seen].count("POST") == 1
    assert set(result.rejected) == {"1"}


def test_a_poll_still_throttled_at_job_timeout_fails_as_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return job("queued") if request.method == "POST" else httpx.Response(429, json={})

    with pytest.raises(RetryableDestinationError):
        write(klaviyo_dest(handler, job_timeout=0), Batch(Operation.UPSERT, [person(1)]))


# -- events (append) ------------------------------------------------------------------------------


def event_target(fields: Sequence[str] = ("email", "plan", "value", "time"), obj: str = "Plan Changed") -> SyncTarget:
    return SyncTarget("plans__klaviyo", obj, Mode.APPEND, tuple(FieldSpec(f, f) for f in fields), ("customer_id",),
                      run_id="run-7")


@pytest.mark.parametrize(("tgt", "message"), [
    (event_target(obj="profiles"), "metric name"), (event_target(fields=("plan",)), "email, phone_number"),
])
def test_append_needs_a_metric_and_a_profile_identifier(tgt: SyncTarget, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        klaviyo_dest(scripted()[0]).check_target(tgt)
    klaviyo_dest(scripted()[0]).check_target(event_target())


def test_append_sends_each_row_as_an_event_with_a_unique_id_per_run() -> None:
    handler, seen = scripted(httpx.Response(202))
    records = [Record("1", {"email": "u1@example.com", "plan": "pro", "value": 9.5,
                            "time": dt.datetime(2024, 5, 1, 12, 0)}),
               Record("2", {"email": "u2@example.com", "plan": "free", "value": None, "time": None})]
    assert write(klaviyo_dest(handler), Batch(Operation.APPEND, records), event_target()) == BatchResult()
    (request,) = seen
    assert request.url.path == "/api/event-bulk-create-jobs"
    entries = json.loads(request.content)["data"]["attributes"]["events-bulk-create"]["data"]
    assert entries[0] == {"type": "event-bulk-create", "attributes": {
        "profile": {"data": {"type": "profile", "attributes": {"email": "u1@example.com"}}},
        "events": {"data": [{"type": "event", "attributes": {
            "time": "2024-05-01T12:00:00+00:00", "value": 9.5, "unique_id": "run-7:1", "properties": {"plan": "pro"},
            "metric": {"data": {"type": "metric", "attributes": {"name": "Plan Changed"}}}}}]}}}
    assert entries[1]["attributes"]["events"]["data"][0]["attributes"]["unique_id"] == "run-7:2"


def test_append_over_1000_events_is_split_and_a_refused_request_rejects_its_events() -> None:
    refused = httpx.Response(400, json={"errors": [{"code": "invalid", "detail": "Invalid time",
                                                    "source": {"pointer": "/data/attributes/x/time"}}]})
    handler, seen = scripted(httpx.Response(202), refused)
    records = [Record(str(i), {"email": f"u{i}@example.com", "plan": "pro"}) for i in range(1001)]
    result = write(klaviyo_dest(handler), Batch(Operation.APPEND, [*records, Record("x", {"plan": "no profile"})]),
                   event_target())
    assert len(seen) == 2
    assert result.rejected["1000"] == "invalid: Invalid time (x/time)"
    assert "no identifier" in result.rejected["x"]
    assert len(result.rejected) == 2


def test_removed_rows_of_an_events_sync_are_skipped_without_a_request() -> None:
    handler, seen = scripted()
    result = write(klaviyo_dest(handler), Batch(Operation.CLEAR, [Record("1", {"email": "u1@example.com"})]),
                   event_target())
    assert seen == [] and result.skipped == {"1": "Klaviyo events cannot be deleted or cleared"}
