"""GoogleSheetsEmulator follows the Sheets v4 contract: OAuth grant, Google's error shape, grid
limits, atomic writes, value input options and the per-user write quota."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from google.auth import crypt, jwt

from dbt_activate.testing.google_sheets.auth import GRANT_TYPE, SCOPE, new_service_account
from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator


@pytest.fixture
def emu() -> Iterator[GoogleSheetsEmulator]:
    with GoogleSheetsEmulator() as emulator:
        yield emulator
    assert emulator.errors == []


def grant(emu: GoogleSheetsEmulator, info: dict[str, Any], **claims: Any) -> httpx.Response:
    signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
    now = int(time.time())
    payload = {"iss": info["client_email"], "scope": SCOPE, "aud": emu.base_url + "/token", "iat": now,
               "exp": now + 3600, **claims}
    return httpx.post(emu.base_url + "/token", data={"grant_type": GRANT_TYPE,
                                                     "assertion": jwt.encode(signer, payload).decode()})  # type: ignore[no-untyped-call]


BOOK = "/v4/spreadsheets/test-spreadsheet"


def client(emu: GoogleSheetsEmulator) -> httpx.Client:
    token = grant(emu, emu.service_account()).json()["access_token"]
    return httpx.Client(base_url=emu.base_url + BOOK,
                        headers={"Authorization": f"Bearer {token}"})


def test_the_token_endpoint_checks_account_signature_audience_and_scope(emu: GoogleSheetsEmulator) -> None:
    trusted = emu.service_account()
    assert grant(emu, trusted).json()["token_type"] == "Bearer"
    stranger, _ = new_service_account(emu.base_url + "/token", "stranger@x.iam.gserviceaccount.com")
    assert grant(emu, stranger).json()["error"] == "invalid_grant"
    forged = {**stranger, "client_email": trusted["client_email"]}  # right name, wrong key
    assert "Invalid JWT Signature" in grant(emu, forged).json()["error_description"]
    assert grant(emu, trusted, aud="https://elsewhere/token").status_code == 400
    assert grant(emu, trusted, scope="https://www.googleapis.com/auth/drive").json()["error"] == "invalid_scope"


def test_requests_need_an_issued_token_and_errors_have_googles_shape(emu: GoogleSheetsEmulator) -> None:
    answer = httpx.get(emu.base_url + "/v4/spreadsheets/test-spreadsheet", headers={"Authorization": "Bearer nope"})
    assert answer.status_code == 401 and answer.json()["error"]["status"] == "UNAUTHENTICATED"
    missing = client(emu).get(emu.base_url + "/v4/spreadsheets/other")
    assert missing.json() == {"error": {"code": 404, "message": "Requested entity was not found.",
                                        "status": "NOT_FOUND"}}


def test_writes_are_atomic_and_refused_outside_the_grid_or_over_50000_characters(emu: GoogleSheetsEmulator) -> None:
    api = client(emu)
    ok = {"range": "Sheet1!A1", "values": [["id", "name"], [1, "a"]]}
    too_long = {"range": "Sheet1!A3", "values": [[2, "x" * 50_001]]}
    refused = api.post("/values:batchUpdate", json={"valueInputOption": "RAW", "data": [ok, too_long]})
    assert refused.status_code == 400 and "maximum of 50000 characters" in refused.json()["error"]["message"]
    assert emu.values("Sheet1") == []  # the valid range was not applied either
    beyond = api.post("/values:batchUpdate", json={"valueInputOption": "RAW",
                                                   "data": [{"range": "Sheet1!A1001", "values": [[1]]}]})
    assert beyond.json()["error"]["message"] == ("Range ('Sheet1'!A1001) exceeds grid limits. Max rows: 1000, "
                                                 "max columns: 26")
    assert api.post("/values:batchUpdate", json={"data": [ok]}).status_code == 400  # valueInputOption required
    assert api.post("/values:batchUpdate", json={"valueInputOption": "RAW", "data": [ok]}).status_code == 200
    got = api.get("/values/" + quote("'Sheet1'", safe="")).json()
    assert got["values"] == [["id", "name"], [1, "a"]]


def test_user_entered_parses_like_the_ui_and_raw_keeps_text(emu: GoogleSheetsEmulator) -> None:
    api = client(emu)
    row = ["42", "2.5", "TRUE", "'007", "=A1", "00123x"]
    api.put("/values/" + quote("Sheet1!A1", safe=""), params={"valueInputOption": "USER_ENTERED"},
            json={"values": [row]})
    api.put("/values/" + quote("Sheet1!A2", safe=""), params={"valueInputOption": "RAW"}, json={"values": [row]})
    assert emu.values("Sheet1") == [[42, 2.5, True, "007", "=A1", "00123x"], row]


def test_structure_requests_add_tabs_grow_and_delete_rows(emu: GoogleSheetsEmulator) -> None:
    api = client(emu)
    add = {"requests": [{"addSheet": {"properties": {"title": "T"}}}]}
    reply = api.post(emu.base_url + BOOK + ":batchUpdate", json=add).json()
    tab_id = reply["replies"][0]["addSheet"]["properties"]["sheetId"]
    api.post("/values:batchUpdate", json={"valueInputOption": "RAW", "data": [
        {"range": "T!A1", "values": [["id"], [1], [2], [3]]}]})
    api.post(emu.base_url + BOOK + ":batchUpdate", json={"requests": [
        {"deleteDimension": {"range": {"sheetId": tab_id, "dimension": "ROWS", "startIndex": 2, "endIndex": 3}}},
        {"appendDimension": {"sheetId": tab_id, "dimension": "ROWS", "length": 500}}]})
    assert emu.values("T") == [["id"], [1], [3]]
    assert emu.tab("T").row_count == 1499
    api.post("/values/T!A1:append", params={"valueInputOption": "RAW"}, json={"values": [[4]]})
    assert emu.values("T")[-1] == [4]
    duplicate = api.post(emu.base_url + BOOK + ":batchUpdate", json=add)
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["error"]["message"]


def test_the_write_quota_answers_429_resource_exhausted(emu: GoogleSheetsEmulator) -> None:
    api = client(emu)
    emu.rate_limit = (2, 60)
    body = {"valueInputOption": "RAW", "data": [{"range": "Sheet1!A1", "values": [[1]]}]}
    assert [api.post("/values:batchUpdate", json=body).status_code for _ in range(3)] == [200, 200, 429]
    throttled = api.post("/values:batchUpdate", json=body)
    assert throttled.json()["error"]["status"] == "RESOURCE_EXHAUSTED" and "Retry-After" not in throttled.headers
    assert api.get("/values/Sheet1").status_code == 200  # reads have their own quota
    assert GoogleSheetsEmulator(rate_limit=True).rate_limit == emu.default_rate_limit
