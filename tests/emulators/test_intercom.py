"""``IntercomEmulator`` speaks Intercom's documented contract: auth, error.list, 409, search, 429 headers."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from dbt_activate.testing.intercom.emulator import IntercomEmulator

TOKEN = "ic-emu-token"


@pytest.fixture
def emu() -> Iterator[IntercomEmulator]:
    with IntercomEmulator(token=TOKEN, attributes={"plan": "string", "score": "float"}) as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: IntercomEmulator, token: str = TOKEN, version: str = "2.14") -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, headers={"Authorization": f"Bearer {token}",
                                                        "Intercom-Version": version})


def test_a_wrong_token_or_version_is_refused_in_the_error_list_shape(emu: IntercomEmulator) -> None:
    denied = client(emu, token="nope").post("/contacts", json={"external_id": "1"})
    assert denied.status_code == 401
    assert denied.json()["type"] == "error.list"
    assert denied.json()["errors"] == [{"code": "unauthorized", "message": "Access Token Invalid"}]
    assert client(emu, version="9.9").post("/contacts", json={}).json()["errors"][0]["code"] == \
        "intercom_version_invalid"


def test_create_update_search_and_a_conflict_naming_the_existing_contact(emu: IntercomEmulator) -> None:
    http = client(emu)
    created = http.post("/contacts", json={"role": "user", "external_id": "u1", "email": "Ada@example.com",
                                           "custom_attributes": {"plan": "pro"}}).json()
    conflict = http.post("/contacts", json={"role": "user", "email": "ada@EXAMPLE.com"})
    assert conflict.status_code == 409
    assert conflict.json()["errors"][0]["message"].endswith(f"id={created['id']}")
    assert http.put(f"/contacts/{created['id']}", json={"custom_attributes": {"score": 2.5}}).status_code == 200
    query = {"operator": "AND", "value": [{"field": "email", "operator": "=", "value": "ada@example.com"},
                                          {"field": "role", "operator": "=", "value": "user"}]}
    found = http.post("/contacts/search", json={"query": query}).json()
    assert found["total_count"] == 1
    assert found["data"][0]["custom_attributes"] == {"plan": "pro", "score": 2.5}
    bad = http.put(f"/contacts/{created['id']}", json={"custom_attributes": {"score": "high"}})
    assert (bad.status_code, bad.json()["errors"][0]["code"]) == (400, "parameter_invalid")
    assert http.put("/contacts/abc123", json={}).json()["errors"][0]["code"] == "not_found"


def test_archived_contacts_leave_search_and_deleted_ones_are_gone(emu: IntercomEmulator) -> None:
    http = client(emu)
    first = http.post("/contacts", json={"external_id": "a"}).json()["id"]
    second = http.post("/contacts", json={"external_id": "b"}).json()["id"]
    assert http.get("/contacts/find_by_external_id/a").json()["id"] == first
    assert http.post(f"/contacts/{first}/archive").json()["archived"] is True
    assert http.get("/contacts/find_by_external_id/a").status_code == 404
    assert http.delete(f"/contacts/{second}").json()["deleted"] is True
    query = {"query": {"field": "role", "operator": "=", "value": "user"}}
    assert http.post("/contacts/search", json=query).json()["total_count"] == 0
    assert [c["id"] for c in emu.records(archived=True)] == [first]


def test_over_the_limit_answers_429_with_rate_limit_headers(emu: IntercomEmulator) -> None:
    emu.rate_limit = (2, 10)
    http = client(emu)
    answers = [http.post("/contacts/search", json={"query": {"field": "role", "operator": "=", "value": "user"}})
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    throttled = answers[2]
    assert throttled.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    assert int(throttled.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert answers[0].headers["X-RateLimit-Limit"] == "2"
