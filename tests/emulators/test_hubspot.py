"""HubSpot CRM v3 emulator over real HTTP: batch writes, errors, reads, limits, auth, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import HubSpotEmulator, HubSpotObject, HubSpotProperty

UPSERT = "/crm/v3/objects/contacts/batch/upsert"
CUSTOM = HubSpotObject("cars", "2-3456789", (HubSpotProperty("vin", unique=True), HubSpotProperty("model")))
PROPERTIES = {
    "contacts": [
        HubSpotProperty("signup_date", "date"),
        HubSpotProperty("last_seen", "datetime"),
        HubSpotProperty("score", "number"),
        HubSpotProperty("is_vip", "bool"),
        HubSpotProperty("flavours", "enumeration", ("chocolate", "strawberry", "vanilla"), multiple=True),
        HubSpotProperty("driver_id", unique=True),
    ]
}


@pytest.fixture
def emu() -> Iterator[HubSpotEmulator]:
    with HubSpotEmulator(token="t", properties=PROPERTIES, custom_objects=[CUSTOM]) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def client(emu: HubSpotEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer t"}, timeout=5) as c:
        yield c


def contact(email: str, **properties: Any) -> dict[str, Any]:
    return {"idProperty": "email", "id": email, "properties": properties}


def test_upsert_creates_then_updates_with_new_flag_and_string_values(emu: HubSpotEmulator,
                                                                     client: httpx.Client) -> None:
    first = client.post(UPSERT, json={"inputs": [contact("Ada@Example.com", firstname="Ada", score=3, is_vip=True)]})
    assert first.status_code == 200
    body = first.json()
    assert body["status"] == "COMPLETE"
    assert body["results"][0]["new"] is True
    assert body["results"][0]["properties"]["email"] == "ada@example.com"  # stored lower-cased
    second = client.post(UPSERT, json={"inputs": [contact("ada@example.com", lastname="Lovelace")]})
    assert second.json()["results"][0]["new"] is False
    assert second.json()["results"][0]["id"] == body["results"][0]["id"]
    [record] = emu.records("contacts")
    assert record["properties"] == {"email": "ada@example.com", "firstname": "Ada", "score": "3", "is_vip": "true",
                                    "lastname": "Lovelace"}


def test_id_property_as_query_parameter_and_dated_path(emu: HubSpotEmulator, client: httpx.Client) -> None:
    inputs = [{"id": "D-1", "properties": {"firstname": "Bo"}}]
    response = client.post("/crm/objects/2026-03/contacts/batch/upsert", params={"idProperty": "driver_id"},
                           json={"inputs": inputs})
    assert response.status_code == 200
    assert emu.records("0-1")[0]["properties"] == {"driver_id": "D-1", "firstname": "Bo"}


def test_empty_string_clears_a_property(emu: HubSpotEmulator, client: httpx.Client) -> None:
    client.post(UPSERT, json={"inputs": [contact("a@x.io", phone="123", firstname="A")]})
    client.post(UPSERT, json={"inputs": [contact("a@x.io", phone="")]})
    assert emu.records("contacts")[0]["properties"] == {"email": "a@x.io", "firstname": "A"}


def refused_problems(response: httpx.Response) -> list[dict[str, Any]]:
    """The problems of HubSpot's whole-batch 400, read from its message (it names no input)."""
    body = response.json()
    assert (response.status_code, body["status"], body["category"]) == (400, "error", "VALIDATION_ERROR")
    assert body["correlationId"] and "errors" not in body and "context" not in body
    prefix, _, listed = body["message"].partition(": ")
    assert prefix == "Property values were not valid"
    problems: list[dict[str, Any]] = json.loads(listed)
    return problems


@pytest.mark.parametrize("op", ["upsert", "update"])
def test_one_invalid_input_refuses_the_whole_upsert_or_update_batch(emu: HubSpotEmulator, client: httpx.Client,
                                                                    op: str) -> None:
    emu.add_records("contacts", [{"email": e} for e in ("ok@x.io", "bad@x.io", "next@x.io")])
    inputs = [contact("ok@x.io", firstname="Ok"), {**contact("bad@x.io", score="high"), "objectWriteTraceId": "2"},
              contact("next@x.io", firstname="Next")]
    response = client.post(f"/crm/v3/objects/contacts/batch/{op}", json={"inputs": inputs})
    assert refused_problems(response) == [{"isValid": False, "message": "high was not a valid number.",
                                           "error": "INVALID_DOUBLE", "name": "score"}]
    assert all(set(r["properties"]) == {"email"} for r in emu.records("contacts"))  # nothing of it written


def test_an_invalid_email_upserted_by_email_refuses_the_batch_naming_the_email(emu: HubSpotEmulator,
                                                                               client: httpx.Client) -> None:
    inputs = [contact("ok@x.io"), contact("name@domain", firstname="Typo"), contact("more@x.io")]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert refused_problems(response) == [{"isValid": False, "message": "Email address name@domain is invalid",
                                           "error": "INVALID_EMAIL", "name": "email"}]
    assert emu.records("contacts") == []


@pytest.mark.parametrize("op", ["upsert", "update"])
def test_a_conflicting_input_refuses_the_whole_batch_with_hubspots_2024_409_body(
        emu: HubSpotEmulator, client: httpx.Client, op: str) -> None:
    seeded = [{"email": "taken@x.io"}, {"email": "d2@x.io", "driver_id": "D-2"}, {"driver_id": "D-3"}]
    owner = emu.add_records("contacts", seeded)[0]
    inputs = [{"idProperty": "driver_id", "id": "D-2", "properties": {"firstname": "Two"}},
              {"idProperty": "driver_id", "id": "D-3", "properties": {"email": "Taken@x.io"}}]
    response = client.post(f"/crm/v3/objects/contacts/batch/{op}", json={"inputs": inputs})
    assert response.status_code == 409
    body = response.json()
    assert body == {"status": "error", "message": f"Contact already exists. Existing ID: {owner}",
                    "errors": [{"message": f"A contact with email taken@x.io already exists. Existing ID: {owner}",
                                "in": "email"}],
                    "correlationId": body["correlationId"], "category": "OBJECT_ALREADY_EXISTS",
                    "error": "CONTACT_EXISTS"}
    assert [r["properties"] for r in emu.records("contacts")] == seeded  # nothing of the batch written


def test_create_answers_per_record_and_every_input_failing_is_a_400_with_one_detail_each(
        emu: HubSpotEmulator, client: httpx.Client) -> None:
    create = "/crm/v3/objects/contacts/batch/create"
    inputs = [{"properties": {"email": "ok@x.io"}}, {"properties": {"email": "b@x.io", "nickname": "B"},
                                                     "objectWriteTraceId": "row-2"}]
    partial = client.post(create, json={"inputs": inputs})
    assert partial.status_code == 207
    [error] = partial.json()["errors"]
    assert error["category"] == "VALIDATION_ERROR" and error["context"] == {"objectWriteTraceId": ["row-2"]}
    assert [(d["code"], d["in"]) for d in error["errors"]] == [("PROPERTY_DOESNT_EXIST", "nickname")]
    failed = client.post(create, json={"inputs": [{"properties": {"email": "a@x.io", "nope": "1"},
                                                   "objectWriteTraceId": "a"},
                                                  {"properties": {"email": "c@x.io", "nope": "2"},
                                                   "objectWriteTraceId": "c"}]})
    assert failed.status_code == 400 and failed.json()["category"] == "VALIDATION_ERROR"
    assert [d["context"]["objectWriteTraceId"] for d in failed.json()["errors"]] == [["a"], ["c"]]
    assert [r["properties"]["email"] for r in emu.records("contacts")] == ["ok@x.io"]


@pytest.mark.parametrize(
    ("name", "value", "code"),
    [
        ("signup_date", "1430438400001", "INVALID_DATE"),
        ("signup_date", "2015-05-01", "INVALID_DATE"),
        ("last_seen", "yesterday", "INVALID_DATETIME"),
        ("score", "high", "INVALID_DOUBLE"),
        ("is_vip", "maybe", "INVALID_OPTION"),
        ("flavours", "chocolate;mint", "INVALID_OPTION"),
        ("lifecyclestage", "Lead", "INVALID_OPTION"),
        ("email", "not-an-email", "INVALID_EMAIL"),
        ("createdate", "1430438400000", "READ_ONLY_VALUE"),
        ("firstname", "x" * 65_537, "INVALID_STRING_LENGTH"),  # HubSpot's limit is 65,536 characters
    ],
)
def test_property_values_are_validated_like_hubspot(client: httpx.Client, name: str, value: str, code: str) -> None:
    inputs = [contact("ok@x.io"), {"idProperty": "email", "id": "v@x.io", "properties": {name: value}}]
    response = client.post(UPSERT, json={"inputs": inputs})
    assert [(p["error"], p["name"]) for p in refused_problems(response)] == [(code, name)]


def test_valid_typed_values_are_accepted(emu: HubSpotEmulator, client: httpx.Client) -> None:
    values = {"signup_date": "1430438400000", "last_seen": "1430438412345", "flavours": "chocolate;vanilla",
              "lifecyclestage": "lead", "is_vip": "false", "score": "1.5"}
    assert client.post(UPSERT, json={"inputs": [contact("v@x.io", **values)]}).status_code == 200
    assert emu.records("contacts")[0]["properties"] == {"email": "v@x.io", **values}


def test_batch_maximum_is_100_inputs(emu: HubSpotEmulator, client: httpx.Client) -> None:
    hundred = [contact(f"u{i}@x.io") for i in range(100)]
    assert client.post(UPSERT, json={"inputs": hundred}).status_code == 200
    too_many = client.post(UPSERT, json={"inputs": [*hundred, contact("u100@x.io")]})
    assert too_many.status_code == 400
    assert too_many.json()["category"] == "VALIDATION_ERROR"
    assert len(emu.records("contacts")) == 100


def test_duplicate_ids_in_one_batch_are_refused(emu: HubSpotEmulator, client: httpx.Client) -> None:
    response = client.post(UPSERT, json={"inputs": [contact("a@x.io"), contact("A@x.io")]})
    assert response.status_code == 400
    assert "Duplicate IDs" in response.json()["message"]


def test_create_update_and_archive(emu: HubSpotEmulator, client: httpx.Client) -> None:
    created = client.post("/crm/v3/objects/contacts/batch/create",
                          json={"inputs": [{"properties": {"email": "c@x.io", "firstname": "C"}}]})
    assert created.status_code == 201
    record_id = created.json()["results"][0]["id"]
    again = {"inputs": [{"properties": {"email": "c@x.io"}}]}
    conflict = client.post("/crm/v3/objects/contacts/batch/create", json=again)
    assert conflict.status_code == 409
    assert (conflict.json()["category"], conflict.json()["error"]) == ("OBJECT_ALREADY_EXISTS", "CONTACT_EXISTS")
    assert conflict.json()["errors"][0]["in"] == "email"
    mixed = client.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
        {"properties": {"email": "new@x.io"}}, {"properties": {"email": "C@x.io"}, "objectWriteTraceId": "c"}]})
    assert mixed.status_code == 207
    detail = f"A contact with email c@x.io already exists. Existing ID: {record_id}"
    assert mixed.json()["errors"] == [{
        "status": "error", "category": "OBJECT_ALREADY_EXISTS", "message": f"Contact already exists. Existing ID: "
        f"{record_id}", "context": {"objectWriteTraceId": ["c"]}, "links": {},
        "errors": [{"message": detail, "in": "email"}]}]
    client.post("/crm/v3/objects/contacts/batch/archive", json={"inputs": [
        {"id": r["id"]} for r in emu.records("contacts") if r["properties"]["email"] == "new@x.io"]})
    updated = client.post("/crm/v3/objects/contacts/batch/update",
                          json={"inputs": [{"id": record_id, "properties": {"firstname": "Cy"}},
                                           {"id": "999999", "properties": {"firstname": "Ghost"}}]})
    assert updated.status_code == 207
    assert updated.json()["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert updated.json()["errors"][0]["context"] == {"ids": ["999999"]}
    archived = client.post("/crm/v3/objects/contacts/batch/archive", json={"inputs": [{"id": record_id}]})
    assert archived.status_code == 204 and archived.content == b""
    assert emu.records("contacts") == []
    assert emu.records("contacts", archived=True)[0]["properties"]["firstname"] == "Cy"


def test_update_mode_against_seeded_records(emu: HubSpotEmulator, client: httpx.Client) -> None:
    [seeded] = emu.add_records("contacts", [{"email": "s@x.io", "firstname": "S"}])
    response = client.post("/crm/v3/objects/contacts/batch/update",
                           json={"inputs": [{"idProperty": "email", "id": "s@x.io", "properties": {"lastname": "T"}}]})
    assert response.status_code == 200
    assert response.json()["results"][0]["id"] == seeded


def test_reads_list_get_search_and_batch_read(emu: HubSpotEmulator, client: httpx.Client) -> None:
    client.post(UPSERT, json={"inputs": [contact(f"r{i}@x.io", firstname=f"R{i}", country="RU" if i % 2 else "FR")
                                         for i in range(5)]})
    page = client.get("/crm/v3/objects/contacts", params={"limit": 2, "properties": "country"}).json()
    assert len(page["results"]) == 2 and set(page["results"][0]["properties"]) >= {"country", "hs_object_id"}
    rest = client.get("/crm/v3/objects/contacts", params={"limit": 10, "after": page["paging"]["next"]["after"]})
    assert len(rest.json()["results"]) == 3 and "paging" not in rest.json()
    one = client.get("/crm/v3/objects/contacts/r1@x.io", params={"idProperty": "email"}).json()
    assert one["properties"]["firstname"] == "R1"
    search = {"filterGroups": [{"filters": [{"propertyName": "country", "operator": "EQ", "value": "ru"}]}],
              "properties": ["email"], "limit": 1}
    found = client.post("/crm/v3/objects/contacts/search", json=search).json()
    assert found["total"] == 2 and found["paging"]["next"]["after"] == "1"
    read = client.post("/crm/v3/objects/contacts/batch/read",
                       json={"idProperty": "email", "inputs": [{"id": "r0@x.io"}, {"id": "nobody@x.io"}]})
    assert read.status_code == 207 and read.json()["errors"][0]["context"] == {"ids": ["nobody@x.io"]}
    assert client.get("/crm/v3/objects/contacts/404404").status_code == 404


def test_custom_objects_by_type_id_and_name_and_property_definitions(emu: HubSpotEmulator, client: httpx.Client
                                                                    ) -> None:
    response = client.post("/crm/v3/objects/2-3456789/batch/upsert",
                           json={"inputs": [{"idProperty": "vin", "id": "V1", "properties": {"model": "T"}}]})
    assert response.status_code == 200
    assert emu.records("cars")[0]["properties"] == {"vin": "V1", "model": "T"}
    assert client.post("/crm/v3/objects/cars/search", json={}).json()["total"] == 1
    definitions = client.get("/crm/v3/properties/contacts").json()["results"]
    by_name = {d["name"]: d for d in definitions}
    assert by_name["signup_date"]["type"] == "date"
    assert by_name["flavours"]["fieldType"] == "checkbox"
    assert by_name["email"]["hasUniqueValue"] is True
    assert client.post("/crm/v3/objects/planes/batch/upsert", json={"inputs": []}).status_code == 400


def test_auth_failure_is_hubspot_401(client: httpx.Client, emu: HubSpotEmulator) -> None:
    response = httpx.post(emu.base_url + UPSERT, json={"inputs": []}, headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert response.json()["category"] == "INVALID_AUTHENTICATION"


def test_ten_secondly_limit_429_with_headers_and_search_exempt(emu: HubSpotEmulator, client: httpx.Client) -> None:
    emu.rate_limit = True
    assert emu.rate_limit is not None and (emu.rate_limit.requests, emu.rate_limit.per_seconds) == (100, 10.0)
    emu.rate_limit = (2, 10)
    ok = client.post(UPSERT, json={"inputs": [contact("a@x.io")]})
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "2"
    assert ok.headers["X-HubSpot-RateLimit-Remaining"] == "1"
    assert ok.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    client.post(UPSERT, json={"inputs": [contact("b@x.io")]})
    refused = client.post(UPSERT, json={"inputs": [contact("c@x.io")]})
    assert refused.status_code == 429
    assert refused.json()["policyName"] == "TEN_SECONDLY_ROLLING" and refused.json()["errorType"] == "RATE_LIMIT"
    assert refused.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert client.post("/crm/v3/objects/contacts/search", json={}).status_code == 200
    assert emu.counters.throttled == 1 and len(emu.records("contacts")) == 2


def test_daily_limit_429_daily_policy(emu: HubSpotEmulator, client: httpx.Client) -> None:
    emu.daily_limit = 1
    first = client.post(UPSERT, json={"inputs": [contact("a@x.io")]})
    assert first.headers["X-HubSpot-RateLimit-Daily"] == "1"
    assert first.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    refused = client.post(UPSERT, json={"inputs": [contact("b@x.io")]})
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"


def test_search_limit_is_its_own() -> None:
    with HubSpotEmulator(token="t", search_rate_limit=(1, 10)) as emulator:
        url = emulator.base_url + "/crm/v3/objects/contacts/search"
        statuses = [httpx.post(url, json={}, headers={"Authorization": "Bearer t"}).status_code for _ in range(2)]
        assert statuses == [200, 429]


def test_faults_in_hubspot_shapes(emu: HubSpotEmulator, client: httpx.Client) -> None:
    emu.inject("status_5xx", status=502)
    failed = client.post(UPSERT, json={"inputs": [contact("a@x.io")]})
    assert failed.status_code == 502 and failed.json()["status"] == "error"
    emu.inject("partial")
    partial = client.post(UPSERT, json={"inputs": [contact(f"p{i}@x.io") for i in range(4)]})
    assert partial.status_code == 207
    assert [e["context"]["ids"] for e in partial.json()["errors"]] == [["p1@x.io"], ["p3@x.io"]]
    emu.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(UPSERT, json={"inputs": [contact("dropped@x.io")]})
    emu.inject("throttle")
    assert client.post(UPSERT, json={"inputs": [contact("t@x.io")]}).json()["policyName"] == "TEN_SECONDLY_ROLLING"
    emails = {r["properties"]["email"] for r in emu.records("contacts")}
    assert emails == {"p0@x.io", "p2@x.io"}  # nothing from the 5xx, the drop or the 429


def test_timeout_fault_hangs_then_applies_the_write(emu: HubSpotEmulator) -> None:
    emu.inject("timeout", seconds=0.4)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(emu.base_url + UPSERT, json={"inputs": [contact("late@x.io")]},
                   headers={"Authorization": "Bearer t"}, timeout=0.1)
    deadline = time.monotonic() + 3
    while not emu.records("contacts") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert emu.records("contacts")[0]["properties"]["email"] == "late@x.io"


def test_parallel_clients_on_kept_alive_connections_lose_nothing(emu: HubSpotEmulator) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def worker(number: int) -> list[int]:
        with httpx.Client(base_url=emu.base_url, headers={"Authorization": "Bearer t"}, timeout=10) as c:
            batches = [[contact(f"w{number}-{b}-{i}@x.io") for i in range(100)] for b in range(10)]
            return [c.post(UPSERT, json={"inputs": inputs}).status_code for inputs in batches]

    with ThreadPoolExecutor(4) as pool:
        statuses = [s for result in pool.map(worker, range(4)) for s in result]
    assert statuses == [200] * 40
    assert len(emu.records("contacts")) == 4000
    assert (emu.counters.requests, emu.counters.records) == (40, 4000)
