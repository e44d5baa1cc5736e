"""BrazeDestination: value formatting (pure), request shapes and results over real HTTP against
BrazeEmulator, and vendor answers the emulator does not produce through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.delivery import RateLimiter, UnencodableValue, using_limiter
from dbt_activate.destinations.base import check_config
from dbt_activate.destinations.braze.destination import BrazeDestination, ResetHeaders
from dbt_activate.destinations.braze.payload import braze_value
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from dbt_activate.testing import Fault
from dbt_activate.testing.braze.emulator import NO_VALID_DATA, BrazeEmulator
from tests.support.delivery import write_batches

KEY = "braze-rest-key-5f4dcc3b5aa765d61d8327deb882cf99"
FIELDS = ("external_id", "name", "plan", "signed_up")
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def emu() -> Iterator[BrazeEmulator]:
    with BrazeEmulator(token=KEY) as emulator:
        yield emulator
    assert emulator.errors == []


def target(mode: Mode = Mode.UPSERT, identity: Sequence[str] = ("external_id",), obj: str = "users",
           fields: Sequence[str] = FIELDS) -> SyncTarget:
    return SyncTarget("people__braze__users", obj, mode, tuple(FieldSpec(f, f) for f in fields), tuple(identity),
                      run_id="run-1")


def user(i: int, **changes: Any) -> Record:
    values = {"external_id": f"u{i}", "name": f"Name {i}", "plan": "pro", "signed_up": dt.date(2024, 5, 1)}
    return Record(str(i), {**values, **changes})


def braze(emu: BrazeEmulator | None = None, *, handler: Handler | None = None, **config: Any) -> BrazeDestination:
    base = emu.base_url if emu is not None else "https://rest.iad-01.braze.com"
    transport = httpx.MockTransport(handler) if handler is not None else None
    return BrazeDestination("braze", {"type": "braze", "api_key": KEY, "base_url": base, "timeout": 5, **config},
                            transport=transport)


def write(dest: BrazeDestination, operation: Operation, records: Sequence[Record],
          tgt: SyncTarget | None = None) -> BatchResult:
    return write_batches(dest, tgt or target(), Batch(operation, list(records)), open_first=False)[0]


# -- values (pure) ------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2024, 5, 1, 12, 30, 15), "2024-05-01T12:30:15Z"),  # naive: taken as UTC
    (dt.datetime(2024, 5, 1, 14, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-05-01T12:30:00Z"),
    (dt.datetime(2024, 5, 1, 12, 0, 0, 250_000), "2024-05-01T12:00:00.250Z"),
    (dt.date(2024, 5, 1), "2024-05-01T00:00:00Z"),  # a date is a time attribute at midnight UTC
    (True, True), (3, 3), (2.5, 2.5), ("x", "x"), (None, None),
    ([dt.date(2024, 1, 2), "a"], ["2024-01-02T00:00:00Z", "a"]),
])
def test_values_are_json_with_times_as_iso_8601_utc(value: Any, expected: Any) -> None:
    assert braze_value(value) == expected


def test_nan_is_not_a_value() -> None:
    with pytest.raises(UnencodableValue):
        braze_value(float("nan"))


# -- requests over HTTP ---------------------------------------------------------------------------


def test_upsert_creates_and_updates_users_by_external_id(emu: BrazeEmulator) -> None:
    assert write(braze(emu), Operation.UPSERT, [user(1), user(2)]) == BatchResult()
    assert write(braze(emu), Operation.UPSERT, [user(2, plan="free", name=None)]) == BatchResult()
    assert emu.user("u1") == {"name": "Name 1", "plan": "pro", "signed_up": "2024-05-01T00:00:00Z"}
    assert emu.user("u2") == {"plan": "free", "signed_up": "2024-05-01T00:00:00Z"}  # NULL removed the name


def test_request_shape_and_bearer_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"message": "success", "attributes_processed": 1})

    assert write(braze(handler=handler), Operation.UPSERT, [user(1)]) == BatchResult()
    assert seen[0].url.path == "/users/track"
    assert seen[0].headers["Authorization"] == f"Bearer {KEY}"
    assert json.loads(seen[0].content) == {"attributes": [
        {"external_id": "u1", "name": "Name 1", "plan": "pro", "signed_up": "2024-05-01T00:00:00Z",
         "_update_existing_only": False}]}


def test_an_identity_named_otherwise_is_sent_as_the_identifier_only(emu: BrazeEmulator) -> None:
    tgt = target(identity=("customer_id",), fields=("customer_id", "name"))
    assert write(braze(emu), Operation.UPSERT, [Record("7", {"customer_id": 7, "name": "Ada"})], tgt) == BatchResult()
    assert emu.user("7") == {"name": "Ada"}


def test_email_identifies_and_stays_an_attribute(emu: BrazeEmulator) -> None:
    tgt = target(identity=("email",), fields=("email", "name"))
    record = Record("1", {"email": "ada@example.com", "name": "Ada"})
    assert write(braze(emu), Operation.UPSERT, [record], tgt) == BatchResult()
    [stored] = emu.records()
    assert stored["email"] == "ada@example.com" and stored["name"] == "Ada" and stored["external_id"] is None


def test_user_aliases_upsert_and_delete(emu: BrazeEmulator) -> None:
    tgt = target(identity=("crm_id",), fields=("crm_id", "name"), mode=Mode.MIRROR)
    dest_config: dict[str, Any] = {"identify_by": "user_alias", "alias_label": "crm"}
    records = [Record(str(i), {"crm_id": f"C{i}", "name": f"N{i}"}) for i in (1, 2)]
    assert write(braze(emu, **dest_config), Operation.UPSERT, records, tgt) == BatchResult()
    assert [u["user_alias"] for u in emu.records()] == [{"alias_label": "crm", "alias_name": "C1"},
                                                       {"alias_label": "crm", "alias_name": "C2"}]
    assert write(braze(emu, **dest_config), Operation.DELETE, [Record("1", {"crm_id": "C1"})], tgt) == BatchResult()
    assert [u["name"] for u in emu.records()] == ["N2"]


def test_update_changes_existing_users_and_creates_none(emu: BrazeEmulator) -> None:
    emu.add_user("u1", name="Old")
    assert write(braze(emu), Operation.UPDATE, [user(1), user(9)], target(Mode.UPDATE)) == BatchResult()
    assert emu.user("u1") == {"name": "Name 1", "plan": "pro", "signed_up": "2024-05-01T00:00:00Z"}
    assert emu.user("u9") is None  # acknowledged: Braze does not say it skipped it


def test_clear_removes_every_attribute_but_the_identity_and_never_creates(emu: BrazeEmulator) -> None:
    write(braze(emu), Operation.UPSERT, [user(1)])
    assert write(braze(emu), Operation.CLEAR, [Record("1", {"external_id": "u1"}),
                                               Record("9", {"external_id": "u9"})]) == BatchResult()
    assert emu.user("u1") == {}
    assert emu.user("u9") is None


def test_append_sends_events_named_after_the_object(emu: BrazeEmulator) -> None:
    tgt = target(Mode.APPEND, obj="plan_changed", fields=("external_id", "plan", "time"))
    records = [Record("1", {"external_id": "u1", "plan": "pro", "time": dt.datetime(2024, 5, 1, 9)}),
               Record("2", {"external_id": "u2", "plan": "free", "time": None})]
    before = time.time()
    assert write(braze(emu), Operation.APPEND, records, tgt) == BatchResult()
    first, second = emu.events
    assert first == {"braze_id": first["braze_id"], "external_id": "u1", "name": "plan_changed",
                     "time": "2024-05-01T09:00:00Z", "properties": {"plan": "pro"}}
    sent_at = dt.datetime.fromisoformat(second["time"].replace("Z", "+00:00")).timestamp()
    assert sent_at >= before - 1  # no time field value: the time of sending
    assert second["properties"] == {"plan": "free"}


def test_delete_is_sent_in_requests_of_50_and_missing_users_are_acknowledged(emu: BrazeEmulator) -> None:
    write(braze(emu), Operation.UPSERT, [user(i) for i in range(60)])
    emu.reset_counters()
    ids = [Record(str(i), {"external_id": f"u{i}"}) for i in range(120)]
    assert write(braze(emu), Operation.DELETE, ids, target(Mode.MIRROR)) == BatchResult()
    assert emu.counters.requests == 3
    assert emu.records() == []


def test_delete_by_email_or_phone_sends_objects_with_a_prioritization(emu: BrazeEmulator) -> None:
    # braze-docs post_user_delete.md: an email or phone entry is {"email": …, "prioritization": [...]};
    # the emulator refuses bare addresses with Braze's fatal 400, as Braze does.
    older = emu.add_user("u1", email="ada@example.com", name="Ada (identified)")
    newer = emu.add_user(None, email="ada@example.com", name="Ada (by email)")
    emu.add_user(None, phone="+15551234567", name="Bob")
    by_email = target(Mode.MIRROR, identity=("email",), fields=("email", "name"))
    described = braze().describe_request(by_email, Batch(Operation.DELETE, [Record("1", {"email": "ada@example.com"})]))
    assert described["body"] == {"email_addresses": [
        {"email": "ada@example.com", "prioritization": ["most_recently_updated"]}]}
    assert write(braze(emu), Operation.DELETE, [Record("1", {"email": "ada@example.com"})], by_email) == BatchResult()
    remaining = {u["braze_id"] for u in emu.records()}
    assert newer not in remaining and older in remaining  # the profile a by-email write updates
    by_phone = target(Mode.MIRROR, identity=("phone",), fields=("phone", "name"))
    assert write(braze(emu), Operation.DELETE, [Record("2", {"phone": "+15551234567"})], by_phone) == BatchResult()
    assert [u["braze_id"] for u in emu.records()] == [older]


def test_a_prioritization_that_leaves_several_users_deletes_none(emu: BrazeEmulator) -> None:
    kept = {emu.add_user(f"u{i}", email="shared@example.com") for i in (1, 2)}
    by_email = target(Mode.MIRROR, identity=("email",), fields=("email",))
    dest = braze(emu, delete_prioritization=["identified"])
    assert write(dest, Operation.DELETE, [Record("1", {"email": "shared@example.com"})], by_email) == BatchResult()
    assert {u["braze_id"] for u in emu.records()} == kept


def test_deletes_use_their_own_20000_per_minute_limit_not_the_track_limiter(emu: BrazeEmulator) -> None:
    async def no_wait(seconds: float) -> None:
        raise AssertionError(f"a delete waited {seconds:g}s for the /users/track limiter")

    # The run's /users/track limiter has room for one request only: three delete requests must not use it.
    track = RateLimiter(RateLimit(1, 3600.0), sleep=no_wait)
    dest = braze(emu)
    ids = [Record(str(i), {"external_id": f"u{i}"}) for i in range(120)]

    async def run() -> BatchResult:
        try:
            with using_limiter(track):
                return await dest.write(target(Mode.MIRROR), Batch(Operation.DELETE, ids))
        finally:
            await dest.close()

    assert asyncio.run(run()) == BatchResult()
    assert emu.counters.requests == 3
    assert dest.delete_limiter.limit == RateLimit(20_000, 60.0)


def test_minor_errors_reject_the_records_at_their_index(emu: BrazeEmulator) -> None:
    emu.inject(Fault("partial", fail_indexes=(1,)))
    result = write(braze(emu), Operation.UPSERT, [user(1), user(2), user(3)])
    assert result.rejected == {"2": "injected failure"}
    assert {u["external_id"] for u in emu.records()} == {"u1", "u3"}


def test_a_fatal_error_naming_every_object_rejects_each_with_its_reason(emu: BrazeEmulator) -> None:
    emu.inject(Fault("partial", fail_indexes=(0, 1)))
    result = write(braze(emu), Operation.UPSERT, [user(1), user(2)])
    assert result.rejected == {"1": "injected failure", "2": "injected failure"}


def test_a_fatal_error_naming_no_object_rejects_the_batch() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"message": NO_VALID_DATA})

    result = write(braze(handler=handler), Operation.UPSERT, [user(1), user(2)])
    assert result.rejected == dict.fromkeys(("1", "2"), f"HTTP 400: {NO_VALID_DATA}")


@pytest.mark.parametrize(("processed", "rejected"), [(2, {}), (1, {"1": "bad thing", "2": "bad thing"})])
def test_a_minor_error_without_index_rejects_unless_every_object_was_processed(
        processed: int, rejected: dict[str, str]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"message": "success", "attributes_processed": processed,
                                         "errors": ["bad thing"]})

    assert write(braze(handler=handler), Operation.UPSERT, [user(1), user(2)]).rejected == rejected


def test_records_that_cannot_be_sent_are_rejected_before_sending(emu: BrazeEmulator) -> None:
    result = write(braze(emu), Operation.UPSERT, [user(1, name=float("inf")), user(2, external_id=""), user(3)])
    assert set(result.rejected) == {"1", "2"}
    assert "name" in result.rejected["1"] and "empty" in result.rejected["2"]
    assert [u["external_id"] for u in emu.records()] == ["u3"]


def test_429_waits_for_x_ratelimit_reset(emu: BrazeEmulator) -> None:
    emu.rate_limit = (1, 30.0)
    write(braze(emu), Operation.UPSERT, [user(1)])
    with pytest.raises(RetryableDestinationError) as caught:
        write(braze(emu), Operation.UPSERT, [user(2)])
    assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 31
    assert emu.counters.throttled == 1


def test_reset_headers_give_remaining_and_seconds_to_reset() -> None:
    headers = httpx.Headers({"X-RateLimit-Remaining": "12", "X-RateLimit-Reset": str(int(time.time()) + 3)})
    remaining, seconds = ResetHeaders("X-RateLimit-Remaining").read(headers) or (0, None)
    assert remaining == 12 and seconds is not None and 1.5 <= seconds <= 3


def test_a_wrong_key_fails_without_retry_or_leaking_it(emu: BrazeEmulator) -> None:
    with pytest.raises(DestinationError) as caught:
        write(braze(emu, api_key="wrong-key-0123456789"), Operation.UPSERT, [user(1)])
    assert not isinstance(caught.value, RetryableDestinationError)
    assert "wrong-key-0123456789" not in str(caught.value)


def test_emulator_caps_objects_per_array_or_in_total() -> None:
    body = {"attributes": [{"external_id": f"u{i}"} for i in range(40)],
            "events": [{"external_id": "u1", "name": "e", "time": "2024-01-01T00:00:00Z"}] * 40}
    for cap, status in (("array", 201), ("total", 400)):
        with BrazeEmulator(token=KEY, objects_cap=cap) as emulator:
            response = httpx.post(emulator.base_url + "/users/track", json=body,
                                  headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == status


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{"batch_size": 76}, {"batch_size": 0}, {"base_url": "rest.iad-01.braze.com"},
                                    {"identify_by": "phone_number"}, {"identify_by": "user_alias"},
                                    {"delete_prioritization": []}, {"delete_prioritization": ["newest"]},
                                    {"delete_prioritization": ["identified", "unidentified"]},
                                    {"delete_prioritization": "most_recently_updated"}])
def test_bad_config_is_a_config_error_naming_the_key(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        braze(**config)
    assert str(caught.value).startswith("braze.")


def test_base_url_and_api_key_are_required() -> None:
    with pytest.raises(ConfigError, match="base_url"):
        check_config(BrazeDestination, "braze", {"type": "braze", "api_key": KEY}, "destinations.yml")


def test_a_composite_identity_is_refused() -> None:
    with pytest.raises(ConfigError, match="one identifier"):
        braze().check_target(target(identity=("a", "b")))
