"""Klaviyo emulator over real HTTP: bulk import jobs, polling, import errors, auth, limits."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import EMULATORS
from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator

KEY = "pk_test"
JOBS = "/api/profile-bulk-import-jobs"


@pytest.fixture
def emu() -> Iterator[KlaviyoEmulator]:
    with KlaviyoEmulator(token=KEY, polls_to_complete=2) as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: KlaviyoEmulator, key: str = KEY, revision: str | None = "2026-07-15") -> httpx.Client:
    headers = {"Authorization": f"Klaviyo-API-Key {key}"}
    if revision:
        headers["revision"] = revision
    return httpx.Client(base_url=emu.base_url, headers=headers, timeout=10)


def body(*profiles: dict[str, Any], lists: tuple[str, ...] = ()) -> dict[str, Any]:
    data: dict[str, Any] = {"type": "profile-bulk-import-job",
                            "attributes": {"profiles": {"data": [{"type": "profile", "attributes": p}
                                                                 for p in profiles]}}}
    if lists:
        data["relationships"] = {"lists": {"data": [{"type": "list", "id": i} for i in lists]}}
    return {"data": data}


def test_registered() -> None:
    assert EMULATORS["klaviyo"] is KlaviyoEmulator


def test_a_job_is_accepted_polled_to_complete_and_upserts_profiles(emu: KlaviyoEmulator) -> None:
    emu.add_profiles([{"email": "ada@example.com", "first_name": "Old", "properties": {"plan": "free", "x": 1}}])
    with client(emu) as c:
        created = c.post(JOBS, json=body({"email": "ADA@example.com", "first_name": "Ada",
                                          "location": {"city": "Paris"}, "properties": {"plan": "pro", "x": None}},
                                         {"external_id": "u2", "properties": {"plan": "free"}}, lists=("L1",)))
        assert created.status_code == 202
        job = created.json()["data"]
        assert (job["type"], job["attributes"]["status"], job["attributes"]["total_count"]) == (
            "profile-bulk-import-job", "queued", 2)
        assert c.get(f"{JOBS}/{job['id']}").json()["data"]["attributes"]["status"] == "processing"
        done = c.get(f"{JOBS}/{job['id']}").json()["data"]["attributes"]
        assert (done["status"], done["completed_count"], done["failed_count"]) == ("complete", 2, 0)
        assert c.get(f"{JOBS}/nope").status_code == 404
    ada, u2 = emu.profiles()
    assert (ada["email"], ada["first_name"], ada["location"], ada["properties"], ada["lists"]) == (
        "ada@example.com", "Ada", {"city": "Paris"}, {"plan": "pro"}, ["L1"])  # null cleared x
    assert u2["external_id"] == "u2"


def test_invalid_profiles_are_listed_in_import_errors_page_by_page(emu: KlaviyoEmulator) -> None:
    profiles = [{"email": f"bad{i}-at-example.com"} for i in range(3)] + [{"phone_number": "12"}, {"first_name": "x"},
                                                                           {"email": "ok@example.com"}]
    with client(emu) as c:
        job_id = c.post(JOBS, json=body(*profiles)).json()["data"]["id"]
        c.get(f"{JOBS}/{job_id}")
        assert c.get(f"{JOBS}/{job_id}").json()["data"]["attributes"]["failed_count"] == 5
        first = c.get(f"{JOBS}/{job_id}/import-errors", params={"page[size]": 3}).json()
        assert [e["attributes"]["source"]["pointer"] for e in first["data"]] == [
            f"/data/attributes/profiles/data/{i}/attributes/email" for i in range(3)]
        assert first["data"][0]["attributes"]["original_payload"] == {"email": "bad0-at-example.com"}
        second = c.get(first["links"]["next"]).json()
        assert [e["attributes"]["source"]["pointer"] for e in second["data"]] == [
            "/data/attributes/profiles/data/3/attributes/phone_number", "/data/attributes/profiles/data/4"]
        assert second["links"]["next"] is None
        assert c.get(f"{JOBS}/{job_id}/import-errors", params={"page[size]": 101}).status_code == 400
    assert [p["email"] for p in emu.profiles()] == ["ok@example.com"]


def test_a_job_over_10000_profiles_is_refused(emu: KlaviyoEmulator) -> None:
    with client(emu) as c:
        refused = c.post(JOBS, json=body(*({"email": f"u{i}@example.com"} for i in range(10_001))))
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]
    assert error["code"] == "invalid" and "10000" in error["detail"]
    assert emu.profiles() == []


def test_auth_and_the_revision_header_are_required(emu: KlaviyoEmulator) -> None:
    with client(emu, key="wrong") as c:
        refused = c.post(JOBS, json=body({"email": "a@example.com"}))
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == "not_authenticated"
    with client(emu, revision=None) as c:
        missing = c.post(JOBS, json=body({"email": "a@example.com"}))
    assert missing.status_code == 400 and missing.json()["errors"][0]["source"] == {"parameter": "revision"}


def test_throttling_answers_429_with_retry_after_and_ratelimit_headers() -> None:
    with KlaviyoEmulator(token=KEY, rate_limit=(2, 60.0)) as emu, client(emu) as c:
        ok = c.get(f"{JOBS}/x")
        assert ok.headers["RateLimit-Limit"] == "2" and ok.headers["RateLimit-Remaining"] == "1"
        c.get(f"{JOBS}/x")
        throttled = c.get(f"{JOBS}/x")
        assert throttled.status_code == 429
        assert int(throttled.headers["Retry-After"]) >= 1
        assert throttled.json()["errors"][0]["code"] == "throttled"
    with KlaviyoEmulator(token=KEY, burst_limit=(1, 60.0)) as emu, client(emu) as c:
        assert c.get(f"{JOBS}/x").status_code == 404
        assert c.get(f"{JOBS}/x").status_code == 429  # the burst limit, before routing
        assert emu.counters.throttled == 1


def test_partial_fault_fails_profiles_as_import_errors(emu: KlaviyoEmulator) -> None:
    emu.inject("partial", fail_indexes=(0,))
    with client(emu) as c:
        job_id = c.post(JOBS, json=body({"email": "a@example.com"}, {"email": "b@example.com"})).json()["data"]["id"]
        errors = c.get(f"{JOBS}/{job_id}/import-errors").json()["data"]
    assert [e["attributes"]["original_payload"]["email"] for e in errors] == ["a@example.com"]
    assert [p["email"] for p in emu.profiles()] == ["b@example.com"]


def events_body(*entries: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"type": "event-bulk-create-job", "attributes": {"events-bulk-create": {"data": [
        {"type": "event-bulk-create", "attributes": {
            "profile": {"data": {"type": "profile", "attributes": profile}},
            "events": {"data": [{"type": "event", "attributes": {
                "metric": {"data": {"type": "metric", "attributes": {"name": "Plan Changed"}}}, **event}}]}}}
        for profile, event in entries]}}}}


def test_bulk_create_events_keeps_one_event_per_unique_id(emu: KlaviyoEmulator) -> None:
    with client(emu) as c:
        first = c.post("/api/event-bulk-create-jobs", json=events_body(
            ({"email": "a@example.com"}, {"properties": {"plan": "pro"}, "value": 9, "unique_id": "r1:1"}),
            ({"email": "a@example.com"}, {"properties": {"plan": "pro"}, "value": 9, "unique_id": "r1:1"})))
        assert first.status_code == 202
        refused = c.post("/api/event-bulk-create-jobs", json=events_body(
            ({"email": "b@example.com"}, {"properties": {}}), ({"first_name": "nobody"}, {"properties": {}})))
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["source"]["pointer"].endswith("data/1/attributes/profile")
        too_many = c.post("/api/event-bulk-create-jobs", json=events_body(
            *(({"email": f"u{i}@example.com"}, {"properties": {}}) for i in range(1001))))
        assert too_many.status_code == 400
    (event,) = emu.events("Plan Changed")
    assert (event["properties"], event["value"], event["unique_id"]) == ({"plan": "pro"}, 9, "r1:1")
    assert [p["email"] for p in emu.profiles()] == ["a@example.com"]  # nothing of the refused requests was kept


def test_profiles_are_listed_by_filter_and_a_profile_id_changes_its_identifiers(emu: KlaviyoEmulator) -> None:
    emu.add_profiles([{"email": "ada@example.com"}, {"email": "bob@example.com"}])
    ada, bob = (p["id"] for p in emu.profiles())
    with client(emu) as c:
        listed = c.get("/api/profiles", params={"filter": 'any(email,["ADA@example.com","nope@example.com"])'})
        assert [p["id"] for p in listed.json()["data"]] == [ada]
        assert c.get("/api/profiles", params={"filter": "greater-than(created,1)"}).status_code == 400
        moved = {"type": "profile", "id": ada, "attributes": {"email": "ada@new.com"}}
        taken = {"type": "profile", "id": bob, "attributes": {"email": "ada@new.com"}}
        job = c.post(JOBS, json={"data": {"type": "profile-bulk-import-job",
                                          "attributes": {"profiles": {"data": [moved, taken]}}}}).json()["data"]
        errors = c.get(f"{JOBS}/{job['id']}/import-errors").json()["data"]
    assert [e["attributes"]["code"] for e in errors] == ["duplicate_profile"]
    assert sorted(p["email"] for p in emu.profiles()) == ["ada@new.com", "bob@example.com"]  # never merged
