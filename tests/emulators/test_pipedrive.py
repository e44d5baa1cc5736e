"""Pipedrive emulator over real HTTP: v2 records, search, v1 fields, token limits, auth, faults."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import PipedriveEmulator, PipedriveField, field_key
from dbt_activate.testing.limits import RateLimit
from dbt_activate.testing.pipedrive.emulator import ERROR_INFO

CUSTOM = {"persons": [PipedriveField("Driver ID"), PipedriveField("Tier", "enum", ("Gold", "Silver")),
                      PipedriveField("Skills", "set", ("Drift", "Rally")), PipedriveField("Licensed on", "date")],
          "deals": [PipedriveField("Contract", "varchar", key="dcf558aac1ae4e8c4f849ba5e668430d8df9be12")]}
DRIVER = field_key("persons", "Driver ID")
CONTRACT = "dcf558aac1ae4e8c4f849ba5e668430d8df9be12"


@pytest.fixture
def emu() -> Iterator[PipedriveEmulator]:
    with PipedriveEmulator(token="t", custom_fields=CUSTOM) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def client(emu: PipedriveEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"x-api-token": "t"}, timeout=5) as c:
        yield c


def person(name: str, email: str, **custom: Any) -> dict[str, Any]:
    return {"name": name, "emails": [{"value": email, "primary": True, "label": "work"}], "custom_fields": custom}


def option(client: httpx.Client, field: str, label: str) -> int:
    fields = client.get("/v1/personFields").json()["data"]
    options = next(f["options"] for f in fields if f["name"] == field)
    return int(next(o["id"] for o in options if o["label"] == label))


def test_create_get_update_delete_a_person(emu: PipedriveEmulator, client: httpx.Client) -> None:
    gold = option(client, "Tier", "Gold")
    created = client.post("/api/v2/persons", json=person("Ada Lovelace", "ada@example.com", **{DRIVER: "D-1"}))
    assert created.status_code == 200
    data = created.json()["data"]
    assert created.json()["success"] is True
    assert (data["first_name"], data["last_name"], data["custom_fields"]) == ("Ada", "Lovelace", {DRIVER: "D-1"})
    tier = emu.field_key("persons", "Tier")
    patched = client.patch(f"/api/v2/persons/{data['id']}", json={"custom_fields": {tier: gold, DRIVER: None}})
    assert patched.json()["data"]["custom_fields"] == {tier: gold}
    assert client.get(f"/api/v2/persons/{data['id']}").json()["data"]["name"] == "Ada Lovelace"
    assert client.delete(f"/api/v2/persons/{data['id']}").json() == {"success": True, "data": {"id": data["id"]}}
    missing = client.get(f"/api/v2/persons/{data['id']}")
    assert missing.status_code == 404
    assert missing.json() == {"success": False, "error": "Person not found", "error_info": missing.json()["error_info"],
                              "data": None, "additional_data": None}
    assert emu.records("persons") == []


def test_deals_and_organizations_take_custom_fields_by_hash_key(emu: PipedriveEmulator, client: httpx.Client) -> None:
    org = client.post("/api/v2/organizations", json={"name": "Acme", "address": {"value": "1 Main St"}}).json()["data"]
    deal = client.post("/api/v2/deals", json={"title": "Renewal 2026", "value": 1200, "currency": "EUR",
                                              "org_id": org["id"], "expected_close_date": "2026-03-01",
                                              "custom_fields": {"dcf558aac1ae4e8c4f849ba5e668430d8df9be12": "gold"}})
    assert deal.status_code == 200
    [record] = emu.records("deals")
    assert (record["title"], record["value"], record["org_id"]) == ("Renewal 2026", 1200, org["id"])
    assert record["custom_fields"] == {"dcf558aac1ae4e8c4f849ba5e668430d8df9be12": "gold"}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "X", "nickname": "x"},  # unknown parameter
        {"name": "X", "custom_fields": {"0" * 40: "x"}},  # unknown custom field
        {"name": "X", "custom_fields": {DRIVER: 12}},  # varchar given a number
        {"name": "X", "custom_fields": {field_key("persons", "Tier"): 99999}},  # not an option id
        {"name": "X", "custom_fields": {field_key("persons", "Licensed on"): "01/02/2024"}},  # not YYYY-MM-DD
        {"name": "X", "owner_id": "1"},  # wrong type
        {"emails": [{"value": "a@b.c"}]},  # name is required
        {"name": "X", "emails": ["a@b.c"]},  # emails are objects
    ],
)
def test_invalid_bodies_are_400_in_pipedrive_shape(emu: PipedriveEmulator, client: httpx.Client,
                                                   body: dict[str, Any]) -> None:
    response = client.post("/api/v2/persons", json=body)
    assert response.status_code == 400
    assert response.json()["success"] is False and response.json()["error"]
    assert emu.records("persons") == []


def test_search_by_email_and_item_search_by_custom_field(emu: PipedriveEmulator, client: httpx.Client) -> None:
    emu.add_records("persons", [person("Ada", "ada@example.com", **{DRIVER: "D-1"}),
                                person("Bob", "bob@example.com", **{DRIVER: "d-2"})])
    found = client.get("/api/v2/persons/search", params={"term": "ADA@example.com", "fields": "email",
                                                         "exact_match": "true"}).json()
    [item] = found["data"]["items"]
    assert item["item"]["emails"] == ["ada@example.com"] and item["item"]["type"] == "person"
    fuzzy = client.get("/api/v2/persons/search", params={"term": "example"}).json()
    assert len(fuzzy["data"]["items"]) == 2
    assert client.get("/api/v2/persons/search", params={"term": "a"}).status_code == 400
    by_field = client.get("/api/v2/itemSearch/field", params={"entity_type": "person", "field": DRIVER,
                                                              "term": "D-2", "match": "exact"}).json()
    assert by_field["data"] == []  # case-sensitive, as documented
    by_field = client.get("/api/v2/itemSearch/field", params={"entity_type": "person", "field": DRIVER,
                                                              "term": "d-", "match": "beginning"}).json()
    assert by_field["data"] == [{"id": 2, "name": "Bob"}]


def test_list_pages_with_cursor(emu: PipedriveEmulator, client: httpx.Client) -> None:
    emu.add_records("persons", [{"name": f"P{i}"} for i in range(5)])
    first = client.get("/api/v2/persons", params={"limit": 3}).json()
    assert [p["name"] for p in first["data"]] == ["P0", "P1", "P2"]
    rest = client.get("/api/v2/persons", params={"limit": 3, "cursor": first["additional_data"]["next_cursor"]})
    assert [p["name"] for p in rest.json()["data"]] == ["P3", "P4"]
    assert rest.json()["additional_data"]["next_cursor"] is None
    assert client.get("/api/v2/persons", params={"limit": 501}).status_code == 400


def test_fields_endpoints_list_create_and_delete_custom_fields(emu: PipedriveEmulator, client: httpx.Client) -> None:
    fields = client.get("/v1/personFields").json()
    by_name = {f["name"]: f for f in fields["data"]}
    assert by_name["Driver ID"]["key"] == DRIVER and len(DRIVER) == 40 and by_name["Driver ID"]["edit_flag"] is True
    assert by_name["Email"]["key"] == "email" and by_name["Email"]["edit_flag"] is False
    assert [o["label"] for o in by_name["Skills"]["options"]] == ["Drift", "Rally"]
    created = client.post("/v1/personFields", json={"name": "Shirt size", "field_type": "varchar"}).json()["data"]
    assert len(created["key"]) == 40
    assert client.post("/api/v2/persons", json={"name": "X", "custom_fields": {created["key"]: "M"}}).status_code == 200
    assert client.delete(f"/v1/personFields/{created['id']}").json()["data"] == {"id": created["id"]}
    assert client.post("/v1/personFields", json={"name": "Bad", "field_type": "nope"}).status_code == 400


def test_v1_bulk_delete(emu: PipedriveEmulator, client: httpx.Client) -> None:
    ids = emu.add_records("organizations", [{"name": "A"}, {"name": "B"}, {"name": "C"}])
    response = client.delete("/v1/organizations", params={"ids": f"{ids[0]},{ids[2]}"})
    assert response.json() == {"success": True, "data": {"id": [ids[0], ids[2]]}}
    assert [o["name"] for o in emu.records("organizations")] == ["B"]


@pytest.mark.parametrize("how", ["header", "query", "bearer"])
def test_api_token_is_accepted_as_pipedrive_does(emu: PipedriveEmulator, how: str) -> None:
    headers = {"x-api-token": "t"} if how == "header" else {"Authorization": "Bearer t"} if how == "bearer" else {}
    params = {"api_token": "t"} if how == "query" else {}
    assert httpx.get(emu.base_url + "/api/v2/persons", headers=headers, params=params).status_code == 200


def test_auth_failure_is_pipedrive_401(emu: PipedriveEmulator) -> None:
    response = httpx.get(emu.base_url + "/api/v2/persons", params={"api_token": "wrong"})
    assert response.status_code == 401
    assert response.json()["success"] is False and response.json()["error"] == "unauthorized access"


def test_burst_window_429_with_headers_and_search_window() -> None:
    with PipedriveEmulator(token="t", rate_limit=True) as emulator:
        assert emulator.rate_limit is not None and emulator.rate_limit.requests == 20
        emulator.rate_limit = (2, 2)
        url, headers = emulator.base_url + "/api/v2/persons", {"x-api-token": "t"}
        first = httpx.post(url, json={"name": "A"}, headers=headers)
        assert (first.headers["x-ratelimit-limit"], first.headers["x-ratelimit-remaining"]) == ("2", "1")
        assert first.headers["x-ratelimit-reset"] == "2"
        httpx.post(url, json={"name": "B"}, headers=headers)
        refused = httpx.post(url, json={"name": "C"}, headers=headers)
        assert refused.status_code == 429 and refused.json()["success"] is False
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert emulator._limits.window("search") == RateLimit(10, 2.0)  # search has its own 10 per 2 s
        emulator.set_group_limit("search", (10, 60.0))  # the same count, over a window a loaded machine cannot outlast
        searches = [httpx.get(url + "/search", params={"term": "AB"}, headers=headers).status_code for _ in range(11)]
        assert searches == [200] * 10 + [429]
        assert [p["name"] for p in emulator.records("persons")] == ["A", "B"]


def test_daily_token_budget_charges_each_endpoint_its_token_cost(emu: PipedriveEmulator, client: httpx.Client) -> None:
    emu.daily_limit = 12
    left = "x-daily-ratelimit-token-remaining"
    created = client.post("/api/v2/persons", json={"name": "A"})  # 5 tokens
    assert (created.headers["x-daily-ratelimit-token-limit"], created.headers[left]) == ("12", "7")
    assert "x-daily-requests-left" not in created.headers  # the legacy header counts requests, not tokens
    assert client.get("/api/v2/persons/1").headers[left] == "6"  # 1 token
    assert client.delete("/api/v2/persons/1").headers[left] == "3"  # 3 tokens
    listed = client.get("/api/v2/persons")  # a list costs 10: started within the budget, so served
    assert listed.status_code == 200 and listed.headers[left] == "0"
    spent = client.get("/api/v2/persons/1")
    assert spent.status_code == 429 and spent.headers[left] == "0"
    assert spent.json()["error"] == "Request over limit"  # the documented 429 body: the header is the signal


def test_legacy_daily_limit_counts_post_and_put_requests_not_tokens() -> None:
    with PipedriveEmulator(token="t", limit_model="legacy", daily_limit=2) as emulator:
        client = httpx.Client(base_url=emulator.base_url, headers={"x-api-token": "t"}, timeout=5)
        assert client.post("/api/v2/persons", json={"name": "A"}).headers["x-daily-requests-left"] == "1"
        assert client.get("/api/v2/persons/search", params={"term": "A"}).headers["x-daily-requests-left"] == "1"
        assert client.patch("/api/v2/persons/1", json={"name": "B"}).headers["x-daily-requests-left"] == "0"
        refused = client.post("/api/v2/persons", json={"name": "C"})
        assert refused.status_code == 429 and refused.headers["x-daily-requests-left"] == "0"
        assert client.get("/api/v2/persons/1").status_code == 200  # reads are not counted
        assert "x-daily-ratelimit-token-remaining" not in refused.headers
    with pytest.raises(ValueError, match="limit_model"):
        PipedriveEmulator(limit_model="requests")


@pytest.mark.parametrize(("path", "body"), [
    ("/api/v2/deals", {"title": "D", "value": None}),
    ("/api/v2/deals", {"title": "D", "currency": None}),
    ("/api/v2/deals", {"title": "D", "expected_close_date": None}),
    ("/api/v2/persons", {"name": "P", "owner_id": None}),
    ("/api/v2/persons", {"name": "P", "org_id": None}),
    ("/api/v2/organizations", {"name": "O", "visible_to": None}),
    ("/api/v2/persons", {"name": "P", "emails": None}),
])
def test_null_is_refused_where_the_v2_spec_does_not_make_a_property_nullable(
        emu: PipedriveEmulator, client: httpx.Client, path: str, body: dict[str, Any]) -> None:
    response = client.post(path, json=body)
    assert response.status_code == 400
    [name] = [k for k, v in body.items() if v is None]
    assert response.json() == {"success": False, "error": response.json()["error"], "error_info": ERROR_INFO,
                               "data": None, "additional_data": None}
    assert f"'{name}'" in response.json()["error"] and "null" in response.json()["error"]


def test_nullable_properties_and_custom_fields_take_null(emu: PipedriveEmulator, client: httpx.Client) -> None:
    deal = client.post("/api/v2/deals", json={"title": "D", "probability": 40, "lost_reason": "price"}).json()["data"]
    patched = client.patch(f"/api/v2/deals/{deal['id']}", json={"probability": None, "lost_reason": None,
                                                                "close_time": None, "custom_fields": {CONTRACT: None}})
    assert patched.status_code == 200
    assert (patched.json()["data"]["probability"], patched.json()["data"]["lost_reason"]) == (None, None)


def test_tokens_in_urls_are_counted(emu: PipedriveEmulator, client: httpx.Client) -> None:
    client.get("/v1/personFields")
    assert emu.tokens_in_urls == 0
    httpx.get(emu.base_url + "/v1/personFields", params={"api_token": "t"})
    assert emu.tokens_in_urls == 1


def test_faults_in_pipedrive_shapes(emu: PipedriveEmulator, client: httpx.Client) -> None:
    emu.inject("status_5xx", status=500)
    assert client.post("/api/v2/persons", json={"name": "A"}).json()["success"] is False
    emu.inject("partial")
    partial = client.post("/api/v2/persons", json={"name": "B"})
    assert partial.status_code == 400 and partial.json()["success"] is False
    emu.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post("/api/v2/persons", json={"name": "C"})
    emu.inject("throttle")
    assert client.post("/api/v2/persons", json={"name": "D"}).status_code == 429
    emu.inject("timeout", seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.base_url + "/api/v2/persons", json={"name": "E"}, headers={"x-api-token": "t"}, timeout=0.1)
    assert client.post("/api/v2/persons", json={"name": "F"}).status_code == 200
    assert emu.counters.faults == 5
