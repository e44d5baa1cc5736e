"""``ZendeskEmulator`` speaks Zendesk's documented contract: basic token auth, bulk jobs, 429 + Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing.zendesk.emulator import ZendeskEmulator

TOKEN = "zd-emu-token"
AGENT = "ops@example.com"


@pytest.fixture
def emu() -> Iterator[ZendeskEmulator]:
    with ZendeskEmulator(token=TOKEN, email=AGENT, user_fields={"plan": "text", "since": "date"}) as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: ZendeskEmulator, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, auth=(f"{AGENT}/token", token))


def finish(http: httpx.Client, job: dict[str, Any]) -> dict[str, Any]:
    for _ in range(5):
        if job["status"] == "completed":
            return job
        job = http.get(f"/api/v2/job_statuses/{job['id']}.json").json()["job_status"]
    raise AssertionError(f"job never completed: {job}")


def test_a_wrong_token_is_refused(emu: ZendeskEmulator) -> None:
    denied = client(emu, token="nope").post("/api/v2/users/create_or_update_many.json", json={"users": [{}]})
    assert (denied.status_code, denied.json()) == (401, {"error": "Couldn't authenticate you"})


def test_create_or_update_many_is_a_job_with_results_in_request_order(emu: ZendeskEmulator) -> None:
    http = client(emu)
    emu.add_records("users", [{"name": "Old", "email": "b@example.com"}])
    users = [{"name": "A", "external_id": "a", "user_fields": {"plan": "pro", "since": "2024-01-02"}},
             {"name": "B", "email": "B@example.com"},
             {"name": "C", "email": "broken"}]
    queued = http.post("/api/v2/users/create_or_update_many", json={"users": users}).json()["job_status"]
    assert (queued["status"], queued["results"]) == ("queued", None)
    job = finish(http, queued)
    assert [r["status"] for r in job["results"]] == ["Created", "Updated", "Failed"]
    assert job["results"][2]["details"] == "Email: broken is not properly formatted"
    assert [u["name"] for u in emu.records("users")] == ["B", "A"]


def test_more_than_100_items_are_refused_and_unknown_fields_fail_their_item(emu: ZendeskEmulator) -> None:
    http = client(emu)
    too_many = http.post("/api/v2/users/create_or_update_many", json={"users": [{"name": "x"}] * 101})
    assert (too_many.status_code, too_many.json()["error"]) == (400, "TooManyValues")
    job = finish(http, http.post("/api/v2/users/create_or_update_many",
                                 json={"users": [{"name": "x", "user_fields": {"nope": 1}}]}).json()["job_status"])
    assert job["results"][0]["status"] == "Failed"


def test_update_many_and_destroy_many_report_unknown_records(emu: ZendeskEmulator) -> None:
    http = client(emu)
    emu.add_records("users", [{"name": "A", "external_id": "a"}])
    updated = finish(http, http.put("/api/v2/users/update_many", json={"users": [
        {"external_id": "A", "name": "Z"}, {"external_id": "q", "name": "Q"}]}).json()["job_status"])
    assert [(r["status"], r.get("error")) for r in updated["results"]] == [
        ("Updated", None), ("Failed", "RecordNotFound")]
    destroyed = http.delete("/api/v2/users/destroy_many", params={"external_ids": "a,q"})
    deleted = finish(http, destroyed.json()["job_status"])
    assert [r["status"] for r in deleted["results"]] == ["Deleted", "Failed"]
    assert emu.records("users") == []


def test_show_many_by_external_ids_and_an_update_to_a_taken_external_id_fails(emu: ZendeskEmulator) -> None:
    http = client(emu)
    ada, bob = emu.add_records("users", [{"name": "Ada", "external_id": "a"}, {"name": "Bob", "external_id": "b"}])
    shown = http.get("/api/v2/users/show_many.json", params={"external_ids": "A,nope"}).json()["users"]
    assert [u["id"] for u in shown] == [ada]  # external ids compare case-insensitively; unknown ones left out
    assert http.get("/api/v2/users/show_many.json").status_code == 400
    job = finish(http, http.put("/api/v2/users/update_many", json={"users": [
        {"id": ada, "external_id": "b"}, {"id": bob, "external_id": "c"}]}).json()["job_status"])
    assert [(r["status"], r.get("details")) for r in job["results"]] == [
        ("Failed", "External: b has already been taken"), ("Updated", None)]
    assert [u["external_id"] for u in emu.records("users")] == ["a", "c"]


def test_over_the_limit_answers_429_with_retry_after(emu: ZendeskEmulator) -> None:
    emu.rate_limit = (1, 60)
    http = client(emu)
    first = http.get("/api/v2/job_statuses/0.json")
    throttled = http.get("/api/v2/job_statuses/0.json")
    assert first.headers["X-Rate-Limit"] == "1"
    assert throttled.status_code == 429
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    assert throttled.json()["error"] == "APIRateLimitExceeded"


def test_organizations_have_no_create_or_update_many(emu: ZendeskEmulator) -> None:
    # developer.zendesk.com/api-reference/ticketing/organizations/organizations/ lists single
    # create_or_update, create_many and update_many; create_or_update_many exists for users only.
    missing = client(emu).post("/api/v2/organizations/create_or_update_many.json",
                               json={"organizations": [{"name": "Acme", "external_id": "o1"}]})
    assert (missing.status_code, missing.json()["error"]) == (404, "InvalidEndpoint")
    assert emu.records("organizations") == []


def test_organizations_create_many_show_many_and_single_create_or_update(emu: ZendeskEmulator) -> None:
    http = client(emu)
    [existing] = emu.add_records("organizations", [{"name": "Old", "external_id": "O1"}])
    created = finish(http, http.post("/api/v2/organizations/create_many.json", json={"organizations": [
        {"name": "Two", "external_id": "o2"}, {"name": "Dup", "external_id": "o1"}]}).json()["job_status"])
    assert [(r["status"], r.get("details")) for r in created["results"]] == [
        ("Created", None), ("Failed", "External: o1 has already been taken")]
    shown = http.get("/api/v2/organizations/show_many.json", params={"external_ids": "o1,O2,o9"}).json()
    assert (shown["count"], [o["name"] for o in shown["organizations"]]) == (2, ["Old", "Two"])
    assert http.get("/api/v2/organizations/show_many.json").status_code == 400
    updated = http.post("/api/v2/organizations/create_or_update", json={"organization": {"external_id": "o1",
                                                                                         "name": "New"}})
    assert (updated.status_code, updated.json()["organization"]["id"]) == (200, existing)
    new = http.post("/api/v2/organizations/create_or_update", json={"organization": {"external_id": "o3",
                                                                                     "name": "Three"}})
    assert new.status_code == 201 and new.json()["organization"]["name"] == "Three"


def test_update_many_takes_the_batch_and_the_bulk_form(emu: ZendeskEmulator) -> None:
    # The users page's samples: batch {"users": [{"id": …}, {"external_id": "123", "verified": true}]};
    # bulk ?ids=1,2,3 (or external_ids) with one {"user": {...}} for all.
    http = client(emu)
    emu.add_records("users", [{"name": "A", "external_id": "a"}, {"name": "B", "external_id": "b"}])
    bulk = finish(http, http.put("/api/v2/users/update_many", params={"external_ids": "a,B"},
                                 json={"user": {"user_fields": {"plan": "pro"}}}).json()["job_status"])
    assert [r["status"] for r in bulk["results"]] == ["Updated", "Updated"]
    assert [u["user_fields"]["plan"] for u in emu.records("users")] == ["pro", "pro"]
    batch = finish(http, http.put("/api/v2/users/update_many", json={"users": [
        {"external_id": "a", "user_fields": {"plan": "free"}}, {"name": "no identity"}]}).json()["job_status"])
    assert [(r["status"], r.get("error")) for r in batch["results"]] == [("Updated", None), ("Failed", "InvalidValue")]
