"""Mailchimp emulator over real HTTP: batch subscribe, member endpoints, auth, limits, faults."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import EMULATORS
from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator

KEY = "k-us6"
LIST = "a1b2c3d4e5"


@pytest.fixture
def emu() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(token=KEY, merge_fields={"SCORE": "number", "SINCE": "date"}) as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: MailchimpEmulator, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, auth=("anystring", key), timeout=10)


def member(email: str, **extra: Any) -> dict[str, Any]:
    return {"email_address": email, "status": "subscribed", **extra}


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def test_registered() -> None:
    assert EMULATORS["mailchimp"] is MailchimpEmulator


def test_batch_subscribe_creates_updates_and_reports_errors_with_200(emu: MailchimpEmulator) -> None:
    with client(emu) as c:
        first = c.post(f"/3.0/lists/{LIST}", json={"members": [
            member("Ada@Example.com", merge_fields={"FNAME": "Ada", "SCORE": 3}, tags=["vip"]),
            member("not-an-email"), member("bob@example.com", merge_fields={"SINCE": "May 5th"}),
            member("eve@example.com", merge_fields={"NOPE": "x"})]})
        assert first.status_code == 200
        body = first.json()
        assert (body["total_created"], body["total_updated"], body["error_count"]) == (1, 0, 3)
        assert [(e["email_address"], e["error_code"]) for e in body["errors"]] == [
            ("not-an-email", "ERROR_GENERIC"), ("bob@example.com", "ERROR_GENERIC"),
            ("eve@example.com", "ERROR_GENERIC")]
        assert body["errors"][1]["field"] == "SINCE"
        again = c.post(f"/3.0/lists/{LIST}", json={"members": [member("ada@example.com",
                                                                       merge_fields={"LNAME": "L"}, tags=["x"])]})
        assert again.json()["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"  # update_existing defaults to false
        updated = c.post(f"/3.0/lists/{LIST}", json={"update_existing": True, "members": [
            member("ada@example.com", merge_fields={"LNAME": "L"}, tags=["x"])]})
        assert updated.json()["total_updated"] == 1
    (stored,) = emu.members(LIST)
    assert stored["id"] == md5("ada@example.com")
    assert stored["merge_fields"] == {"FNAME": "Ada", "LNAME": "L", "SCORE": 3, "SINCE": ""}
    assert [t["name"] for t in stored["tags"]] == ["vip", "x"]  # added, not replaced, without sync_tags


def test_more_than_500_members_is_refused_as_a_problem(emu: MailchimpEmulator) -> None:
    with client(emu) as c:
        answer = c.post(f"/3.0/lists/{LIST}", json={"members": [member(f"u{i}@example.com") for i in range(501)]})
    assert answer.status_code == 400
    assert answer.json()["title"] == "Invalid Resource" and "500" in answer.json()["detail"]
    assert emu.members(LIST) == []


def test_member_endpoints_put_patch_archive_and_readd(emu: MailchimpEmulator) -> None:
    path = f"/3.0/lists/{LIST}/members/{md5('ada@example.com')}"
    with client(emu) as c:
        assert c.put(path, json={"email_address": "ada@example.com"}).status_code == 400  # status_if_new needed
        assert c.put(path, json={"email_address": "ada@example.com", "status_if_new": "pending"}).json()["status"] == \
            "pending"
        assert c.patch(path, json={"merge_fields": {"FNAME": "Ada"}}).json()["merge_fields"]["FNAME"] == "Ada"
        assert c.delete(path).status_code == 204
        assert c.get(path).status_code == 404 and c.delete(path).status_code == 404
        assert [m["status"] for m in emu.members(LIST, archived=True)] == ["archived"]
        c.post(f"/3.0/lists/{LIST}", json={"members": [member("ada@example.com")]})
        assert c.get(path).json()["status"] == "subscribed"  # an archived member can be added again
        page = c.get(f"/3.0/lists/{LIST}/members", params={"count": 1000}).json()
        assert page["total_items"] == 1
        assert c.get(f"/3.0/lists/{LIST}/members", params={"count": 1001}).status_code == 400
        assert c.get("/3.0/lists/nope/members").status_code == 404


def test_patch_changes_a_members_address_and_hash_unless_another_member_has_it(emu: MailchimpEmulator) -> None:
    with client(emu) as c:
        c.post(f"/3.0/lists/{LIST}", json={"members": [member("ada@example.com", merge_fields={"FNAME": "Ada"}),
                                                       member("bob@example.com"), member("eve@example.com")]})
        c.delete(f"/3.0/lists/{LIST}/members/{md5('eve@example.com')}")
        moved = c.patch(f"/3.0/lists/{LIST}/members/{md5('ada@example.com')}", json={"email_address": "ada@new.com"})
        assert moved.status_code == 200 and moved.json()["id"] == md5("ada@new.com")
        assert c.get(f"/3.0/lists/{LIST}/members/{md5('ada@example.com')}").status_code == 404
        assert c.get(f"/3.0/lists/{LIST}/members/{md5('ada@new.com')}").json()["merge_fields"]["FNAME"] == "Ada"
        for taken in ("bob@example.com", "eve@example.com"):  # a live member's address, or an archived one's
            refused = c.patch(f"/3.0/lists/{LIST}/members/{md5('ada@new.com')}", json={"email_address": taken})
            assert refused.status_code == 400 and "is already in this list" in refused.json()["errors"][0]["message"]
    assert sorted(m["email_address"] for m in emu.members(LIST)) == ["ada@new.com", "bob@example.com"]


def test_basic_and_bearer_auth(emu: MailchimpEmulator) -> None:
    with client(emu, "wrong") as c:
        refused = c.get("/3.0/ping")
    assert refused.status_code == 401 and refused.json()["title"] == "API Key Invalid"
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        assert c.get("/3.0/ping").json() == {"health_status": "Everything's Chimpy!"}


def test_partial_fault_fails_members_in_mailchimps_shape(emu: MailchimpEmulator) -> None:
    emu.inject("partial", fail_indexes=(1,))
    with client(emu) as c:
        body = c.post(f"/3.0/lists/{LIST}", json={"members": [member("a@example.com"), member("b@example.com")]}).json()
    assert [e["email_address"] for e in body["errors"]] == ["b@example.com"]


def test_more_simultaneous_connections_than_allowed_get_a_bare_429() -> None:
    with MailchimpEmulator(token=KEY, max_connections=2, latency=1.0) as emu:
        statuses: list[int] = []
        lock = threading.Lock()

        def call() -> None:
            with client(emu) as c:
                status = c.get("/3.0/ping").status_code
            with lock:
                statuses.append(status)

        threads = [threading.Thread(target=call) for _ in range(5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses.count(429) >= 1 and statuses.count(200) >= 2
        assert emu.counters.throttled == statuses.count(429)
        assert emu.errors == []
    with MailchimpEmulator(token=KEY, max_connections=True) as emu, client(emu) as c:
        assert emu.max_connections == 10
        emu.inject("throttle")
        throttled = c.get("/3.0/ping")
        assert throttled.status_code == 429 and "Retry-After" not in throttled.headers


def test_status_follows_mailchimps_rules_put_keeps_it_update_existing_changes_it(emu: MailchimpEmulator) -> None:
    emu.add_members(LIST, [{"email_address": f"{n}@example.com", "status": "unsubscribed"} for n in ("a", "b")])
    with client(emu) as c:
        kept = c.put(f"/3.0/lists/{LIST}/members/{md5('a@example.com')}", json={
            "email_address": "a@example.com", "status_if_new": "subscribed", "merge_fields": {"FNAME": "A"},
            "tags": ["ignored"]})
        assert (kept.json()["status"], kept.json()["merge_fields"]["FNAME"], kept.json()["tags"]) == \
            ("unsubscribed", "A", [])  # status_if_new is for new members; a PUT body has no tags
        untouched = c.post(f"/3.0/lists/{LIST}", json={"members": [member("b@example.com")]}).json()
        assert untouched["errors"][0]["error_code"] == "ERROR_CONTACT_EXISTS"
        changed = c.post(f"/3.0/lists/{LIST}", json={"update_existing": True, "members": [member("b@example.com")]})
        assert changed.json()["updated_members"][0]["status"] == "subscribed"  # what the client must never send
        tags = f"/3.0/lists/{LIST}/members/{md5('a@example.com')}/tags"
        assert c.post(tags, json={"tags": [{"name": "x", "status": "active"}]}).status_code == 204
        assert c.post(tags, json={"tags": ["x"]}).status_code == 400
        assert c.post(f"/3.0/lists/{LIST}/members/{md5('zz@example.com')}/tags", json={"tags": []}).status_code == 404
    assert {m["email_address"]: m["status"] for m in emu.members(LIST)} == {
        "a@example.com": "unsubscribed", "b@example.com": "subscribed"}
