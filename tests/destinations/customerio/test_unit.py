"""CustomerIODestination: value formatting and size packing (pure), requests and results over real
HTTP against CustomerIOEmulator, and answers the emulator does not give through httpx.MockTransport."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery import UnencodableValue
from dbt_activate.destinations.customerio.destination import CustomerIODestination
from dbt_activate.destinations.customerio.payload import (
    MAX_REQUEST_BYTES,
    cio_value,
    encode_item,
    event_id,
    pack,
)
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from dbt_activate.testing import Fault
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator
from tests.support.delivery import write_batches

SITE, KEY = "site-7c1e9a3f", "track-key-5b2d4e6f0a9b8c7d"
FIELDS = ("id", "name", "plan", "signed_up")
Handler = Callable[[httpx.Request], httpx.Response]


@pytest.fixture
def emu() -> Iterator[CustomerIOEmulator]:
    with CustomerIOEmulator(token=KEY, site_id=SITE) as emulator:
        yield emulator
    assert emulator.errors == []


def target(mode: Mode = Mode.UPSERT, identity: Sequence[str] = ("id",), obj: str = "people",
           fields: Sequence[str] = FIELDS, run_id: str = "run-1") -> SyncTarget:
    return SyncTarget("people__cio", obj, mode, tuple(FieldSpec(f, f) for f in fields), tuple(identity),
                      run_id=run_id)


def person(i: int, **changes: Any) -> Record:
    values = {"id": f"p{i}", "name": f"Name {i}", "plan": "pro", "signed_up": dt.date(2024, 5, 1)}
    return Record(str(i), {**values, **changes})


def cio(emu: CustomerIOEmulator | None = None, *, handler: Handler | None = None,
        **config: Any) -> CustomerIODestination:
    base = {"base_url": emu.base_url} if emu is not None else {}
    transport = httpx.MockTransport(handler) if handler is not None else None
    return CustomerIODestination("cio", {"type": "customerio", "site_id": SITE, "api_key": KEY, "timeout": 5,
                                         **base, **config}, transport=transport)


def write(dest: CustomerIODestination, operation: Operation, records: Sequence[Record],
          tgt: SyncTarget | None = None) -> BatchResult:
    return write_batches(dest, tgt or target(), Batch(operation, list(records)), open_first=False)[0]


# -- values and packing (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2015, 5, 1, 12, 30, 15), 1430483415),  # naive: taken as UTC
    (dt.datetime(2015, 5, 1, 14, 30, 15, tzinfo=dt.timezone(dt.timedelta(hours=2))), 1430483415),
    (dt.date(2015, 5, 1), 1430438400),  # midnight UTC
    (True, True), (Decimal("2.5"), 2.5), ("x", "x"), ([dt.date(2015, 5, 1)], [1430438400]),
])
def test_values_are_json_with_times_as_unix_seconds(value: Any, expected: Any) -> None:
    assert cio_value(value) == expected


def test_nan_is_not_a_value() -> None:
    with pytest.raises(UnencodableValue):
        cio_value(float("nan"))


def test_pack_keeps_every_request_under_the_limit_and_rejects_oversize_items() -> None:
    items = [(str(i), encode_item({"pad": "x" * 90})) for i in range(10)] + [("big", b"x" * 400)]
    result = BatchResult()
    requests = pack(items, result, limit=350, item_limit=300)
    assert [r.keys for r in requests] == [["0", "1", "2"], ["3", "4", "5"], ["6", "7", "8"], ["9"]]
    assert all(len(r.body()) <= 350 for r in requests)
    assert all(json.loads(r.body())["batch"] for r in requests)
    assert "400 bytes" in result.rejected["big"]


def test_event_ids_are_ulids_stable_per_seed() -> None:
    first = event_id("sync|run|1", 1_700_000_000_000)
    assert len(first) == 26 and first == event_id("sync|run|1", 1_700_000_000_000)
    assert first != event_id("sync|run|2", 1_700_000_000_000)
    assert first[:10] == event_id("other", 1_700_000_000_000)[:10]  # the time part


# -- requests over HTTP ---------------------------------------------------------------------------


def test_identify_creates_and_updates_people_and_null_removes(emu: CustomerIOEmulator) -> None:
    assert write(cio(emu), Operation.UPSERT, [person(1), person(2)]) == BatchResult()
    assert write(cio(emu), Operation.UPSERT, [person(2, plan=None, name="Renamed")]) == BatchResult()
    assert emu.person("id", "p1") == {"name": "Name 1", "plan": "pro", "signed_up": 1714521600}
    assert emu.person("id", "p2") == {"name": "Renamed", "signed_up": 1714521600}


def test_request_shape_and_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    assert write(cio(handler=handler, region="eu"), Operation.UPSERT, [person(1)]) == BatchResult()
    assert str(seen[0].url) == "https://track-eu.customer.io/api/v2/batch"
    assert seen[0].headers["Authorization"] == "Basic " + base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
    assert json.loads(seen[0].content) == {"batch": [
        {"type": "person", "identifiers": {"id": "p1"}, "action": "identify",
         "attributes": {"name": "Name 1", "plan": "pro", "signed_up": 1714521600}}]}


def test_email_identifies_and_stays_an_attribute(emu: CustomerIOEmulator) -> None:
    tgt = target(identity=("email",), fields=("email", "name"))
    assert write(cio(emu), Operation.UPSERT, [Record("1", {"email": "ada@example.com", "name": "Ada"})],
                 tgt) == BatchResult()
    assert emu.person("email", "ada@example.com") == {"email": "ada@example.com", "name": "Ada"}


def test_a_big_batch_is_split_into_requests_under_500_kb(emu: CustomerIOEmulator) -> None:
    records = [person(i, name="n" * 900, plan="p" * 900) for i in range(600)]  # ~1.9 KB each
    assert write(cio(emu), Operation.UPSERT, records) == BatchResult()
    assert len(emu.request_sizes) >= 3
    assert max(emu.request_sizes) <= MAX_REQUEST_BYTES
    assert len(emu.records()) == 600


def test_an_item_over_32_kb_is_rejected_with_its_size_and_the_others_sent(emu: CustomerIOEmulator) -> None:
    tgt = target(fields=("id", "tags"))
    records = [Record("1", {"id": "p1", "tags": ["t" * 100] * 400}), Record("2", {"id": "p2", "tags": ["a"]})]
    result = write(cio(emu), Operation.UPSERT, records, tgt)
    assert set(result.rejected) == {"1"} and "32 KB" in result.rejected["1"]
    assert [p["id"] for p in emu.records()] == ["p2"]


def test_per_item_errors_reject_those_records(emu: CustomerIOEmulator) -> None:
    emu.inject(Fault("partial", fail_indexes=(1,)))
    result = write(cio(emu), Operation.UPSERT, [person(1), person(2), person(3)])
    assert result.rejected == {"2": "injected failure"}
    assert [p["id"] for p in emu.records()] == ["p1", "p3"]


def test_an_attribute_value_over_1000_bytes_is_refused_by_customer_io(emu: CustomerIOEmulator) -> None:
    result = write(cio(emu), Operation.UPSERT, [person(1, name="x" * 1200), person(2)])
    assert result.rejected == {"1": "value for attribute 'name' cannot be longer than 1000 bytes"}


def test_a_request_level_400_rejects_its_records_with_meta_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"meta": {"error": "batch must be an array"}})

    result = write(cio(handler=handler), Operation.UPSERT, [person(1), person(2)])
    assert result.rejected == dict.fromkeys(("1", "2"), "HTTP 400: batch must be an array")


@pytest.mark.parametrize("errors", [["something went wrong"], [None], "something went wrong"])
def test_an_unreadable_error_in_a_2xx_answer_rejects_the_request_instead_of_acknowledging_it(errors: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(207, json={"errors": errors})

    result = write(cio(handler=handler), Operation.UPSERT, [person(1), person(2)])
    assert set(result.rejected) == {"1", "2"}
    assert all(r.startswith("Customer.io reported an error: ") for r in result.rejected.values())


def test_events_carry_a_stable_id_so_a_resent_batch_is_not_recorded_twice(emu: CustomerIOEmulator) -> None:
    tgt = target(Mode.APPEND, obj="plan_changed", fields=("id", "plan"))
    records = [Record("1", {"id": "p1", "plan": "pro"}), Record("2", {"id": "p2", "plan": None})]
    dest = cio(emu)

    async def twice() -> list[BatchResult]:  # the same batch again, e.g. a retry after a lost answer
        try:
            return [await dest.write(tgt, Batch(Operation.APPEND, records)) for _ in range(2)]
        finally:
            await dest.close()

    assert asyncio.run(twice()) == [BatchResult(), BatchResult()]
    assert [(e["name"], e["identifiers"], e["attributes"]) for e in emu.events] == [
        ("plan_changed", {"id": "p1"}, {"plan": "pro"}), ("plan_changed", {"id": "p2"}, {"plan": None})]
    assert write(cio(emu), Operation.APPEND, records, target(Mode.APPEND, obj="plan_changed", fields=("id", "plan"),
                                                             run_id="run-2")) == BatchResult()
    assert len(emu.events) == 4  # the next run's events are new events
    assert emu.people == {}  # events do not create people


def test_delete_and_clear(emu: CustomerIOEmulator) -> None:
    write(cio(emu), Operation.UPSERT, [person(1), person(2)])
    ids = [Record("1", {"id": "p1"}), Record("9", {"id": "p9"})]
    assert write(cio(emu), Operation.DELETE, ids, target(Mode.MIRROR)) == BatchResult()
    assert write(cio(emu), Operation.CLEAR, [Record("2", {"id": "p2"})]) == BatchResult()
    assert emu.records() == [{"cio_id": emu.records()[0]["cio_id"], "id": "p2"}]


def test_records_that_cannot_be_sent_are_rejected_before_sending(emu: CustomerIOEmulator) -> None:
    result = write(cio(emu), Operation.UPSERT, [person(1, plan=float("nan")), person(2, id=None), person(3)])
    assert set(result.rejected) == {"1", "2"} and "plan" in result.rejected["1"]
    assert [p["id"] for p in emu.records()] == ["p3"]


def test_429_is_retryable(emu: CustomerIOEmulator) -> None:
    emu.inject("throttle")
    with pytest.raises(RetryableDestinationError):
        write(cio(emu), Operation.UPSERT, [person(1)])


def test_wrong_credentials_fail_without_retry_or_leaking_them(emu: CustomerIOEmulator) -> None:
    with pytest.raises(DestinationError) as caught:
        write(cio(emu, api_key="wrong-track-key-123456"), Operation.UPSERT, [person(1)])
    assert not isinstance(caught.value, RetryableDestinationError)
    assert "wrong-track-key-123456" not in str(caught.value) and SITE not in str(caught.value)


def test_the_emulator_refuses_a_body_over_500_kb(emu: CustomerIOEmulator) -> None:
    body = {"batch": [{"type": "person", "identifiers": {"id": f"p{i}"}, "action": "identify",
                       "attributes": {"pad": "x" * 900}} for i in range(600)]}
    auth = base64.b64encode(f"{SITE}:{KEY}".encode()).decode()
    response = httpx.post(emu.base_url + "/api/v2/batch", json=body, headers={"Authorization": f"Basic {auth}"})
    assert response.status_code == 413 and "500kb" in response.json()["meta"]["error"]
    assert emu.records() == []


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [{"region": "apac"}, {"batch_size": 1001}, {"identify_by": "phone"},
                                    {"base_url": "track.customer.io"}])
def test_bad_config_is_a_config_error_naming_the_key(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        cio(**config)
    assert str(caught.value).startswith("cio.")


def test_a_composite_identity_is_refused() -> None:
    with pytest.raises(ConfigError, match="one identifier"):
        cio().check_target(target(identity=("a", "b")))
