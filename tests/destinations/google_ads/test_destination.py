"""``google_ads`` against ``GoogleAdsEmulator`` over HTTP: OAuth, headers, partial failures, jobs, quotas."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, MemoryIdStore, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery.jobs import JobPolling
from dbt_activate.destinations.google_ads import GoogleAdsDestination
from dbt_activate.destinations.google_ads.destination import KEPT_HASHES
from dbt_activate.destinations.google_ads.jobs import CustomerMatchJob, JobSettings
from dbt_activate.errors import (
    ConfigError,
    DestinationError,
    QuotaExhaustedError,
    Redactor,
    RetryableDestinationError,
)
from dbt_activate.testing.google_ads import GoogleAdsEmulator
from tests.support.delivery import FakeClock, write_batches

UTC = dt.timezone.utc
CLICKED = dt.datetime(2026, 1, 1, tzinfo=UTC)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def emu() -> Iterator[GoogleAdsEmulator]:
    with GoogleAdsEmulator(manager_id="1112223333", clicks={f"G{i}": CLICKED for i in range(10)},
                           polls_until_done=2) as emulator:
        yield emulator
    assert emulator.errors == []


def config(emu: GoogleAdsEmulator, **overrides: Any) -> dict[str, Any]:
    return {"type": "google_ads", "developer_token": emu.developer_token, "client_id": emu.client_id,
            "client_secret": emu.client_secret, "refresh_token": emu.refresh_token, "customer_id": "123-456-7890",
            "login_customer_id": "111-222-3333", "conversion_action": "987", "base_url": emu.base_url,
            "token_url": emu.base_url + "/token", "job_poll_interval": 0.01, **overrides}


def target(obj: str, fields: Sequence[str], mode: Mode = Mode.APPEND) -> SyncTarget:
    return SyncTarget("s", obj, mode, tuple(FieldSpec(f, f) for f in fields), ("customer_id",))


def write(dest: GoogleAdsDestination, tgt: SyncTarget, *batches: Batch) -> list[BatchResult]:
    return write_batches(dest, tgt, *batches)


def conversion(i: int, gclid: str | None = None, **extra: Any) -> Record:
    return Record(str(i), {"customer_id": i, "gclid": gclid or f"G{i}", "order_id": f"O-{i}",
                           "conversion_date_time": dt.datetime(2026, 1, 2, 10, i, tzinfo=UTC),
                           "conversion_value": i * 1.5, "currency_code": "EUR", **extra})


CONVERSION_FIELDS = ("customer_id", "gclid", "order_id", "conversion_date_time", "conversion_value", "currency_code")


def test_conversions_reject_only_the_rows_google_refuses(emu: GoogleAdsEmulator) -> None:
    dest = GoogleAdsDestination("ads", config(emu))
    records = [conversion(1), conversion(2, gclid="unknown-click"), conversion(3),
               conversion(4, gclid=None, conversion_value="lots")]
    [result] = write(dest, target("conversions", CONVERSION_FIELDS), Batch(Operation.APPEND, records))
    assert set(result.rejected) == {"2", "4"}
    assert result.rejected["2"].startswith("EVENT_NOT_FOUND: ")  # Google's code and message, by index
    assert "conversion_value" in result.rejected["4"]  # refused before sending
    assert [c["orderId"] for c in emu.uploaded()] == ["O-1", "O-3"]
    assert emu.uploaded()[0]["conversionDateTime"] == "2026-01-02 10:01:00+00:00"


def test_a_resent_batch_is_acknowledged_not_rejected(emu: GoogleAdsEmulator) -> None:
    dest = GoogleAdsDestination("ads", config(emu))
    batch = Batch(Operation.APPEND, [conversion(1), conversion(2)])
    first, again = write(dest, target("conversions", CONVERSION_FIELDS), batch, batch)
    assert first.rejected == {} and again.rejected == {}  # CLICK_CONVERSION_ALREADY_EXISTS: Google has them
    assert len(emu.uploaded()) == 2


def test_customer_match_adds_changes_and_removes_members_through_jobs(emu: GoogleAdsEmulator) -> None:
    store = MemoryIdStore()
    dest = GoogleAdsDestination("ads", config(emu))
    dest.id_store = store
    tgt = target("5550001", ("customer_id", "email", "phone_number"), Mode.MIRROR)
    people = [Record(str(i), {"customer_id": i, "email": f"P.{i}@gmail.com", "phone_number": f"+4477009001{i:02d}"})
              for i in range(4)]
    [added] = write(dest, tgt, Batch(Operation.UPSERT, people))
    assert added.rejected == {} and emu.job_statuses() == ["SUCCESS"]
    assert emu.member_emails("5550001") == {sha(f"p{i}@gmail.com") for i in range(4)}
    changed = Record("1", {"customer_id": 1, "email": "new.one@example.com", "phone_number": None})
    gone = Record("2", {"customer_id": 2})
    write(dest, tgt, Batch(Operation.UPSERT, [changed]), Batch(Operation.DELETE, [gone]))
    assert emu.member_emails("5550001") == {sha("p0@gmail.com"), sha("new.one@example.com"), sha("p3@gmail.com")}
    assert emu.job_statuses() == ["SUCCESS"] * 3  # one job per batch
    assert all("@" not in v and "+44" not in v for v in store.ids.values())  # the state keeps hashes only


def test_customer_match_rows_google_refuses_are_rejected_by_operation_index(emu: GoogleAdsEmulator) -> None:
    dest = GoogleAdsDestination("ads", config(emu))
    tgt = target("5550001", ("customer_id", "email"), Mode.UPSERT)
    emu.inject("partial", fail_indexes=(1,))
    [result] = write(dest, tgt, Batch(Operation.UPSERT, [Record(str(i), {"customer_id": i, "email": f"u{i}@x.io"})
                                                         for i in range(3)] + [Record("9", {"customer_id": 9})]))
    assert set(result.rejected) == {"1", "9"}
    assert result.rejected["1"].startswith("INVALID_SHA256_FORMAT")
    assert "no identifier" in result.rejected["9"]
    assert emu.member_emails("5550001") == {sha("u0@x.io"), sha("u2@x.io")}


def test_a_failed_job_acknowledges_nothing(emu: GoogleAdsEmulator) -> None:
    dest = GoogleAdsDestination("ads", config(emu))
    emu.fail_next_job()
    with pytest.raises(DestinationError, match="failed"):
        write(dest, target("5550001", ("customer_id", "email"), Mode.UPSERT),
              Batch(Operation.UPSERT, [Record("1", {"customer_id": 1, "email": "a@b.co"})]))
    assert emu.member_emails("5550001") == set()


def test_headers_auth_and_the_manager_account(emu: GoogleAdsEmulator) -> None:
    tgt = target("conversions", CONVERSION_FIELDS)
    with pytest.raises(DestinationError, match="USER_PERMISSION_DENIED"):
        write(GoogleAdsDestination("ads", config(emu, login_customer_id=None)), tgt,
              Batch(Operation.APPEND, [conversion(1)]))
    with pytest.raises(DestinationError, match="DEVELOPER_TOKEN_NOT_APPROVED") as refused:
        write(GoogleAdsDestination("ads", config(emu, developer_token="wrong-dev-token")), tgt,
              Batch(Operation.APPEND, [conversion(1)]))
    assert "wrong-dev-token" not in str(refused.value)
    with pytest.raises(DestinationError, match="invalid_grant"):
        write(GoogleAdsDestination("ads", config(emu, refresh_token="revoked-token")), tgt,
              Batch(Operation.APPEND, [conversion(1)]))


def test_throttling_is_retryable_and_the_daily_quota_stops_the_sync(emu: GoogleAdsEmulator) -> None:
    tgt = target("conversions", CONVERSION_FIELDS)
    emu.inject("throttle")
    with pytest.raises(RetryableDestinationError) as throttled:
        write(GoogleAdsDestination("ads", config(emu)), tgt, Batch(Operation.APPEND, [conversion(1)]))
    assert throttled.value.retry_after is not None and throttled.value.retry_after < 900
    emu.daily_limit = emu.daily_used  # the token request counts too: the quota is used up from now on
    with pytest.raises(QuotaExhaustedError, match="next run"):
        write(GoogleAdsDestination("ads", config(emu)), tgt, Batch(Operation.APPEND, [conversion(2)]))


def test_describe_request_shows_hashes_never_the_raw_values(emu: GoogleAdsEmulator) -> None:
    dest = GoogleAdsDestination("ads", config(emu))
    tgt = target("5550001", ("customer_id", "email"), Mode.MIRROR)
    described = str(dest.describe_request(tgt, Batch(Operation.UPSERT, [Record("1", {"customer_id": 1,
                                                                                      "email": "Ada@Example.com"})])))
    assert sha("ada@example.com") in described and "Ada@Example.com" not in described
    removal = dest.describe_request(tgt, Batch(Operation.DELETE, [Record("1", {"customer_id": 1})]))
    assert removal["then"][0]["body"]["operations"] == [{"remove": {"userIdentifiers": KEPT_HASHES}}]
    assert emu.counters.requests == 0  # no network


@pytest.mark.parametrize(("obj", "mode", "identity", "message"), [
    ("conversions", Mode.UPSERT, ("customer_id",), "append"),
    ("my-list", Mode.UPSERT, ("customer_id",), "user list id"),
    ("5550001", Mode.MIRROR, ("email",), "personal data"),
])
def test_check_target_names_the_problem(emu: GoogleAdsEmulator, obj: str, mode: Mode, identity: tuple[str, ...],
                                        message: str) -> None:
    tgt = SyncTarget("s", obj, mode, (FieldSpec("email", "email"), FieldSpec("gclid", "gclid")), identity)
    with pytest.raises(ConfigError, match=message):
        GoogleAdsDestination("ads", config(emu)).check_target(tgt)


def test_listed_by_dbt_activate_destinations_with_both_objects() -> None:
    from dbt_activate.dbt.catalog import installed_types

    [ads] = [t for t in installed_types() if t.kind == "google_ads"]
    assert ads.error is None and ads.rate_limit == "5 requests / 1 s"
    assert any(o.startswith("conversions (append; 2,000") for o in ads.objects)
    assert any(o.startswith("<user list id> (upsert, mirror") for o in ads.objects)


def test_resource_exhausted_is_retried_under_the_shared_rate_limiter(emu: GoogleAdsEmulator) -> None:
    from dbt_activate.core.types import RateLimit
    from dbt_activate.delivery import RateLimiter, RetryPolicy, deliver

    dest = GoogleAdsDestination("ads", config(emu))
    tgt = target("conversions", CONVERSION_FIELDS)
    limiter = RateLimiter(RateLimit(5, 1.0))
    pauses: list[float] = []

    async def no_sleep(seconds: float) -> None:
        pauses.append(seconds)

    async def run() -> BatchResult:
        await dest.open(tgt)
        try:
            emu.inject("throttle", path="uploadClickConversions")
            return await deliver(dest, tgt, Batch(Operation.APPEND, [conversion(1)]), limiter=limiter,
                                 policy=RetryPolicy(base_delay=0.0), sleep=no_sleep)
        finally:
            await dest.close()

    assert asyncio.run(run()) == BatchResult()
    assert pauses == [1.0]  # Google's retryDelay, honoured
    assert [c["orderId"] for c in emu.uploaded()] == ["O-1"]


class ScriptedJob:
    """``send`` of a Customer Match job whose polls answer ``polls`` one after another (an exception is
    raised, as the session raises a 429 or 5xx); every request is kept in ``sent``."""

    def __init__(self, polls: Sequence[dict[str, Any] | Exception]) -> None:
        self._polls = iter(polls)
        self.sent: list[str] = []

    async def send(self, method: str, path: str, body: Any) -> httpx.Response:
        self.sent.append(f"{method} {path.rsplit(':', 1)[-1] if ':' in path else 'poll'}")
        if path.endswith(":create"):
            return httpx.Response(200, json={"resourceName": "customers/1234567890/offlineUserDataJobs/9"})
        if path.endswith(":run"):
            return httpx.Response(200, json={"name": "customers/1234567890/operations/9"})
        if path.endswith(":addOperations"):
            return httpx.Response(200, json={})
        answer = next(self._polls)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(200, json=answer)


def run_job(scripted: ScriptedJob, polling: JobPolling, clock: FakeClock) -> None:
    settings = JobSettings("v25", "1234567890", 10_000, polling)
    job = CustomerMatchJob("ads", settings, scripted.send, Redactor(), sleep=clock.sleep, clock=clock)
    asyncio.run(job.run("customers/1234567890/userLists/5550001", [{"create": {"userIdentifiers": []}}]))


def test_customer_match_jobs_are_polled_by_the_shared_poller() -> None:
    # delivery.jobs: job_poll_interval between polls; a throttled poll is read again after Retry-After,
    # a failing one after a pause doubling from job_poll_interval, and the job is never run again.
    clock = FakeClock(start=0.0)
    scripted = ScriptedJob([{"done": False}, RetryableDestinationError("429", retry_after=7.0),
                            RetryableDestinationError("502"), RetryableDestinationError("502"), {"done": True}])
    run_job(scripted, JobPolling(5.0, 3600.0), clock)
    assert clock.sleeps == [5.0, 5.0, 7.0, 10.0, 20.0]
    assert scripted.sent == ["POST create", "POST addOperations", "POST run"] + ["GET poll"] * 5


def test_a_customer_match_job_still_running_at_job_timeout_fails_the_batch() -> None:
    clock = FakeClock(start=0.0)
    scripted = ScriptedJob([{"done": False}] * 10)
    with pytest.raises(DestinationError, match=r"still running after 12s \(job_timeout\)") as caught:
        run_job(scripted, JobPolling(5.0, 12.0), clock)
    assert not isinstance(caught.value, RetryableDestinationError)  # nothing acknowledged: the next run adds again
    assert clock.now == 15.0 and scripted.sent.count("GET poll") == 3  # polls at 5, 10 and 15 s from the first
