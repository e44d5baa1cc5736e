"""``meta`` against ``MetaEmulator`` over HTTP: events, per-event refusals, audiences, throttling, tokens."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, MemoryIdStore, Mode, Operation, Record, SyncTarget
from dbt_activate.core.types import RateLimit as Limit
from dbt_activate.delivery import RateLimiter, using_limiter
from dbt_activate.destinations.meta import MetaDestination
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from dbt_activate.testing.meta import MetaEmulator
from tests.support.delivery import write_batches

PIXEL, AUDIENCE = "1234567890", "2345678901"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emu() -> Iterator[MetaEmulator]:
    with MetaEmulator() as emulator:
        yield emulator
    assert emulator.errors == []
    assert emulator.tokens_in_url == 0  # the token only ever travels in the Authorization header


def config(emu: MetaEmulator, **overrides: Any) -> dict[str, Any]:
    return {"type": "meta", "access_token": emu.token, "base_url": emu.base_url, "event_name": "Purchase",
            **overrides}


def target(obj: str, fields: Sequence[str], mode: Mode = Mode.APPEND) -> SyncTarget:
    return SyncTarget("s", obj, mode, tuple(FieldSpec(f, f) for f in fields), ("customer_id",))


def write(dest: MetaDestination, tgt: SyncTarget, *batches: Batch, limiter: RateLimiter | None = None
          ) -> list[BatchResult]:
    with using_limiter(limiter):  # a context variable: the event loop's task inherits it
        return write_batches(dest, tgt, *batches)


def event(i: int, **extra: Any) -> Record:
    return Record(f"order-{i}", {"customer_id": i, "event_time": int(time.time()) - 3600, "value": i * 2.0,
                                 "currency": "EUR", "email": f"User{i}@Example.com", **extra})


EVENT_FIELDS = ("customer_id", "event_time", "value", "currency", "email")


def test_events_are_sent_hashed_with_the_primary_key_as_event_id(emu: MetaEmulator) -> None:
    [result] = write(MetaDestination("meta", config(emu, test_event_code="TEST42")),
                     target(f"events:{PIXEL}", EVENT_FIELDS), Batch(Operation.APPEND, [event(1), event(2)]))
    assert result.rejected == {}
    received = emu.received()
    assert [e["event_id"] for e in received] == ["order-1", "order-2"]
    assert received[0]["user_data"] == {"em": [sha("user1@example.com")]}
    assert received[0]["test_event_code"] == "TEST42"


def test_one_invalid_event_rejects_only_its_row(emu: MetaEmulator) -> None:
    records = [event(i) for i in range(6)] + [event(6, currency="EURO")] + [event(7)]
    [result] = write(MetaDestination("meta", config(emu)), target(f"events:{PIXEL}", EVENT_FIELDS),
                     Batch(Operation.APPEND, records))
    assert list(result.rejected) == ["order-6"]
    assert "Invalid Currency Code" in result.rejected["order-6"]  # Meta's words
    assert sorted(e["event_id"] for e in emu.received()) == sorted(f"order-{i}" for i in (0, 1, 2, 3, 4, 5, 7))
    assert emu.counters.requests <= 1 + 2 * 3  # halving: a few more requests, not one per event


def test_old_events_are_rejected_before_sending(emu: MetaEmulator) -> None:
    stale = event(1, event_time=int(time.time()) - 8 * 86400)
    [result] = write(MetaDestination("meta", config(emu)), target(f"events:{PIXEL}", EVENT_FIELDS),
                     Batch(Operation.APPEND, [stale, event(2)]))
    assert "older than 7 days" in result.rejected["order-1"]
    assert [e["event_id"] for e in emu.received()] == ["order-2"]


def test_a_resent_batch_is_deduplicated_by_event_id(emu: MetaEmulator) -> None:
    batch = Batch(Operation.APPEND, [event(1)])
    write(MetaDestination("meta", config(emu)), target(f"events:{PIXEL}", EVENT_FIELDS), batch, batch)
    assert len(emu.received()) == 1


def test_audience_members_are_added_changed_and_removed(emu: MetaEmulator) -> None:
    store = MemoryIdStore()
    dest = MetaDestination("meta", config(emu))
    dest.id_store = store
    tgt = target(f"audience:{AUDIENCE}", ("customer_id", "email", "country_code"), Mode.MIRROR)
    people = [Record(str(i), {"customer_id": i, "email": f"p{i}@x.io", "country_code": "GB"}) for i in range(3)]
    write(dest, tgt, Batch(Operation.UPSERT, people))
    assert emu.member_emails() == {sha(f"p{i}@x.io") for i in range(3)}
    write(dest, tgt, Batch(Operation.UPSERT, [Record("1", {"customer_id": 1, "email": "new@x.io",
                                                           "country_code": "GB"})]),
          Batch(Operation.DELETE, [Record("2", {"customer_id": 2})]))
    assert emu.member_emails() == {sha("p0@x.io"), sha("new@x.io")}
    assert [m for m, _, _ in emu.requests_log] == ["POST", "DELETE", "POST", "DELETE"]
    assert all("@" not in v for v in store.ids.values())


def test_without_the_runners_store_the_batches_of_one_destination_share_one_in_memory(emu: MetaEmulator) -> None:
    dest = MetaDestination("meta", config(emu))  # no id_store: `plan`, a plugin's unit test
    tgt = target(f"audience:{AUDIENCE}", ("customer_id", "email", "country_code"), Mode.MIRROR)
    write(dest, tgt, Batch(Operation.UPSERT, [Record("1", {"customer_id": 1, "email": "p1@x.io",
                                                           "country_code": "GB"})]))
    write(dest, tgt, Batch(Operation.DELETE, [Record("1", {"customer_id": 1})]))
    assert emu.member_emails() == set()  # removed by the hashes the first batch kept
    assert dest.record_id_store() is dest.record_id_store()


def test_throttling_codes_pause_the_limiter_and_are_retried(emu: MetaEmulator) -> None:
    limiter = RateLimiter(Limit(60, 60.0))
    emu.inject("throttle")
    with pytest.raises(RetryableDestinationError, match="#17") as throttled:
        write(MetaDestination("meta", config(emu)), target(f"events:{PIXEL}", EVENT_FIELDS),
              Batch(Operation.APPEND, [event(1)]), limiter=limiter)
    assert throttled.value.retry_after == 60.0  # estimated_time_to_regain_access: 1 minute


def test_high_usage_slows_the_limiter_before_meta_throttles(emu: MetaEmulator) -> None:
    emu.usage = 95
    limiter = RateLimiter(Limit(60, 60.0))
    write(MetaDestination("meta", config(emu)), target(f"events:{PIXEL}", EVENT_FIELDS),
          Batch(Operation.APPEND, [event(1)]), limiter=limiter)
    assert limiter._paused_until > time.monotonic() + 30  # the next request waits about one window


def test_a_bad_token_stops_the_sync_and_is_never_shown(emu: MetaEmulator) -> None:
    with pytest.raises(DestinationError, match="access token") as refused:
        write(MetaDestination("meta", config(emu, access_token="wrong-token-123456")),
              target(f"events:{PIXEL}", EVENT_FIELDS), Batch(Operation.APPEND, [event(1)]))
    assert not isinstance(refused.value, RetryableDestinationError)
    assert "wrong-token-123456" not in str(refused.value)


@pytest.mark.parametrize(("obj", "fields", "mode", "message"), [
    ("pixel:1", ("email",), Mode.APPEND, "neither events"),
    (f"events:{PIXEL}", ("email",), Mode.UPSERT, "append"),
    (f"events:{PIXEL}", ("email", "full_name"), Mode.APPEND, "full_name would be sent in custom_data"),
    (f"audience:{AUDIENCE}", ("score",), Mode.MIRROR, "no audience identifier"),
])
def test_check_target_names_the_problem(emu: MetaEmulator, obj: str, fields: tuple[str, ...], mode: Mode,
                                        message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        MetaDestination("meta", config(emu)).check_target(target(obj, fields, mode))


def test_listed_by_dbt_activate_destinations_with_both_objects() -> None:
    from dbt_activate.dbt.catalog import installed_types

    [meta] = [t for t in installed_types() if t.kind == "meta"]
    assert meta.error is None and meta.rate_limit == "60 requests / 60 s"
    assert any(o.startswith("events:<pixel id> (append; 1,000") for o in meta.objects)
    assert any(o.startswith("audience:<custom audience id> (upsert, mirror; 10,000") for o in meta.objects)


@pytest.mark.parametrize("obj", ["events:999", "audience:999"])
def test_an_unknown_pixel_or_audience_stops_the_sync_without_halving(emu: MetaEmulator, obj: str) -> None:
    tgt = target(obj, (*EVENT_FIELDS,) if obj.startswith("events") else ("customer_id", "email"),
                 Mode.APPEND if obj.startswith("events") else Mode.UPSERT)
    with pytest.raises(DestinationError, match="does not exist"):
        write(MetaDestination("meta", config(emu)), tgt,
              Batch(Operation.APPEND if obj.startswith("events") else Operation.UPSERT, [event(i) for i in range(8)]))
    assert emu.counters.requests == 1
