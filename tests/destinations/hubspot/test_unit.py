"""HubSpotDestination against httpx.MockTransport: request shapes, per-record results, limits, config."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import RateLimiter, RetryPolicy, deliver
from dbt_activate.destinations.base import check_config, load_destination_type
from dbt_activate.destinations.hubspot.destination import HubSpotDestination
from dbt_activate.destinations.hubspot.results import limit_headers
from dbt_activate.errors import ConfigError, DestinationError, QuotaExhaustedError, RetryableDestinationError
from tests.support.delivery import FakeClock, write_batches
from tests.support.delivery import recording as support_recording

TOKEN = "pat-eu1-5f4dcc3b-5aa7-65d6-1d83-27deb882cf99"
Handler = Callable[[httpx.Request], httpx.Response]
FIELDS = ("email", "firstname", "signup_date", "is_vip")


def target(mode: Mode = Mode.UPSERT, identity: Sequence[str] = ("email",), obj: str = "contacts",
           fields: Sequence[str] = FIELDS) -> SyncTarget:
    return SyncTarget("people__hubspot__contacts", obj, mode, tuple(FieldSpec(f, f) for f in fields),
                      tuple(identity), run_id="run-1")


def person(i: int, **changes: Any) -> Record:
    values = {"email": f"u{i}@example.com", "firstname": f"Name {i}", "signup_date": dt.date(2015, 5, 1),
              "is_vip": i % 2 == 0}
    return Record(str(i), {**values, **changes})


def hubspot(handler: Handler, **config: Any) -> HubSpotDestination:
    return HubSpotDestination("crm", {"type": "hubspot", "access_token": TOKEN, **config},
                              transport=httpx.MockTransport(handler))


def write(destination: HubSpotDestination, batch: Batch, tgt: SyncTarget | None = None) -> BatchResult:
    return write_batches(destination, tgt or target(), batch, open_first=False)[0]


def recording(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    """Answers the given responses in order (then 200, a complete batch with no results), recording the requests."""
    return support_recording(*responses, json={"status": "COMPLETE", "results": []})


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def standard_error(category: str, message: str, **context: list[str]) -> dict[str, Any]:
    return {"status": "error", "category": category, "message": message, "context": context, "errors": []}


# -- request shapes ----------------------------------------------------------------------------------


def test_the_entry_point_loads_the_hubspot_type() -> None:
    assert load_destination_type("hubspot") is HubSpotDestination


def test_upsert_sends_strings_by_id_property_with_the_key_as_trace_id() -> None:
    handler, seen = recording()
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1), person(2, firstname=None)]))
    assert result == BatchResult()
    [request] = seen
    assert request.method == "POST"
    assert request.url.path == "/crm/v3/objects/contacts/batch/upsert"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert body(request) == {"inputs": [
        {"id": "u1@example.com", "idProperty": "email", "objectWriteTraceId": "1",
         "properties": {"firstname": "Name 1", "signup_date": "1430438400000", "is_vip": "false"}},
        {"id": "u2@example.com", "idProperty": "email", "objectWriteTraceId": "2",
         "properties": {"signup_date": "1430438400000", "is_vip": "true"}},  # NULL firstname: not sent
    ]}


@pytest.mark.parametrize(("operation", "endpoint"), [(Operation.UPDATE, "update"), (Operation.UPSERT, "upsert")])
def test_update_and_upsert_use_their_endpoints(operation: Operation, endpoint: str) -> None:
    handler, seen = recording()
    write(hubspot(handler), Batch(operation, [person(1)]), target(Mode.UPDATE))
    assert seen[0].url.path == f"/crm/v3/objects/contacts/batch/{endpoint}"
    assert body(seen[0])["inputs"][0]["idProperty"] == "email"


@pytest.mark.parametrize("operation", [Operation.CREATE, Operation.APPEND])
def test_create_and_append_send_every_property_with_a_trace_id(operation: Operation) -> None:
    handler, seen = recording(httpx.Response(201, json={"status": "COMPLETE", "results": []}))
    result = write(hubspot(handler), Batch(operation, [person(1)]), target(Mode.CREATE))
    assert result == BatchResult()
    assert seen[0].url.path == "/crm/v3/objects/contacts/batch/create"
    assert body(seen[0]) == {"inputs": [{"objectWriteTraceId": "1", "properties": {
        "email": "u1@example.com", "firstname": "Name 1", "signup_date": "1430438400000", "is_vip": "false"}}]}


def test_clear_empties_every_mapped_property_but_the_identity() -> None:
    handler, seen = recording()
    write(hubspot(handler), Batch(Operation.CLEAR, [Record("1", {"email": "u1@example.com"})]))
    assert seen[0].url.path == "/crm/v3/objects/contacts/batch/update"
    assert body(seen[0]) == {"inputs": [{"id": "u1@example.com", "idProperty": "email", "objectWriteTraceId": "1",
                                         "properties": {"firstname": "", "signup_date": "", "is_vip": ""}}]}


def test_delete_reads_record_ids_by_id_property_then_archives_them() -> None:
    read = {"status": "COMPLETE", "results": [{"id": "501", "properties": {"email": "u1@example.com"}}],
            "errors": [standard_error("OBJECT_NOT_FOUND", "Could not get some CONTACTS objects",
                                      ids=["u2@example.com"])]}
    handler, seen = recording(httpx.Response(207, json=read), httpx.Response(204))
    batch = Batch(Operation.DELETE, [Record("1", {"email": "U1@Example.com"}),
                                     Record("2", {"email": "u2@example.com"})])
    result = write(hubspot(handler), batch, target(Mode.MIRROR))
    assert result == BatchResult()  # 1 archived, 2 already gone: both acknowledged
    assert [r.url.path for r in seen] == ["/crm/v3/objects/contacts/batch/read",
                                          "/crm/v3/objects/contacts/batch/archive"]
    assert body(seen[0]) == {"idProperty": "email", "inputs": [{"id": "U1@Example.com"}, {"id": "u2@example.com"}],
                             "properties": ["email"]}
    assert body(seen[1]) == {"inputs": [{"id": "501"}]}


def test_delete_by_record_id_archives_without_a_lookup() -> None:
    handler, seen = recording(httpx.Response(204))
    tgt = target(Mode.MIRROR, identity=("hs_object_id",), fields=("hs_object_id", "firstname"))
    result = write(hubspot(handler), Batch(Operation.DELETE, [Record("1", {"hs_object_id": 501})]), tgt)
    assert result == BatchResult()
    assert [r.url.path for r in seen] == ["/crm/v3/objects/contacts/batch/archive"]
    assert body(seen[0]) == {"inputs": [{"id": "501"}]}


def test_update_by_record_id_sends_no_id_property() -> None:
    handler, seen = recording()
    tgt = target(Mode.UPDATE, identity=("hs_object_id",), fields=("hs_object_id", "firstname"))
    write(hubspot(handler), Batch(Operation.UPDATE, [Record("1", {"hs_object_id": 501, "firstname": "A"})]), tgt)
    assert body(seen[0]) == {"inputs": [{"id": "501", "objectWriteTraceId": "1", "properties": {"firstname": "A"}}]}


def test_custom_objects_by_type_id_and_the_base_url_are_used() -> None:
    handler, seen = recording()
    tgt = target(obj="2-3456789", identity=("vin",), fields=("vin", "model"))
    batch = Batch(Operation.UPSERT, [Record("1", {"vin": "V1"})])
    write(hubspot(handler, base_url="https://api.hubapi.eu/"), batch, tgt)
    assert str(seen[0].url) == "https://api.hubapi.eu/crm/v3/objects/2-3456789/batch/upsert"


def test_nulls_clear_sends_empty_strings() -> None:
    handler, seen = recording()
    write(hubspot(handler, nulls="clear"), Batch(Operation.UPSERT, [person(1, firstname=None)]))
    assert body(seen[0])["inputs"][0]["properties"]["firstname"] == ""


def test_unsendable_records_are_rejected_before_the_request_and_the_rest_is_sent() -> None:
    handler, seen = recording()
    batch = Batch(Operation.UPSERT, [person(1), person(2, is_vip=float("nan")), person(3, email=None),
                                     person(4, email="U1@EXAMPLE.com"), person(5)])
    result = write(hubspot(handler), batch)
    assert result.rejected == {
        "2": "field 'is_vip': nan is not a number HubSpot can store",
        "3": "identity field 'email' is empty",
        "4": "record '1' of the same batch has the same email 'U1@EXAMPLE.com'; HubSpot refuses a batch that "
             "names one record twice",
    }
    assert [i["objectWriteTraceId"] for i in body(seen[0])["inputs"]] == ["1", "5"]


def test_a_batch_with_nothing_sendable_makes_no_request() -> None:
    handler, seen = recording()
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1, email="")]))
    assert set(result.rejected) == {"1"}
    assert seen == []


def test_describe_request_is_the_body_write_sends_and_makes_no_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError("describe_request must not touch the network")

    batch = Batch(Operation.UPSERT, [person(1), person(2)])
    described = hubspot(refuse).describe_request(target(), batch)
    handler, seen = recording()
    write(hubspot(handler), batch)
    assert described == {"method": "POST", "url": "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert",
                         "body": body(seen[0])}
    delete = hubspot(refuse).describe_request(target(), Batch(Operation.DELETE, [Record("1", {"email": "a@x.io"})]))
    assert delete["url"].endswith("/batch/read")
    assert delete["then"]["url"].endswith("/batch/archive")


# -- responses -------------------------------------------------------------------------------------


def test_207_errors_map_back_by_trace_id_and_by_id() -> None:
    multi = {"status": "COMPLETE", "results": [{"id": "1"}], "numErrors": 2, "errors": [
        {**standard_error("VALIDATION_ERROR", "Property values were not valid", objectWriteTraceId=["2"]),
         "errors": [{"message": "Email address bad is invalid", "code": "INVALID_EMAIL", "in": "email"}]},
        standard_error("VALIDATION_ERROR", 'Property "nickname" does not exist', ids=["u3@example.com"]),
    ]}
    handler, _ = recording(httpx.Response(207, json=multi))
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1), person(2), person(3)]))
    assert result.rejected == {"2": "VALIDATION_ERROR: email: Email address bad is invalid",
                               "3": 'VALIDATION_ERROR: Property "nickname" does not exist'}
    assert result.skipped == {}


def test_207_update_of_unknown_records_is_skipped_and_clear_of_them_acknowledged() -> None:
    missing = {"status": "COMPLETE", "results": [], "errors": [
        standard_error("OBJECT_NOT_FOUND", "Could not get some CONTACTS objects", objectWriteTraceId=["2"])]}
    handler, _ = recording(httpx.Response(207, json=missing), httpx.Response(207, json=missing))
    dest = hubspot(handler)
    update = write(dest, Batch(Operation.UPDATE, [person(1), person(2)]), target(Mode.UPDATE))
    assert update.skipped == {"2": "OBJECT_NOT_FOUND: Could not get some CONTACTS objects"}
    clear = write(dest, Batch(Operation.CLEAR, [Record("1", {"email": "a@x.io"}), Record("2", {"email": "b@x.io"})]))
    assert clear == BatchResult()


def test_207_error_naming_no_record_rejects_what_the_results_do_not_confirm() -> None:
    multi = {"status": "COMPLETE", "results": [{"id": "9", "objectWriteTraceId": "1"}],
             "errors": [standard_error("VALIDATION_ERROR", "something went wrong")]}
    handler, _ = recording(httpx.Response(207, json=multi))
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert result.rejected == {"2": "VALIDATION_ERROR: something went wrong"}


def test_400_where_every_input_failed_is_read_per_record() -> None:
    failed = {"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
              "errors": [
                  {"message": '"gold" was not one of the allowed options', "code": "VALIDATION_ERROR",
                   "context": {"objectWriteTraceId": ["1"]}},
                  {"message": "Could not get some CONTACTS objects", "code": "OBJECT_NOT_FOUND",
                   "context": {"ids": ["u2@example.com"]}}]}
    handler, _ = recording(httpx.Response(400, json=failed))
    result = write(hubspot(handler), Batch(Operation.UPDATE, [person(1), person(2)]), target(Mode.UPDATE))
    assert result.rejected == {"1": 'VALIDATION_ERROR: "gold" was not one of the allowed options'}
    assert result.skipped == {"2": "OBJECT_NOT_FOUND: Could not get some CONTACTS objects"}


def test_hubspots_json_list_of_invalid_properties_becomes_a_readable_reason() -> None:
    problems = [{"isValid": False, "message": 'Property "nickname" does not exist', "error": "PROPERTY_DOESNT_EXIST",
                 "name": "nickname"},
                {"isValid": False, "message": "1.5 was not a valid date", "error": "INVALID_DATE", "name": "signup"}]
    failed = {"status": "error", "category": "VALIDATION_ERROR", "message": "Property values were not valid",
              "errors": [{"message": "Property values were not valid: " + json.dumps(problems),
                          "code": "VALIDATION_ERROR", "context": {"objectWriteTraceId": ["1"]}}]}
    handler, _ = recording(httpx.Response(400, json=failed))
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1)]))
    assert result.rejected == {"1": 'VALIDATION_ERROR: nickname: Property "nickname" does not exist; '
                                    "signup: 1.5 was not a valid date"}


def test_409_for_a_batch_of_existing_records_skips_them_on_create() -> None:
    conflict = {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 7",
                "errors": [{"message": "Contact already exists. Existing ID: 7", "code": "CONFLICT",
                            "context": {"objectWriteTraceId": ["1"]}},
                           {"message": "Contact already exists. Existing ID: 8", "code": "CONFLICT",
                            "context": {"objectWriteTraceId": ["2"]}}]}
    handler, _ = recording(httpx.Response(409, json=conflict))
    result = write(hubspot(handler), Batch(Operation.CREATE, [person(1), person(2)]), target(Mode.CREATE))
    assert result.skipped == {"1": "CONFLICT: Contact already exists. Existing ID: 7",
                              "2": "CONFLICT: Contact already exists. Existing ID: 8"}
    assert result.rejected == {}


def test_a_single_input_takes_an_unnamed_error_as_its_own() -> None:
    handler, _ = recording(httpx.Response(409, json={"status": "error", "category": "CONFLICT",
                                                     "message": "Contact already exists. Existing ID: 7"}))
    result = write(hubspot(handler), Batch(Operation.CREATE, [person(1)]), target(Mode.CREATE))
    assert result.skipped == {"1": "CONFLICT: Contact already exists. Existing ID: 7"}
    handler, _ = recording(httpx.Response(409, json={"status": "error", "category": "CONFLICT",
                                                     "message": "Contact already exists. Existing ID: 7"}))
    appended = write(hubspot(handler), Batch(Operation.APPEND, [person(1)]), target(Mode.APPEND))
    assert appended.rejected == {"1": "CONFLICT: Contact already exists. Existing ID: 7"}


def test_a_request_level_400_rejects_the_whole_batch_with_hubspots_message() -> None:
    invalid = {"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c-1",
               "message": "Property 'firstname' can not be used as an idProperty: it is not a unique property"}
    handler, _ = recording(httpx.Response(400, json=invalid))
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1), person(2)]))
    reason = "VALIDATION_ERROR: Property 'firstname' can not be used as an idProperty: it is not a unique property"
    assert result.rejected == {"1": reason, "2": reason}


def test_a_4xx_without_json_rejects_the_batch_with_the_status() -> None:
    handler, _ = recording(httpx.Response(404, text="Not Found"))
    result = write(hubspot(handler), Batch(Operation.UPSERT, [person(1)]))
    assert result.rejected == {"1": "HTTP 404: Not Found"}


def test_a_redirect_is_not_an_acknowledgement() -> None:
    handler, _ = recording(httpx.Response(302, headers={"Location": "https://elsewhere.example"}))
    with pytest.raises(DestinationError, match="HTTP 302"):
        write(hubspot(handler), Batch(Operation.UPSERT, [person(1)]))


def test_a_5xx_is_retryable_and_the_token_is_redacted_from_the_message() -> None:
    handler, _ = recording(httpx.Response(502, text=f"bad gateway for Bearer {TOKEN}"))
    with pytest.raises(RetryableDestinationError) as caught:
        write(hubspot(handler), Batch(Operation.UPSERT, [person(1)]))
    assert TOKEN not in str(caught.value)
    assert "***" in str(caught.value)


def test_archive_refusal_rejects_the_records_that_were_found() -> None:
    read = {"status": "COMPLETE", "results": [{"id": "501", "properties": {"email": "a@x.io"}}]}
    handler, _ = recording(httpx.Response(200, json=read),
                           httpx.Response(400, json={"category": "VALIDATION_ERROR", "message": "nope"}))
    result = write(hubspot(handler), Batch(Operation.DELETE, [Record("1", {"email": "a@x.io"})]), target(Mode.MIRROR))
    assert result.rejected["1"].startswith("HTTP 400 from batch/archive")


def test_delete_rejects_records_the_read_cannot_account_for() -> None:
    read = {"status": "COMPLETE", "results": [{"id": "501", "properties": {}}]}  # no email echoed back
    handler, seen = recording(httpx.Response(200, json=read))
    result = write(hubspot(handler), Batch(Operation.DELETE, [Record("1", {"email": "a@x.io"})]), target(Mode.MIRROR))
    assert "cannot tell whether this record still exists" in result.rejected["1"]
    assert len(seen) == 1  # nothing archived


# -- rate limits -------------------------------------------------------------------------------------

LIMIT_HEADERS = {"X-HubSpot-RateLimit-Interval-Milliseconds": "10000", "X-HubSpot-RateLimit-Max": "100",
                 "X-HubSpot-RateLimit-Remaining": "0"}


def throttled(policy: str) -> httpx.Response:
    return httpx.Response(429, headers=LIMIT_HEADERS, json={
        "status": "error", "message": f"You have reached your {policy.lower()} limit.", "errorType": "RATE_LIMIT",
        "correlationId": "c-1", "policyName": policy})


class SpyLimiter(RateLimiter):
    """Records what the session tells it; runs on virtual time, so a 10-second pause takes none."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        super().__init__(RateLimit(100, 10), clock=self.clock, sleep=self.clock.sleep)
        self.observed: list[tuple[int, float | None]] = []
        self.throttles: list[float | None] = []

    def observe(self, remaining: int, interval_seconds: float | None = None, *, ticket: int | None = None) -> None:
        self.observed.append((remaining, interval_seconds))
        super().observe(remaining, interval_seconds, ticket=ticket)

    def throttled(self, retry_after: float | None = None) -> None:
        self.throttles.append(retry_after)
        super().throttled(retry_after)


def deliver_once(destination: HubSpotDestination, batch: Batch, limiter: RateLimiter,
                 policy: RetryPolicy) -> BatchResult:
    async def run() -> BatchResult:
        try:
            return await deliver(destination, target(), batch, limiter=limiter, policy=policy, sleep=_no_sleep)
        finally:
            await destination.close()

    return asyncio.run(run())


async def _no_sleep(seconds: float) -> None:
    return None


def test_the_daily_limit_stops_the_sync_without_retrying() -> None:
    handler, seen = recording(throttled("DAILY"))
    with pytest.raises(QuotaExhaustedError, match="daily API limit") as caught:
        deliver_once(hubspot(handler), Batch(Operation.UPSERT, [person(1)]), SpyLimiter(), RetryPolicy())
    assert len(seen) == 1
    assert "next run" in str(caught.value)


def test_the_ten_second_limit_is_retried_and_the_limiter_reads_hubspots_headers() -> None:
    ok = httpx.Response(200, headers={**LIMIT_HEADERS, "X-HubSpot-RateLimit-Remaining": "57"},
                        json={"status": "COMPLETE", "results": []})
    handler, seen = recording(throttled("TEN_SECONDLY_ROLLING"), ok)
    limiter = SpyLimiter()
    retries: list[BaseException] = []

    async def run() -> BatchResult:
        destination = hubspot(handler)
        try:
            return await deliver(destination, target(), Batch(Operation.UPSERT, [person(1)]), limiter=limiter,
                                 policy=RetryPolicy(base_delay=0), sleep=_no_sleep,
                                 on_retry=lambda attempt, error, delay: retries.append(error))
        finally:
            await destination.close()

    assert asyncio.run(run()) == BatchResult()
    assert len(seen) == 2
    assert isinstance(retries[0], RetryableDestinationError)
    # HubSpot's count, plus room for the other batches in flight (max_concurrency 8 - 1).
    assert limiter.observed == [(0 + 7, 10.0), (57 + 7, 10.0)]
    assert limiter.throttles == [None]  # HubSpot sends no Retry-After: the limiter pauses a window
    assert limiter.clock.sleeps and sum(limiter.clock.sleeps) >= 10.0  # the retry waited for the window


# -- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "location"), [
    ({"batch_size": 101}, "crm.batch_size"),
    ({"batch_size": 0}, "crm.batch_size"),
    ({"rate_limit": {"requests": 0, "per_seconds": 10}}, "crm.rate_limit"),
    ({"rate_limit": {"per_seconds": 10}}, "crm.rate_limit"),
    ({"nulls": "wipe"}, "crm.nulls"),
    ({"base_url": "api.hubapi.com"}, "crm.base_url"),
])
def test_bad_config_is_a_config_error_naming_the_key(config: dict[str, Any], location: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HubSpotDestination("crm", {"type": "hubspot", "access_token": TOKEN, **config})
    assert caught.value.location == location


def test_declared_keys_validate_a_destinations_entry() -> None:
    check_config(HubSpotDestination, "crm", {"type": "hubspot", "access_token": TOKEN, "rate_limit":
                                             {"requests": 190, "per_seconds": 10}, "timeout": 5}, "destinations.yml")
    with pytest.raises(ConfigError, match="required key 'access_token'"):
        check_config(HubSpotDestination, "crm", {"type": "hubspot"}, "destinations.yml")
    assert all(k.help for k in HubSpotDestination.config_keys)
    assert "190" in next(k.help for k in HubSpotDestination.config_keys if k.name == "rate_limit")


def test_defaults_are_hubspots_documented_limits() -> None:
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": TOKEN})
    assert destination.effective_batch_size == 100
    assert HubSpotDestination.rate_limit == RateLimit(100, 10.0)
    assert destination.secrets() == [TOKEN]


def test_a_sync_needs_one_identity_field_except_to_append() -> None:
    destination = HubSpotDestination("crm", {"type": "hubspot", "access_token": TOKEN})
    with pytest.raises(ConfigError, match="by 2 fields \\(email, country\\)") as caught:
        destination.check_target(target(Mode.UPSERT, identity=("email", "country")))
    assert caught.value.location == "sync people__hubspot__contacts"
    destination.check_target(target(Mode.APPEND, identity=("email", "country")))
    with pytest.raises(ConfigError, match="is not a HubSpot object"):
        destination.check_target(target(obj="contacts/../owners"))


def test_hubspots_remaining_count_is_read_with_room_for_requests_in_flight() -> None:
    headers = httpx.Headers({"X-HubSpot-RateLimit-Remaining": "12",
                             "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"})
    assert limit_headers(1).read(headers) == (12, 10.0)
    assert limit_headers(8).read(headers) == (19, 10.0)
    assert limit_headers(8).read(httpx.Headers({})) is None
