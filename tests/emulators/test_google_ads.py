"""Google Ads emulator over real HTTP: the v25 REST contract it enforces, independent of our client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import EMULATORS, GoogleAdsEmulator

CUSTOMER = "/v25/customers/1234567890"
HASH = hashlib.sha256(b"a@b.co").hexdigest()


@pytest.fixture
def emu() -> Iterator[GoogleAdsEmulator]:
    with GoogleAdsEmulator(polls_until_done=2) as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: GoogleAdsEmulator) -> httpx.Client:
    token = httpx.post(emu.base_url + "/token", data={
        "grant_type": "refresh_token", "client_id": emu.client_id, "client_secret": emu.client_secret,
        "refresh_token": emu.refresh_token}).json()["access_token"]
    return httpx.Client(base_url=emu.base_url, timeout=10, headers={
        "Authorization": f"Bearer {token}", "developer-token": emu.developer_token})


def conversion(**extra: Any) -> dict[str, Any]:
    return {"gclid": "G1", "conversionAction": "customers/1234567890/conversionActions/987",
            "conversionDateTime": "2026-01-02 03:04:05+00:00", **extra}


def error_code(response: httpx.Response) -> dict[str, str]:
    code: dict[str, str] = response.json()["error"]["details"][0]["errors"][0]["errorCode"]
    return code


def test_registered_for_the_command_line() -> None:
    assert EMULATORS["google_ads"] is GoogleAdsEmulator


def test_a_refresh_token_it_did_not_issue_is_an_invalid_grant(emu: GoogleAdsEmulator) -> None:
    answer = httpx.post(emu.base_url + "/token", data={"grant_type": "refresh_token", "client_id": emu.client_id,
                                                       "client_secret": emu.client_secret, "refresh_token": "x"})
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_requests_need_the_access_token_and_the_developer_token(emu: GoogleAdsEmulator) -> None:
    with client(emu) as http:
        assert http.post(CUSTOMER + ":uploadClickConversions", json={}, headers={"Authorization": "Bearer x"}
                         ).status_code == 401
        refused = http.post(CUSTOMER + ":uploadClickConversions", json={}, headers={"developer-token": "x"})
    assert refused.status_code == 403 and error_code(refused) == {"authorizationError": "DEVELOPER_TOKEN_NOT_APPROVED"}


def test_uploads_need_partial_failure_and_known_fields(emu: GoogleAdsEmulator) -> None:
    with client(emu) as http:
        assert http.post(CUSTOMER + ":uploadClickConversions", json={"conversions": [conversion()]}
                         ).status_code == 400
        unknown = http.post(CUSTOMER + ":uploadClickConversions",
                            json={"conversions": [conversion(gclidd="x")], "partialFailure": True})
        assert unknown.status_code == 400 and 'Unknown name "gclidd"' in unknown.json()["error"]["message"]
        answer = http.post(CUSTOMER + ":uploadClickConversions", json={
            "conversions": [conversion(), conversion(gclid="G2", conversionDateTime="2026-01-02T03:04:05Z")],
            "partialFailure": True}).json()
    assert answer["results"][1] == {} and answer["results"][0]["gclid"] == "G1"
    [error] = answer["partialFailureError"]["details"][0]["errors"]
    assert error["location"]["fieldPathElements"][0] == {"fieldName": "conversions", "index": 1}


def test_a_job_takes_operations_only_while_pending_and_applies_them_when_done(emu: GoogleAdsEmulator) -> None:
    with client(emu) as http:
        job = http.post(CUSTOMER + "/offlineUserDataJobs:create", json={"job": {
            "type": "CUSTOMER_MATCH_USER_LIST",
            "customerMatchUserListMetadata": {"userList": "customers/1234567890/userLists/5550001"}}}
        ).json()["resourceName"]
        added = http.post(f"/v25/{job}:addOperations", json={"enablePartialFailure": True, "operations": [
            {"create": {"userIdentifiers": [{"hashedEmail": HASH}]}},
            {"create": {"userIdentifiers": [{"hashedEmail": "a@b.co"}]}}]}).json()
        assert added["partialFailureError"]["details"][0]["errors"][0]["errorCode"] == {
            "offlineUserDataJobError": "INVALID_SHA256_FORMAT"}
        operation = http.post(f"/v25/{job}:run", json={}).json()["name"]
        assert http.post(f"/v25/{job}:addOperations", json={"operations": [
            {"create": {"userIdentifiers": [{"hashedEmail": HASH}]}}]}).status_code == 400
        assert http.get(f"/v25/{operation}").json()["done"] is False
        assert emu.member_emails("5550001") == set()
        assert http.get(f"/v25/{operation}").json()["done"] is True
    assert emu.member_emails("5550001") == {HASH}


def test_the_daily_quota_answers_with_a_long_retry_delay(emu: GoogleAdsEmulator) -> None:
    with client(emu) as http:
        emu.daily_limit = emu.daily_used
        answer = http.post(CUSTOMER + ":uploadClickConversions", json={})
    details = answer.json()["error"]["details"][0]["errors"][0]["details"]["quotaErrorDetails"]
    assert answer.status_code == 429 and details["retryDelay"] == "86400s"
