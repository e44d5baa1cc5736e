"""Salesforce emulator over real HTTP: sObject Collections, Bulk API 2.0, OAuth, limits, faults."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import SalesforceEmulator, SalesforceField

API = "/services/data/v62.0"
UPSERT = "/composite/sobjects/Contact/Ext_Id__c"
FIELDS = {"Contact": [SalesforceField("Ext_Id__c", external_id=True, length=20),
                      SalesforceField("Score__c", "double"),
                      SalesforceField("Tier__c", "picklist", picklist=("Gold", "Silver"))]}


@pytest.fixture
def emu() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(token="t", fields=FIELDS, custom_objects={"Driver__c": [
            SalesforceField("Licence__c", external_id=True)]}) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def client(emu: SalesforceEmulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=emu.base_url + API, headers={"Authorization": "Bearer t"}, timeout=5) as c:
        yield c


def contact(ext: str, **fields: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Contact"}, "Ext_Id__c": ext, **fields}


def upsert(client: httpx.Client, *records: dict[str, Any], all_or_none: bool = False) -> httpx.Response:
    return client.patch(UPSERT, json={"allOrNone": all_or_none, "records": list(records)})


def test_upsert_creates_then_updates_in_request_order(emu: SalesforceEmulator, client: httpx.Client) -> None:
    first = upsert(client, contact("W-1", LastName="Lovelace", Email="ada@example.com", Score__c=1.5))
    assert first.status_code == 200
    [result] = first.json()
    assert result["success"] is True and result["created"] is True and result["errors"] == []
    assert len(result["id"]) == 18 and result["id"].startswith("003")
    second = upsert(client, contact("w-1", FirstName="Ada"), contact("W-2", LastName="Byron"))
    assert [(r["created"], r["success"]) for r in second.json()] == [(False, True), (True, True)]
    assert second.json()[0]["id"] == result["id"]  # external ids match case-insensitively
    assert emu.records("Contact")[0] == {"Id": result["id"], "Ext_Id__c": "w-1", "LastName": "Lovelace",
                                         "Email": "ada@example.com", "Score__c": 1.5, "FirstName": "Ada"}


def test_per_item_errors_in_salesforce_shape(emu: SalesforceEmulator, client: httpx.Client) -> None:
    response = upsert(client, contact("A", LastName="Ok"), contact("B", FirstName="No last name"),
                      contact("C", LastName="X", Email="nope"), contact("D", LastName="X" * 81),
                      contact("E", LastName="X", Tier__c="Bronze"), contact("F", LastName="Y"),
                      contact("F", LastName="Z"), contact("", LastName="NoKey"))
    assert response.status_code == 200
    codes = [r["errors"][0]["statusCode"] if r["errors"] else None for r in response.json()]
    assert codes == [None, "REQUIRED_FIELD_MISSING", "INVALID_EMAIL_ADDRESS", "STRING_TOO_LONG",
                     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "DUPLICATE_EXTERNAL_ID", "DUPLICATE_EXTERNAL_ID",
                     "MISSING_ARGUMENT"]
    failed = response.json()[1]
    assert failed == {"id": None, "success": False, "created": False, "errors": [
        {"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]",
         "fields": ["LastName"]}]}
    assert [r["Ext_Id__c"] for r in emu.records("Contact")] == ["A"]


def test_all_or_none_rolls_back_every_change(emu: SalesforceEmulator, client: httpx.Client) -> None:
    upsert(client, contact("KEEP", LastName="Before"))
    response = upsert(client, contact("KEEP", LastName="After"), contact("NEW", LastName="New"),
                      contact("BAD", Email="x@y.z"), all_or_none=True)
    results = response.json()
    assert [r["success"] for r in results] == [False, False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert [(r["Ext_Id__c"], r["LastName"]) for r in emu.records("Contact")] == [("KEEP", "Before")]


def test_request_level_errors_fail_everything(emu: SalesforceEmulator, client: httpx.Client) -> None:
    unknown = upsert(client, contact("A", LastName="Ok"), contact("B", LastName="X", Nickname__c="B"))
    assert unknown.status_code == 400
    assert unknown.json() == [{"message": "No such column 'Nickname__c' on sobject of type Contact",
                               "errorCode": "INVALID_FIELD"}]
    bad_date = upsert(client, contact("A", LastName="Ok", Birthdate="1815-13-10"))
    assert bad_date.status_code == 400 and bad_date.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    not_external = client.patch("/composite/sobjects/Contact/Email", json={"records": [contact("A", LastName="X")]})
    assert not_external.status_code == 404 and not_external.json()[0]["errorCode"] == "NOT_FOUND"
    assert emu.records("Contact") == []


def test_batch_maximum_is_200_records(emu: SalesforceEmulator, client: httpx.Client) -> None:
    records = [contact(f"E{i}", LastName="L") for i in range(200)]
    assert all(r["success"] for r in upsert(client, *records).json())
    too_many = upsert(client, *records, contact("E200", LastName="L"))
    assert too_many.status_code == 400 and too_many.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert len(emu.records("Contact")) == 200


def test_create_update_delete_retrieve_and_query(emu: SalesforceEmulator, client: httpx.Client) -> None:
    created = client.post("/composite/sobjects", json={"records": [
        {"attributes": {"type": "Account"}, "Name": "Acme"}, {"attributes": {"type": "Lead"}, "LastName": "L"}]})
    account_id, lead_error = created.json()[0]["id"], created.json()[1]["errors"][0]
    assert lead_error["statusCode"] == "REQUIRED_FIELD_MISSING" and lead_error["fields"] == ["Company"]
    updated = client.patch("/composite/sobjects", json={"records": [
        {"attributes": {"type": "Account"}, "id": account_id[:15], "NumberOfEmployees": 12}]})
    assert updated.json() == [{"id": account_id, "success": True, "errors": []}]
    fields = "Name,NumberOfEmployees"
    retrieved = client.get("/composite/sobjects/Account", params={"ids": account_id, "fields": fields})
    assert retrieved.json()[0]["NumberOfEmployees"] == 12
    query = client.get("/query", params={"q": "SELECT Id, Name FROM Account WHERE Name IN ('acme', 'Other')"})
    assert query.json()["totalSize"] == 1 and query.json()["records"][0]["Id"] == account_id
    deleted = client.delete("/composite/sobjects", params={"ids": f"{account_id},bogus"})
    assert [r["success"] for r in deleted.json()] == [True, False]
    assert deleted.json()[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    again = client.delete("/composite/sobjects", params={"ids": account_id})
    assert again.json()[0]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert emu.records("Account") == []


def test_custom_object_describe_and_seeded_records(emu: SalesforceEmulator, client: httpx.Client) -> None:
    response = client.patch("/composite/sobjects/Driver__c/Licence__c", json={"records": [
        {"attributes": {"type": "Driver__c"}, "Licence__c": "L-1", "Name": "Ayrton"}]})
    assert response.json()[0]["created"] is True
    describe = client.get("/sobjects/Contact/describe").json()
    ext = next(f for f in describe["fields"] if f["name"] == "Ext_Id__c")
    assert ext["externalId"] is True and ext["custom"] is True
    [seeded] = emu.add_records("Contact", [{"LastName": "Seed", "Ext_Id__c": "S-1"}])
    assert upsert(client, contact("S-1", FirstName="Now")).json()[0] == {"id": seeded, "success": True, "errors": [],
                                                                       "created": False}


def test_bulk_ingest_upsert_job_with_results(emu: SalesforceEmulator, client: httpx.Client) -> None:
    emu.bulk.processing_seconds = 0.3
    job = client.post("/jobs/ingest", json={"object": "Contact", "externalIdFieldName": "Ext_Id__c",
                                            "contentType": "CSV", "operation": "upsert", "lineEnding": "LF"}).json()
    assert job["state"] == "Open" and job["contentUrl"].endswith("/batches")
    csv_data = "Ext_Id__c,LastName,Score__c\nB-1,One,1\nB-2,,\nB-3,Three,abc\nB-4,Four,#N/A\n"
    upload = client.put(f"/jobs/ingest/{job['id']}/batches", content=csv_data, headers={"Content-Type": "text/csv"})
    assert upload.status_code == 201
    second = client.put(f"/jobs/ingest/{job['id']}/batches", content=csv_data, headers={"Content-Type": "text/csv"})
    assert second.status_code == 409
    closed = client.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    assert closed.json()["state"] == "UploadComplete"
    assert client.get(f"/jobs/ingest/{job['id']}").json()["state"] == "InProgress"
    time.sleep(0.35)
    info = client.get(f"/jobs/ingest/{job['id']}").json()
    assert (info["state"], info["numberRecordsProcessed"], info["numberRecordsFailed"]) == ("JobComplete", 4, 2)
    ok = client.get(f"/jobs/ingest/{job['id']}/successfulResults/").text.splitlines()
    assert ok[0] == "sf__Id,sf__Created,Ext_Id__c,LastName,Score__c"
    assert [line.split(",")[1:] for line in ok[1:]] == [["true", "B-1", "One", "1"], ["true", "B-4", "Four", "#N/A"]]
    failed = client.get(f"/jobs/ingest/{job['id']}/failedResults/").text.splitlines()
    assert failed[0] == "sf__Id,sf__Error,Ext_Id__c,LastName,Score__c"
    assert failed[1].startswith(",REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --,B-2")
    assert "INVALID_FIELD" in failed[2]
    assert {r["Ext_Id__c"] for r in emu.records("Contact")} == {"B-1", "B-4"}
    assert emu.counters.records == 4
    assert client.delete(f"/jobs/ingest/{job['id']}").status_code == 204


def test_bulk_unknown_column_fails_the_job_and_abort_leaves_rows_unprocessed(emu: SalesforceEmulator,
                                                                             client: httpx.Client) -> None:
    spec = {"object": "Contact", "operation": "insert", "contentType": "CSV"}
    job = client.post("/jobs/ingest", json=spec).json()
    client.put(f"/jobs/ingest/{job['id']}/batches", content="LastName,Nope__c\nA,1\n")
    client.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    info = client.get(f"/jobs/ingest/{job['id']}").json()
    assert info["state"] == "Failed" and "Nope__c" in info["errorMessage"]
    aborted = client.post("/jobs/ingest", json=spec).json()
    client.put(f"/jobs/ingest/{aborted['id']}/batches", content="LastName\nA\nB\n")
    assert client.patch(f"/jobs/ingest/{aborted['id']}", json={"state": "Aborted"}).json()["state"] == "Aborted"
    assert client.get(f"/jobs/ingest/{aborted['id']}/unprocessedrecords/").text.splitlines() == ["LastName", "A", "B"]
    bad = client.post("/jobs/ingest", json={"object": "Contact", "operation": "upsert", "externalIdFieldName": "Email"})
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDJOB"
    assert emu.records("Contact") == []


def test_oauth_token_endpoint_and_expired_sessions(emu: SalesforceEmulator, client: httpx.Client) -> None:
    emu.client_id, emu.client_secret = "cid", "csecret"
    denied = httpx.post(emu.base_url + "/services/oauth2/token",
                        data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "no"})
    assert denied.status_code == 400 and denied.json()["error"] == "invalid_client"
    new_token = emu.expire_sessions()
    expired = client.get("/limits")
    assert expired.status_code == 401 and expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    granted = httpx.post(emu.base_url + "/services/oauth2/token",
                         data={"grant_type": "client_credentials", "client_id": "cid", "client_secret": "csecret"})
    assert granted.json()["access_token"] == new_token and granted.json()["instance_url"] == emu.base_url
    assert client.get("/limits", headers={"Authorization": f"Bearer {new_token}"}).status_code == 200


def test_api_usage_header_and_request_limit_exceeded(emu: SalesforceEmulator, client: httpx.Client) -> None:
    emu.daily_limit = 2
    first = client.get("/limits")
    assert first.headers["Sforce-Limit-Info"] == "api-usage=1/2"
    assert first.json()["DailyApiRequests"] == {"Max": 2, "Remaining": 1}
    client.get("/limits")
    refused = upsert(client, contact("A", LastName="X"))
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert refused.headers["Sforce-Limit-Info"] == "api-usage=2/2"
    assert emu.counters.throttled == 1 and emu.records("Contact") == []


def test_faults_in_salesforce_shapes(emu: SalesforceEmulator, client: httpx.Client) -> None:
    emu.inject("status_5xx")
    unavailable = upsert(client, contact("A", LastName="X"))
    assert unavailable.status_code == 503 and unavailable.json()[0]["errorCode"] == "SERVER_UNAVAILABLE"
    emu.inject("partial", fail_indexes=(1,))
    partial = upsert(client, contact("A", LastName="X"), contact("B", LastName="Y"), contact("C", LastName="Z"))
    assert [r["success"] for r in partial.json()] == [True, False, True]
    assert partial.json()[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    emu.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        upsert(client, contact("D", LastName="W"))
    emu.inject("throttle")
    assert upsert(client, contact("E", LastName="V")).json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    emu.inject("timeout", seconds=0.3)
    with pytest.raises(httpx.ReadTimeout):
        httpx.patch(emu.base_url + API + UPSERT, json={"records": [contact("F", LastName="U")]},
                    headers={"Authorization": "Bearer t"}, timeout=0.1)
    time.sleep(0.4)  # the hung request is processed after the client gave up, as a vendor would
    assert {r["Ext_Id__c"] for r in emu.records("Contact")} == {"A", "C", "F"}


def test_partial_fault_on_a_bulk_upload_fails_rows(emu: SalesforceEmulator, client: httpx.Client) -> None:
    job = client.post("/jobs/ingest", json={"object": "Contact", "operation": "insert"}).json()
    emu.inject("partial")
    client.put(f"/jobs/ingest/{job['id']}/batches", content="LastName\nA\nB\nC\n")
    client.patch(f"/jobs/ingest/{job['id']}", json={"state": "UploadComplete"})
    failed = client.get(f"/jobs/ingest/{job['id']}/failedResults").text.splitlines()
    assert len(failed) == 2 and "UNABLE_TO_LOCK_ROW" in failed[1] and failed[1].endswith(",B")
    assert [r["LastName"] for r in emu.records("Contact")] == ["A", "C"]
