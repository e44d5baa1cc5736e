"""SlackEmulator follows the incoming-webhook contract: plain-text answers, error strings, 429."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from dbt_activate.testing.slack.emulator import SlackEmulator


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator(token="hook-token-123456") as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.mark.parametrize(("body", "content_type", "status", "answer"), [
    (json.dumps({"text": "hello"}), "application/json", 200, "ok"),
    ("payload=" + json.dumps({"text": "form"}), "application/x-www-form-urlencoded", 200, "ok"),
    (json.dumps({"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]}),
     "application/json", 200, "ok"),
    ("not json", "application/json", 400, "invalid_payload"),
    (json.dumps(["a list"]), "application/json", 400, "invalid_payload"),
    (json.dumps({"text": "  "}), "application/json", 400, "no_text"),
    (json.dumps({"text": "x", "blocks": [{"no": "type"}]}), "application/json", 400, "invalid_blocks"),
    (json.dumps({"text": "x", "blocks": [{"type": "divider"}] * 51}), "application/json", 400, "invalid_blocks"),
])
def test_payloads_and_slacks_answers(emu: SlackEmulator, body: str, content_type: str, status: int,
                                     answer: str) -> None:
    response = httpx.post(emu.url, content=body, headers={"Content-Type": content_type})
    assert (response.status_code, response.text) == (status, answer)
    assert len(emu.messages) == (1 if status == 200 else 0)


def test_unknown_revoked_and_archived_webhooks(emu: SlackEmulator) -> None:
    assert emu.url.endswith("/hook-token-123456")
    other = emu.webhook()
    assert httpx.post(emu.base_url + "/services/T1/B1/nope", json={"text": "x"}).text == "no_service"
    emu.archive(other)
    archived = httpx.post(other, json={"text": "x"})
    assert (archived.status_code, archived.text) == (410, "channel_is_archived")
    emu.revoke(emu.url)
    assert httpx.post(emu.url, json={"text": "x"}).status_code == 404


def test_long_text_is_truncated_and_one_message_per_second_is_enforced(emu: SlackEmulator) -> None:
    emu.rate_limit = True
    assert httpx.post(emu.url, json={"text": "y" * 45_000}).text == "ok"
    throttled = httpx.post(emu.url, json={"text": "again"})
    assert (throttled.status_code, throttled.text) == (429, "rate_limited")
    assert throttled.headers["Retry-After"] == "1"
    assert emu.texts() == ["y" * 40_000]
