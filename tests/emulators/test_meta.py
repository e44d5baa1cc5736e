"""Meta emulator over real HTTP: the Graph API behaviour it follows, independent of our client."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing import EMULATORS, MetaEmulator

EVENTS, USERS = "/v25.0/1234567890/events", "/v25.0/2345678901/users"
HASH = hashlib.sha256(b"a@b.co").hexdigest()


@pytest.fixture
def emu() -> Iterator[MetaEmulator]:
    with MetaEmulator(token="tok-123456") as emulator:
        yield emulator
    assert emulator.errors == []


def client(emu: MetaEmulator) -> httpx.Client:
    return httpx.Client(base_url=emu.base_url, timeout=10, headers={"Authorization": "Bearer tok-123456"})


def event(age: float = 60, **extra: Any) -> dict[str, Any]:
    return {"event_name": "Purchase", "event_time": int(time.time() - age), "action_source": "website",
            "event_id": "e1", "user_data": {"em": [HASH]}, **extra}


def test_registered_for_the_command_line() -> None:
    assert EMULATORS["meta"] is MetaEmulator


def test_one_event_older_than_seven_days_refuses_the_whole_request(emu: MetaEmulator) -> None:
    with client(emu) as http:
        answer = http.post(EVENTS, json={"data": [event(), event(age=8 * 86400, event_id="e2")]})
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["code"] == 100 and error["error_user_title"] == "Event Timestamp Too Old"
    assert emu.received() == []


def test_unhashed_user_data_is_refused(emu: MetaEmulator) -> None:
    with client(emu) as http:
        assert http.post(EVENTS, json={"data": [event(user_data={"em": ["a@b.co"]})]}).status_code == 400


def test_events_are_deduplicated_by_name_and_id(emu: MetaEmulator) -> None:
    with client(emu) as http:
        for _ in range(2):
            assert http.post(EVENTS, json={"data": [event()]}).json()["events_received"] == 1
    assert len(emu.received()) == 1


def test_a_token_in_the_url_is_counted(emu: MetaEmulator) -> None:
    httpx.post(emu.base_url + EVENTS + "?access_token=tok-123456", json={"data": [event()]})
    assert emu.tokens_in_url == 1
    emu.tokens_in_url = 0


def test_audience_users_are_added_and_removed_at_most_10000_a_request(emu: MetaEmulator) -> None:
    with client(emu) as http:
        added = http.post(USERS, json={"payload": {"schema": ["EMAIL", "COUNTRY"], "data": [[HASH, ""], ["x", ""]]}})
        assert added.json()["num_received"] == 2 and added.json()["num_invalid_entries"] == 1
        assert emu.member_emails() == {HASH}
        http.request("DELETE", USERS, content=json.dumps({"payload": {"schema": ["EMAIL"], "data": [[HASH]]}}))
        assert emu.member_emails() == set()
        too_many = http.post(USERS, json={"payload": {"schema": "EMAIL", "data": [HASH] * 10_001}})
    assert too_many.status_code == 400


def test_throttling_answers_code_17_with_the_usage_header(emu: MetaEmulator) -> None:
    emu.rate_limit = (1, 60)
    with client(emu) as http:
        http.post(EVENTS, json={"data": [event()]})
        answer = http.post(EVENTS, json={"data": [event(event_id="e2")]})
    usage = json.loads(answer.headers["X-Business-Use-Case-Usage"])
    assert answer.json()["error"]["code"] == 17
    assert next(iter(usage.values()))[0]["estimated_time_to_regain_access"] >= 1
