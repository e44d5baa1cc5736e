"""PipedriveDestination against PipedriveEmulator over real HTTP: what the v2 spec refuses, the daily
budget under both of Pipedrive's limit models, and where the API token travels."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, MemoryIdStore, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery import RetryPolicy, deliver
from dbt_activate.destinations.pipedrive.destination import PipedriveDestination
from dbt_activate.errors import QuotaExhaustedError
from dbt_activate.testing import PipedriveEmulator, PipedriveField

TOKEN = "pd-emulated-token-5e1f0c9d8b7a"
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0, jitter=False)


def _target(obj: str, mode: Mode, fields: Sequence[str], identity: str) -> SyncTarget:
    return SyncTarget(f"s__{obj}", obj, mode, tuple(FieldSpec(f, f) for f in fields), (identity,), run_id="r")


def _run(emu: PipedriveEmulator, target: SyncTarget, *batches: Batch) -> list[BatchResult]:
    destination = PipedriveDestination("pd", {"type": "pipedrive", "api_token": TOKEN, "base_url": emu.base_url})
    destination.id_store = MemoryIdStore()

    async def go() -> list[BatchResult]:
        await destination.open(target)
        try:
            return [await deliver(destination, target, b, limiter=None, policy=FAST) for b in batches]
        finally:
            await destination.close()

    return asyncio.run(go())


DEAL_FIELDS = ("title", "value", "currency", "expected_close_date", "owner_id", "org_id", "visible_to",
               "probability", "Contract")


def test_clear_and_nulls_on_deals_are_accepted_and_empty_only_what_pipedrive_lets_be_empty() -> None:
    with PipedriveEmulator(token=TOKEN, custom_fields={"deals": [PipedriveField("Contract")]}) as emu:
        target = _target("deals", Mode.UPSERT, DEAL_FIELDS, "title")
        deal = {"title": "Renewal", "value": 1200, "currency": "EUR", "expected_close_date": "2026-03-01",
                "owner_id": 7, "org_id": 9, "visible_to": 3, "probability": 40, "Contract": "C-1"}
        nulls = {**{f: None for f in DEAL_FIELDS}, "title": "Renewal"}
        results = _run(emu, target, Batch(Operation.UPSERT, [Record("1", deal)]),
                       Batch(Operation.UPSERT, [Record("1", nulls)]),  # a sync with nulls: clear
                       Batch(Operation.UPSERT, [Record("1", deal)]),
                       Batch(Operation.CLEAR, [Record("1", {"title": "Renewal"})]))
        assert results == [BatchResult()] * 4  # Pipedrive refuses null for value, currency, owner_id... (400)
        [stored] = emu.records("deals")
        assert (stored["probability"], stored["custom_fields"]) == (None, {})  # emptied
        kept = {k: stored[k] for k in ("value", "currency", "expected_close_date", "owner_id", "org_id", "visible_to")}
        assert kept == {"value": 1200, "currency": "EUR", "expected_close_date": "2026-03-01", "owner_id": 7,
                        "org_id": 9, "visible_to": 3}  # no empty value exists for these: Pipedrive keeps them
        assert emu.errors == []


def test_clear_on_persons_keeps_owner_org_and_visibility() -> None:
    with PipedriveEmulator(token=TOKEN) as emu:
        fields = ("email", "name", "owner_id", "org_id", "visible_to", "phone", "label_ids")
        target = _target("persons", Mode.MIRROR, fields, "email")
        person = {"email": "ada@example.com", "name": "Ada", "owner_id": 2, "org_id": 5, "visible_to": 1,
                  "phone": "+44 1", "label_ids": [4]}
        results = _run(emu, target, Batch(Operation.UPSERT, [Record("1", person)]),
                       Batch(Operation.CLEAR, [Record("1", {"email": "ada@example.com"})]))
        assert results == [BatchResult()] * 2
        [stored] = emu.records("persons")
        assert (stored["phones"], stored["label_ids"]) == ([], [])
        assert (stored["name"], stored["owner_id"], stored["org_id"], stored["visible_to"]) == ("Ada", 2, 5, 1)


def test_a_spent_token_budget_is_read_from_the_token_header_and_stops_the_sync() -> None:
    # The emulator answers the daily 429 with the documented generic body: only the header tells.
    with PipedriveEmulator(token=TOKEN, daily_limit=20 + 5) as emu:
        target = _target("persons", Mode.UPSERT, ("email", "name"), "email")
        records = [Record(str(i), {"email": f"u{i}@example.com", "name": f"U{i}"}) for i in range(3)]
        with pytest.raises(QuotaExhaustedError, match="daily API token budget"):
            _run(emu, target, Batch(Operation.UPSERT, records))
        assert emu.counters.throttled <= len(records)  # none retried: the budget resets tomorrow


def test_a_burst_429_is_retried_whatever_the_legacy_daily_requests_left() -> None:
    # Legacy limits: x-daily-requests-left counts POST/PUT requests (2 left here), not the 20 tokens a
    # search costs, so the burst 429 of the search window is a pause, not a spent budget.
    with PipedriveEmulator(token=TOKEN, limit_model="legacy", daily_limit=4, search_rate_limit=(1, 0.5)) as emu:
        target = _target("persons", Mode.UPSERT, ("email", "name"), "email")
        records = [Record(str(i), {"email": f"u{i}@example.com", "name": f"U{i}"}) for i in range(2)]
        assert _run(emu, target, Batch(Operation.UPSERT, records)) == [BatchResult()]
        assert emu.counters.throttled >= 1
        assert sorted(p["name"] for p in emu.records("persons")) == ["U0", "U1"]


def test_a_spent_legacy_daily_limit_stops_the_writes() -> None:
    with PipedriveEmulator(token=TOKEN, limit_model="legacy", daily_limit=1) as emu:
        target = _target("persons", Mode.APPEND, ("email", "name"), "email")
        records = [Record(str(i), {"email": f"u{i}@example.com", "name": f"U{i}"}) for i in range(2)]
        with pytest.raises(QuotaExhaustedError):
            _run(emu, target, Batch(Operation.APPEND, records[:1]), Batch(Operation.APPEND, records[1:]))
        assert len(emu.records("persons")) == 1


def test_field_definitions_are_read_with_the_token_in_the_header_only() -> None:
    custom: dict[str, Any] = {"persons": [PipedriveField("Tier", "enum", ("Gold",))]}
    with PipedriveEmulator(token=TOKEN, custom_fields=custom) as emu:
        target = _target("persons", Mode.UPSERT, ("email", "name", "Tier"), "email")
        record = Record("1", {"email": "ada@example.com", "name": "Ada", "Tier": "Gold"})
        assert _run(emu, target, Batch(Operation.UPSERT, [record])) == [BatchResult()]
        assert emu.counters.requests >= 3  # personFields, search, create
        assert emu.tokens_in_urls == 0
