"""PipedriveDestination over httpx.MockTransport: fields, the id store, operations, throttling, quota."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import (
    Batch,
    BatchResult,
    FieldSpec,
    MemoryIdStore,
    Mode,
    Operation,
    RateLimit,
    Record,
    SyncTarget,
)
from dbt_activate.delivery import RateLimiter, RetryPolicy, deliver
from dbt_activate.destinations.base import check_config, load_destination_type
from dbt_activate.destinations.pipedrive.api import daily_budget_spent
from dbt_activate.destinations.pipedrive.destination import PipedriveDestination
from dbt_activate.errors import ConfigError, DestinationError, QuotaExhaustedError, RetryableDestinationError
from tests.support.delivery import FakeClock

TOKEN = "pd-token-3f9a8c7e6d5b4a39"
TIER = "9a6921d033a6faa7068f649af413c437ccec2f3d"
DRIVER = "703180efac0836265ccf78a8b59770b677a00639"
FAST = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0, jitter=False)
Reply = Callable[[httpx.Request], httpx.Response]


class FakePipedrive:
    """Just enough of Pipedrive for unit tests: persons, exact search, fields, scripted replies."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.persons: dict[int, dict[str, Any]] = {}
        self.next_id = 100
        self.replies: list[tuple[str, str, httpx.Response]] = []  # (method, path, response), used once
        self.fields: list[dict[str, Any]] = [
            {"key": "name", "name": "Name", "field_type": "varchar"},
            {"key": "email", "name": "Email", "field_type": "varchar"},
            {"key": TIER, "name": "Tier", "field_type": "enum", "options": [{"id": 7, "label": "Gold"}]},
            {"key": DRIVER, "name": "Driver ID", "field_type": "varchar"},
        ]

    def add(self, email: str, **values: Any) -> int:
        self.next_id += 1
        self.persons[self.next_id] = {"id": self.next_id, "name": email.split("@")[0], "custom_fields": {},
                                      "emails": [{"value": email, "primary": True, "label": "work"}], **values}
        return self.next_id

    def reply(self, method: str, path: str, status: int, body: Any = None, **headers: str) -> None:
        self.replies.append((method, path, httpx.Response(status, json=body, headers=headers)))

    def calls(self, method: str | None = None) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests if method in (None, r.method)]

    def bodies(self, method: str) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.requests if r.method == method]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        for i, (method, wanted, response) in enumerate(self.replies):
            if method == request.method and wanted == path:
                del self.replies[i]
                return response
        if path.endswith("Fields"):
            fields = self.fields if path == "/v1/personFields" else []
            return _ok(fields, {"pagination": {"more_items_in_collection": False}})
        if path == "/api/v2/persons/search":
            email = request.url.params["term"].lower()
            hits = [{"result_score": 1, "item": {"id": p["id"], "emails": [e["value"] for e in p["emails"]]}}
                    for p in self.persons.values() if email in (e["value"].lower() for e in p["emails"])]
            return _ok({"items": hits})
        if path == "/api/v2/itemSearch/field":
            field, value = request.url.params["field"], request.url.params["term"]
            return _ok([{"id": p["id"], "name": p["name"]} for p in self.persons.values()
                        if p["custom_fields"].get(field) == value])
        if request.method == "POST" and path == "/api/v2/persons":
            self.next_id += 1
            self.persons[self.next_id] = {"id": self.next_id, "custom_fields": {}, **json.loads(request.content)}
            return _ok(self.persons[self.next_id])
        record_id = int(path.rsplit("/", 1)[1])
        if record_id not in self.persons:
            return httpx.Response(404, json={"success": False, "error": "Person not found"})
        if request.method == "DELETE":
            del self.persons[record_id]
            return _ok({"id": record_id})
        body = json.loads(request.content)
        custom = {**self.persons[record_id]["custom_fields"], **body.pop("custom_fields", {})}
        self.persons[record_id].update(body, custom_fields=custom)
        return _ok(self.persons[record_id])


def _ok(data: Any, additional: dict[str, Any] | None = None) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "data": data, "additional_data": additional})


def _target(mode: Mode = Mode.UPSERT, fields: Sequence[str] = ("email", "name", "Tier"),
            identity: Sequence[str] = ("email",), obj: str = "persons") -> SyncTarget:
    return SyncTarget(sync_name="drivers__pd__persons", object=obj, mode=mode,
                      fields=tuple(FieldSpec(f, f) for f in fields), identity=tuple(identity), run_id="r1")


def _destination(fake: Reply, store: MemoryIdStore | None = None, **config: Any) -> PipedriveDestination:
    destination = PipedriveDestination("pd", {"type": "pipedrive", "api_token": TOKEN,
                                              "base_url": "https://pd.test", **config},
                                       transport=httpx.MockTransport(fake))
    destination.id_store = store
    return destination


def _person(key: str, email: str, **values: Any) -> Record:
    return Record(key, {"email": email, "name": f"Driver {key}", "Tier": "Gold", **values})


def _run(destination: PipedriveDestination, target: SyncTarget, *batches: Batch,
         limiter: RateLimiter | None = None, policy: RetryPolicy = FAST) -> list[BatchResult]:
    async def go() -> list[BatchResult]:
        try:
            await destination.open(target)
            return [await deliver(destination, target, b, limiter=limiter, policy=policy) for b in batches]
        finally:
            await destination.close()

    return asyncio.run(go())


def test_the_entry_point_and_config_keys() -> None:
    assert load_destination_type("pipedrive") is PipedriveDestination
    with pytest.raises(ConfigError, match="required key 'api_token' is missing"):
        check_config(PipedriveDestination, "pd", {"type": "pipedrive"}, "destinations.yml")
    check_config(PipedriveDestination, "pd", {"type": "pipedrive", "api_token": "t", "company_domain": "acme",
                                               "rate_limit": {"requests": 40, "per_seconds": 2}, "timeout": 10,
                                               "max_concurrency": 1}, "destinations.yml")
    assert PipedriveDestination.rate_limit == RateLimit(20, 2.0)
    assert PipedriveDestination("pd", {"api_token": TOKEN}).secrets() == [TOKEN]


@pytest.mark.parametrize(("config", "origin", "v1"), [
    ({}, "https://api.pipedrive.com", "/v1"),
    ({"company_domain": "acme"}, "https://acme.pipedrive.com", "/api/v1"),
    ({"company_domain": "https://acme.pipedrive.com/"}, "https://acme.pipedrive.com", "/api/v1"),
    ({"base_url": "http://127.0.0.1:9000/", "company_domain": "acme"}, "http://127.0.0.1:9000", "/v1"),
])
def test_where_requests_go(config: dict[str, Any], origin: str, v1: str) -> None:
    destination = PipedriveDestination("pd", {"api_token": TOKEN, **config})
    assert (destination.origin, destination.v1_prefix) == (origin, v1)


@pytest.mark.parametrize("config", [{"company_domain": "acme.example.com"}, {"base_url": "pd.test"}])
def test_bad_addresses_are_config_errors(config: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PipedriveDestination("pd", {"api_token": TOKEN, **config})


def test_custom_fields_by_name_are_sent_under_their_keys_with_the_token_in_a_header_only() -> None:
    fake = FakePipedrive()
    target = _target(fields=("email", "name", "Tier", "Driver ID"))
    records = [_person("1", "ada@x.com", **{"Driver ID": "D1"})]
    [result] = _run(_destination(fake), target, Batch(Operation.UPSERT, records))
    assert result == BatchResult()
    assert result.ids == {"1": str(next(iter(fake.persons)))}
    assert fake.calls() == ["GET /v1/personFields", "GET /api/v2/persons/search", "POST /api/v2/persons"]
    # Header only, v1 included: a token in a URL ends up in proxies' logs.
    assert all(r.headers["x-api-token"] == TOKEN and TOKEN not in str(r.url) for r in fake.requests)
    search = fake.requests[1].url.params
    assert (search["term"], search["fields"], search["exact_match"]) == ("ada@x.com", "email", "true")
    assert fake.bodies("POST") == [{"name": "Driver 1", "emails": [{"value": "ada@x.com", "primary": True,
                                                                    "label": "work"}],
                                    "custom_fields": {TIER: 7, DRIVER: "D1"}}]


def test_standard_fields_only_do_not_read_the_field_definitions() -> None:
    fake = FakePipedrive()
    _run(_destination(fake), _target(fields=("email", "name")),
         Batch(Operation.UPSERT, [Record("1", {"email": "a@x.com", "name": "A"})]))
    assert "GET /v1/personFields" not in fake.calls()


def test_an_unknown_field_name_fails_at_open_naming_field_and_object() -> None:
    fake = FakePipedrive()
    with pytest.raises(ConfigError) as info:
        _run(_destination(fake), _target(fields=("email", "name", "Favourite colour")))
    assert "Pipedrive persons have no field 'Favourite colour'" in str(info.value)
    assert "drivers__pd__persons: fields" in str(info.value)
    assert fake.calls() == ["GET /v1/personFields"]


@pytest.mark.parametrize(("target", "message"), [
    (_target(identity=("email", "name")), "finds a record by one field"),
    (_target(obj="leads"), "object 'leads' is not supported"),
    (_target(fields=("email", "Tier")), "needs persons to have a 'name' to create them"),
    (_target(identity=("Tier",)), "'enum' custom field, which Pipedrive cannot search"),
    (_target(identity=("name",), fields=("email", "name"), obj="deals"), "deals have no field 'email'"),
])
def test_syncs_pipedrive_cannot_serve_are_config_errors(target: SyncTarget, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _run(_destination(FakePipedrive()), target)


def test_known_ids_are_not_searched_again_and_new_ones_are_stored() -> None:
    fake = FakePipedrive()
    known = fake.add("known@x.com")
    found = fake.add("found@x.com")
    store = MemoryIdStore({"persons|emails|known@x.com": str(known)})
    records = [_person("1", "known@x.com"), _person("2", "found@x.com"), _person("3", "new@x.com")]
    [result] = _run(_destination(fake, store), _target(), Batch(Operation.UPSERT, records))
    searched = sorted(r.url.params["term"] for r in fake.requests if r.url.path.endswith("/search"))
    assert searched == ["found@x.com", "new@x.com"]
    assert sorted(fake.calls("PATCH")) == sorted([f"PATCH /api/v2/persons/{known}", f"PATCH /api/v2/persons/{found}"])
    assert fake.calls("POST") == ["POST /api/v2/persons"]
    created = next(p["id"] for p in fake.persons.values() if p["emails"][0]["value"] == "new@x.com")
    assert store.ids == {"persons|emails|known@x.com": str(known), "persons|emails|found@x.com": str(found),
                         "persons|emails|new@x.com": str(created)}
    # The id of every record written, by sync key, for the syncs that reference these (links.py).
    assert (result, result.ids) == (BatchResult(), {"1": str(known), "2": str(found), "3": str(created)})

    # The next run (a new destination on the same store) writes without a single search.
    fake.requests.clear()
    changed = [_person(k, e, name="Renamed") for k, e in (("1", "known@x.com"), ("2", "found@x.com"),
                                                            ("3", "new@x.com"))]
    _run(_destination(fake, store), _target(), Batch(Operation.UPSERT, changed))
    assert [c.split()[0] for c in fake.calls() if "personFields" not in c] == ["PATCH"] * 3
    assert {p["name"] for p in fake.persons.values()} == {"Renamed"}


def test_a_stale_id_falls_back_to_search() -> None:
    fake = FakePipedrive()
    real = fake.add("ada@x.com")
    store = MemoryIdStore({"persons|emails|ada@x.com": "1", "persons|emails|bob@x.com": "2"})
    records = [_person("1", "ada@x.com"), _person("2", "bob@x.com")]
    [result] = _run(_destination(fake, store), _target(), Batch(Operation.UPSERT, records))
    bob = next(p["id"] for p in fake.persons.values() if p["emails"][0]["value"] == "bob@x.com")
    assert (result, result.ids) == (BatchResult(), {"1": str(real), "2": str(bob)})  # found, not the stale ones
    assert store.ids == {"persons|emails|ada@x.com": str(real), "persons|emails|bob@x.com": str(bob)}
    assert sorted(fake.calls("PATCH")) == sorted(["PATCH /api/v2/persons/1", "PATCH /api/v2/persons/2",
                                                  f"PATCH /api/v2/persons/{real}"])
    assert fake.calls("POST") == ["POST /api/v2/persons"]  # bob was not found: created


def test_update_create_delete_and_clear() -> None:
    fake = FakePipedrive()
    ada = fake.add("ada@x.com", custom_fields={TIER: 7})
    gone = fake.add("gone@x.com")
    store = MemoryIdStore({"persons|emails|gone@x.com": str(gone), "persons|emails|ghost@x.com": "999"})
    destination = _destination(fake, store)
    results = _run(destination, _target(), Batch(Operation.UPDATE, [_person("1", "ada@x.com", name="Ada"),
                                                                    _person("2", "nobody@x.com")]),
                   Batch(Operation.CREATE, [_person("3", "ada@x.com"), _person("4", "new@x.com")]),
                   Batch(Operation.DELETE, [Record("5", {"email": "gone@x.com"}), Record("6", {"email": "none@x.com"}),
                                            Record("7", {"email": "ghost@x.com"})]),
                   Batch(Operation.CLEAR, [Record("1", {"email": "ada@x.com"})]))
    assert results[0].skipped == {"2": "no Pipedrive person with email='nobody@x.com'"}
    assert results[1].skipped == {"3": f"a Pipedrive person with email='ada@x.com' exists (id {ada})"}
    # Skipped records report no id; deleted ones neither (their id is forgotten); cleared ones keep theirs.
    new = next(p["id"] for p in fake.persons.values() if p["emails"][0]["value"] == "new@x.com")
    assert (results[0].ids, results[1].ids) == ({"1": str(ada)}, {"4": str(new)})
    assert results[2] == BatchResult() and results[3] == BatchResult()
    assert (results[2].ids, results[3].ids) == ({}, {"1": str(ada)})
    assert gone not in fake.persons
    assert "persons|emails|gone@x.com" not in store.ids and "persons|emails|ghost@x.com" not in store.ids
    assert fake.persons[ada]["name"] == "Ada"
    assert fake.persons[ada]["custom_fields"] == {TIER: None}  # cleared; the name is kept
    assert fake.bodies("PATCH")[-1] == {"custom_fields": {TIER: None}}
    assert len(fake.calls("POST")) == 1


def test_append_always_creates_and_never_searches() -> None:
    fake = FakePipedrive()
    fake.add("ada@x.com")
    _run(_destination(fake), _target(mode=Mode.APPEND),
         Batch(Operation.APPEND, [_person("1", "ada@x.com"), _person("2", "ada@x.com")]))
    assert fake.calls() == ["GET /v1/personFields", "POST /api/v2/persons", "POST /api/v2/persons"]


def test_append_does_not_send_a_primary_key_that_is_no_pipedrive_field() -> None:
    fake = FakePipedrive()
    target = _target(mode=Mode.APPEND, fields=("name", "driver_id"), identity=("driver_id",))
    _run(_destination(fake), target, Batch(Operation.APPEND, [Record("1", {"name": "Ada", "driver_id": 1})]))
    assert fake.bodies("POST") == [{"name": "Ada"}]
    with pytest.raises(ConfigError, match="no field 'driver_id'"):  # other modes must find records by it
        _run(_destination(fake), _target(fields=("name", "driver_id"), identity=("driver_id",)))


def test_rows_sharing_a_match_value_create_one_record() -> None:
    fake = FakePipedrive()
    _run(_destination(fake), _target(), Batch(Operation.UPSERT, [_person(str(i), "same@x.com") for i in range(4)]))
    assert len(fake.persons) == 1
    assert len(fake.calls("POST")) == 1 and len(fake.calls("PATCH")) == 3


def test_refused_records_are_rejected_with_pipedrives_message() -> None:
    fake = FakePipedrive()
    fake.reply("POST", "/api/v2/persons", 400, {"success": False, "error": "Invalid email address",
                                                "error_info": "Please check developers.pipedrive.com"})
    fake.add("twin@x.com")
    fake.add("twin@x.com")
    records = [_person("1", "a@x.com"), _person("2", "twin@x.com"), _person("3", "c@x.com", Tier="Bronze"),
               _person("4", "")]
    [result] = _run(_destination(fake), _target(), Batch(Operation.UPSERT, records[:1]))
    assert result.rejected == {"1": "Pipedrive answered HTTP 400: Invalid email address"}
    [result] = _run(_destination(fake), _target(), Batch(Operation.UPSERT, records[1:]))
    assert result.rejected["2"].startswith("2 Pipedrive persons match email='twin@x.com' (ids 101, 102)")
    assert result.rejected["3"] == "field 'Tier' (enum): 'Bronze' is not an option (options: Gold)"
    assert result.rejected["4"] == "match field 'email' is empty: the Pipedrive persons cannot be found"
    assert fake.calls("POST") == ["POST /api/v2/persons"]  # only the first, refused one


def test_a_custom_match_field_is_found_with_item_search() -> None:
    fake = FakePipedrive()
    existing = fake.add("ada@x.com", custom_fields={DRIVER: "D-1"})
    target = _target(fields=("email", "name", "Driver ID"), identity=("Driver ID",))
    _run(_destination(fake), target, Batch(Operation.UPDATE, [Record("1", {"email": "new@x.com", "name": "Ada",
                                                                            "Driver ID": "D-1"})]))
    search = next(r for r in fake.requests if r.url.path == "/api/v2/itemSearch/field")
    assert dict(search.url.params) == {"entity_type": "person", "field": DRIVER, "match": "exact", "term": "D-1",
                                       "limit": "10"}
    assert fake.persons[existing]["emails"][0]["value"] == "new@x.com"


def test_a_429_pauses_the_limiter_and_only_unsent_records_are_retried() -> None:
    fake = FakePipedrive()
    fake.reply("POST", "/api/v2/persons", 429, {"success": False, "error": "Request over limit"},
               **{"x-ratelimit-limit": "20", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    limiter = RateLimiter(RateLimit(1000, 1.0))
    destination = _destination(fake)
    records = [_person(str(i), f"u{i}@x.com") for i in range(5)]

    async def go() -> tuple[BaseException, BatchResult]:
        try:
            target = _target()
            await destination.open(target)
            with pytest.raises(RetryableDestinationError) as first:
                await destination.write(target, Batch(Operation.UPSERT, records))
            return first.value, await deliver(destination, target, Batch(Operation.UPSERT, records),
                                              limiter=limiter, policy=FAST)
        finally:
            await destination.close()

    error, result = asyncio.run(go())
    assert isinstance(error, RetryableDestinationError) and error.retry_after == 2.0
    assert "was throttled: HTTP 429 (retry after 2s): Request over limit" in str(error)
    assert (result.rejected, result.skipped, len(result.ids)) == ({}, {}, 5)
    assert len(fake.persons) == 5
    assert len(fake.calls("POST")) == 6  # five records, one of them twice: no duplicate was created


def test_the_limiter_learns_from_rate_limit_headers() -> None:
    fake = FakePipedrive()
    fake.reply("POST", "/api/v2/persons", 200, {"success": True, "data": {"id": 1}},
               **{"x-ratelimit-remaining": "0", "x-ratelimit-reset": "2"})
    clock = FakeClock()
    limiter = RateLimiter(RateLimit(1000, 1.0), clock=clock, sleep=clock.sleep)
    destination, target = _destination(fake), _target(fields=("email", "name"))

    async def go() -> None:
        try:
            await destination.open(target)
            await deliver(destination, target, Batch(Operation.UPSERT, [_person("1", "a@x.com")]),
                          limiter=limiter, policy=FAST)
            started = clock.now
            await limiter.acquire()
            # Pipedrive said nothing is left in its 2-second window: the next request waits for it.
            assert clock.now - started == pytest.approx(2.0)
        finally:
            await destination.close()

    asyncio.run(go())


OVER_LIMIT = {"success": False, "error": "Request over limit", "errorCode": 429}


def test_a_spent_daily_budget_stops_the_destination() -> None:
    fake = FakePipedrive()
    for _ in range(3):
        fake.reply("GET", "/api/v2/persons/search", 429, OVER_LIMIT,
                   **{"x-daily-ratelimit-token-remaining": "0", "x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"})
    destination, target = _destination(fake), _target()

    async def go() -> list[BaseException]:
        errors: list[BaseException] = []
        try:
            await destination.open(target)
            for keys in (("1", "2", "3"), ("9",)):
                batch = Batch(Operation.UPSERT, [_person(k, f"u{k}@x.com") for k in keys])
                try:
                    await deliver(destination, target, batch, limiter=None, policy=FAST)
                except QuotaExhaustedError as exc:
                    errors.append(exc)
        finally:
            await destination.close()
        return errors

    errors = asyncio.run(go())
    assert len(errors) == 2  # not retried, and the next batch fails the same way
    assert "daily API token budget of this Pipedrive company is spent" in str(errors[0])
    assert "next run" in str(errors[0])
    sent = [r for r in fake.requests if r.url.params.get("term") == "u9@x.com"]
    assert sent == []  # nothing is sent once the budget is known to be spent
    assert fake.calls("POST") == []


def test_refused_credentials_fail_the_batch_without_leaking_the_token() -> None:
    fake = FakePipedrive()
    fake.reply("GET", "/v1/personFields", 401, {"success": False, "error": f"unauthorized access {TOKEN}"})
    with pytest.raises(DestinationError) as info:
        _run(_destination(fake), _target())
    assert TOKEN not in str(info.value)
    assert "/v1/personFields" in str(info.value)


def test_describe_request_needs_no_network() -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    destination = _destination(offline)
    described = destination.describe_request(_target(), Batch(Operation.UPSERT, [_person("1", "ada@x.com"),
                                                                                  _person("2", "b@x.com", Tier=None)]))
    assert described["path"] == "/api/v2/persons"
    first = described["requests"][0]
    assert first["method"] == "POST or PATCH by match"
    assert first["match"] == {"email": "ada@x.com"}
    assert first["body"] == {"name": "Driver 1", "emails": [{"value": "ada@x.com", "primary": True, "label": "work"}],
                             "custom_fields": {"Tier": "Gold"}}
    deleted = destination.describe_request(_target(), Batch(Operation.DELETE, [Record("1", {"email": "a@x.com"})]))
    assert deleted["requests"] == [{"key": "1", "method": "DELETE by match (acknowledged when not found)",
                                    "match": {"email": "a@x.com"}, "body": {}}]


@pytest.mark.parametrize(("method", "headers", "spent"), [
    # token-based limits: the tokens left today, on any request
    ("GET", {"x-daily-ratelimit-token-remaining": "0"}, True),
    ("POST", {"x-daily-ratelimit-token-remaining": "15"}, False),  # fewer than a search costs: still a burst
    ("GET", {"x-daily-ratelimit-token-remaining": "3", "x-daily-requests-left": "0"}, False),
    # legacy limits: POST/PUT *requests* left today; a read is not counted by it
    ("POST", {"x-daily-requests-left": "0"}, True),
    ("PATCH", {"x-daily-requests-left": "0"}, True),
    ("GET", {"x-daily-requests-left": "0"}, False),
    ("POST", {"x-daily-requests-left": "4"}, False),  # 4 writes left is not "fewer than 5 tokens"
    ("GET", {}, False),
])
def test_the_daily_budget_429_is_read_from_its_documented_header(method: str, headers: dict[str, str],
                                                                 spent: bool) -> None:
    assert daily_budget_spent(method, httpx.Headers(headers)) is spent


def test_a_burst_429_with_few_legacy_requests_left_is_retried_not_a_spent_budget() -> None:
    """x-daily-requests-left counts POST/PUT requests, not tokens: 3 left is no spent budget for a search."""
    fake = FakePipedrive()
    fake.reply("GET", "/api/v2/persons/search", 429, OVER_LIMIT,
               **{"x-daily-requests-left": "3", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "1"})
    destination, target = _destination(fake), _target()

    async def go() -> None:
        await destination.open(target)
        try:
            batch = Batch(Operation.UPSERT, [_person("1", "u1@x.com")])
            await deliver(destination, target, batch, limiter=None, policy=FAST)
        finally:
            await destination.close()

    asyncio.run(go())
    assert fake.calls("POST") == ["POST /api/v2/persons"]


def test_clear_and_nulls_never_send_null_where_the_v2_spec_forbids_it() -> None:
    fake = FakePipedrive()
    ada = fake.add("ada@x.com", owner_id=3, org_id=4)
    fields = ("email", "name", "owner_id", "org_id", "visible_to", "Tier")
    target = _target(fields=fields)
    cleared = Record("1", {"email": "ada@x.com"})
    nulls = _person("1", "ada@x.com", name=None, owner_id=None, org_id=None, visible_to=None, Tier=None)
    _run(_destination(fake), target, Batch(Operation.CLEAR, [cleared]), Batch(Operation.UPSERT, [nulls]))
    assert fake.bodies("PATCH") == [{"custom_fields": {TIER: None}},
                                    {"emails": [{"value": "ada@x.com", "primary": True, "label": "work"}],
                                     "custom_fields": {TIER: None}}]
    assert (fake.persons[ada]["owner_id"], fake.persons[ada]["org_id"]) == (3, 4)
