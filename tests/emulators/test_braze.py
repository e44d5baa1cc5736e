"""BrazeEmulator's ``/users/delete`` contract, over real HTTP (braze-docs ``post_user_delete.md``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dbt_activate.testing.braze.emulator import BrazeEmulator

KEY = "braze-emulator-key-0f1e2d3c4b5a"


@pytest.fixture
def emu() -> Iterator[BrazeEmulator]:
    with BrazeEmulator(token=KEY) as emulator:
        yield emulator
    assert emulator.errors == []


def delete(emu: BrazeEmulator, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(emu.base_url + "/users/delete", json=body, headers={"Authorization": f"Bearer {KEY}"})


@pytest.mark.parametrize("body", [
    {"email_addresses": ["ada@example.com"]},
    {"phone_numbers": ["+15551234567"]},
    {"email_addresses": [{"email": "ada@example.com"}]},
    {"email_addresses": [{"email": "ada@example.com", "prioritization": ["identified", "unidentified"]}]},
    {"email_addresses": [{"email": "ada@example.com", "prioritization": ["newest"]}]},
])
def test_an_address_without_a_valid_prioritization_is_a_fatal_400(emu: BrazeEmulator, body: dict[str, Any]) -> None:
    emu.add_user(None, email="ada@example.com", phone="+15551234567")
    response = delete(emu, body)
    assert response.status_code == 400
    assert response.json()["message"] == "Bad Request" and response.json()["errors"]
    assert len(emu.records()) == 1  # a fatal error processes nothing


def test_prioritization_narrows_in_order_and_several_left_delete_nobody(emu: BrazeEmulator) -> None:
    identified = emu.add_user("u1", email="ada@example.com")
    anonymous = [emu.add_user(None, email="ada@example.com") for _ in range(2)]
    entry = {"email": "ada@example.com", "prioritization": ["unidentified"]}
    assert delete(emu, {"email_addresses": [entry]}).json() == {"deleted": 0, "message": "success"}
    entry["prioritization"] = ["identified"]
    assert delete(emu, {"email_addresses": [entry]}).json()["deleted"] == 1
    assert {u["braze_id"] for u in emu.records()} == set(anonymous)
    entry["prioritization"] = ["identified", "most_recently_updated"]  # none identified left: the latest
    assert delete(emu, {"email_addresses": [entry]}).json()["deleted"] == 1
    assert [u["braze_id"] for u in emu.records()] == [anonymous[0]]
    assert identified not in {u["braze_id"] for u in emu.records()}
