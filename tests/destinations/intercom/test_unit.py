"""The ``intercom`` destination: formatting, config, finding contacts, conflicts, throttling.

Most cases run against ``IntercomEmulator`` over real HTTP; the 429 header arithmetic uses
``httpx.MockTransport``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, MemoryIdStore, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.intercom.destination import IntercomDestination
from dbt_activate.destinations.intercom.payload import FormatError, build_body, clear_body
from dbt_activate.errors import ConfigError, RetryableDestinationError
from dbt_activate.testing.intercom.emulator import IntercomEmulator
from tests.support.delivery import write_batches

TOKEN = "ic-unit-token-0123456789"


def target(mode: Mode = Mode.UPSERT, identity: str = "external_id",
           fields: tuple[str, ...] = ("external_id", "email", "name", "plan")) -> SyncTarget:
    return SyncTarget("s", "contacts", mode, tuple(FieldSpec(f, f) for f in fields), (identity,))


def run(dest: IntercomDestination, tgt: SyncTarget, operation: Operation, records: list[Record]) -> BatchResult:
    return write_batches(dest, tgt, Batch(operation, records))[0]


def contact(i: int, **changes: Any) -> Record:
    return Record(str(i), {"external_id": f"E{i}", "email": f"u{i}@example.com", "name": f"User {i}",
                           "plan": "pro", **changes})


@pytest.fixture
def emu() -> Iterator[IntercomEmulator]:
    with IntercomEmulator(token=TOKEN, attributes={"plan": "string"}) as emulator:
        yield emulator
    assert emulator.errors == []


def build(emu: IntercomEmulator, store: MemoryIdStore | None = None, **extra: Any) -> IntercomDestination:
    dest = IntercomDestination("ic", {"type": "intercom", "access_token": TOKEN, "base_url": emu.base_url, **extra})
    dest.id_store = store
    return dest


def searches(emu: IntercomEmulator) -> int:
    return emu.counters.by_path.get("/contacts/search", 0)


# -- formatting ----------------------------------------------------------------------------------


def test_bodies_put_standard_attributes_on_top_and_dates_in_unix_seconds() -> None:
    body = build_body({"external_id": 42, "email": None, "name": None, "signed_up_at": dt.date(2024, 5, 1),
                       "seen": dt.datetime(2024, 5, 1, 12, 0), "score": Decimal("2.50"), "n": Decimal("3")},
                      "external_id", "user")
    assert body == {"role": "user", "external_id": "42", "name": None, "signed_up_at": 1714521600,
                    "custom_attributes": {"seen": 1714564800, "score": 2.5, "n": 3}}


def test_values_intercom_cannot_hold_reject_the_record() -> None:
    with pytest.raises(FormatError, match="'tags'"):
        build_body({"external_id": "e", "tags": ["a", "b"]}, "external_id", "user")
    with pytest.raises(FormatError, match="NaN"):
        build_body({"external_id": "e", "score": float("inf")}, "external_id", "user")
    with pytest.raises(FormatError, match="empty"):
        build_body({"external_id": " "}, "external_id", "user")


def test_clear_nulls_mapped_attributes_but_keeps_the_identifying_ones() -> None:
    assert clear_body(("external_id", "email", "name", "plan"), "external_id") == {
        "name": None, "custom_attributes": {"plan": None}}


# -- config --------------------------------------------------------------------------------------


def test_region_picks_the_regional_host_and_bad_choices_are_config_errors() -> None:
    base = {"type": "intercom", "access_token": TOKEN}
    assert IntercomDestination("ic", {**base, "region": "eu"}).base_url == "https://api.eu.intercom.io"
    assert IntercomDestination("ic", base).base_url == "https://api.intercom.io"
    for key, value in (("region", "mars"), ("role", "admin"), ("delete_action", "purge")):
        with pytest.raises(ConfigError, match=key):
            IntercomDestination("ic", {**base, key: value})
    leads = IntercomDestination("ic", {**base, "role": "lead"})
    with pytest.raises(ConfigError, match="leads have no external_id"):
        leads.check_target(target())
    leads.check_target(target(identity="email"))
    with pytest.raises(ConfigError, match="external_id or email"):
        leads.check_target(target(identity="name"))


# -- against the emulator ------------------------------------------------------------------------


def test_known_ids_are_not_searched_again_and_the_version_header_is_sent(emu: IntercomEmulator) -> None:
    store = MemoryIdStore()
    assert run(build(emu, store, intercom_version="2.11"), target(), Operation.UPSERT,
               [contact(1), contact(2)]) == BatchResult()
    assert searches(emu) == 2 and len(store.ids) == 2
    emu.reset_counters()
    assert run(build(emu, store), target(), Operation.UPSERT, [contact(1, name="Renamed")]) == BatchResult()
    assert searches(emu) == 0
    assert sorted(c["name"] for c in emu.records()) == ["Renamed", "User 2"]  # order: emulator detail
    assert set(emu.versions) == {"2.11", "2.14"}


def test_a_stale_stored_id_is_searched_again_and_the_contact_recreated(emu: IntercomEmulator) -> None:
    store = MemoryIdStore({"contacts|user|external_id|E1": "deadbeef"})
    assert run(build(emu, store), target(), Operation.UPSERT, [contact(1)]) == BatchResult()
    [stored] = emu.records()
    assert store.ids == {"contacts|user|external_id|E1": stored["id"]}


def test_a_conflict_on_create_updates_the_contact_intercom_names(emu: IntercomEmulator) -> None:
    emu.search_lag = True  # the contact exists but is not searchable yet
    store = MemoryIdStore()
    assert run(build(emu), target(), Operation.UPSERT, [contact(1)]) == BatchResult()
    assert run(build(emu, store), target(), Operation.UPSERT, [contact(1, name="Again")]) == BatchResult()
    [stored] = emu.records()
    assert stored["name"] == "Again"
    assert store.ids == {"contacts|user|external_id|E1": stored["id"]}


def test_two_contacts_with_one_email_reject_the_row(emu: IntercomEmulator) -> None:
    emu.add_records([{"role": "user", "external_id": "a", "email": "dup@example.com"},
                     {"role": "user", "external_id": "b", "email": "other@example.com"}])
    emu.store.contacts[next(iter(emu.store.contacts))]["email"] = "DUP@example.com"
    emu.store.contacts[list(emu.store.contacts)[1]]["email"] = "dup@example.com"
    result = run(build(emu), target(identity="email", fields=("email", "name")), Operation.UPSERT,
                 [Record("1", {"email": "dup@example.com", "name": "X"})])
    assert "2 Intercom contacts (user) match email='dup@example.com'" in result.rejected["1"]


def test_archive_mirror_archives_and_a_returning_row_unarchives(emu: IntercomEmulator) -> None:
    store = MemoryIdStore()
    dest_config = {"delete_action": "archive"}
    assert run(build(emu, store, **dest_config), target(Mode.MIRROR), Operation.UPSERT, [contact(1)]) == BatchResult()
    assert run(build(emu, store, **dest_config), target(Mode.MIRROR), Operation.DELETE,
               [Record("1", {"external_id": "E1"})]) == BatchResult()
    assert emu.records() == [] and len(emu.records(archived=True)) == 1
    assert run(build(emu, store, **dest_config), target(Mode.MIRROR), Operation.UPSERT,
               [contact(1, name="Back")]) == BatchResult()
    [stored] = emu.records()
    assert (stored["name"], stored["archived"]) == ("Back", False)


def test_an_unknown_custom_attribute_rejects_the_record_with_intercoms_message(emu: IntercomEmulator) -> None:
    result = run(build(emu), target(fields=("external_id", "tier")), Operation.UPSERT,
                 [Record("1", {"external_id": "E1", "tier": "gold"})])
    assert result.rejected == {"1": "Intercom answered HTTP 400: parameter_invalid: Custom attribute 'tier' "
                                    "does not exist"}


def test_a_throttled_request_waits_until_x_ratelimit_reset() -> None:
    reset = int(time.time()) + 30

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"},
                              json={"type": "error.list", "errors": [{"code": "rate_limit_exceeded",
                                                                      "message": "Too many requests"}]})

    dest = IntercomDestination("ic", {"type": "intercom", "access_token": TOKEN},
                               transport=httpx.MockTransport(handler))
    with pytest.raises(RetryableDestinationError, match="rate_limit_exceeded") as caught:
        run(dest, target(), Operation.UPSERT, [contact(1)])
    assert caught.value.retry_after is not None and 25 <= caught.value.retry_after <= 30


@pytest.mark.parametrize(("identity", "searched", "stored", "updated"), [
    # external_id "ABC" is another contact than "abc": create, never overwrite it.
    ("external_id", "abc", "ABC", False),
    ("external_id", "abc", "abc", True),
    # Intercom compares emails without case: the hit is the same contact.
    ("email", "u1@example.com", "U1@Example.com", True),
])
def test_search_hits_must_match_exactly_except_for_the_case_of_emails(identity: str, searched: str, stored: str,
                                                                      updated: bool) -> None:
    puts: list[str] = []
    posts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/contacts/search":
            return httpx.Response(200, json={"type": "list", "data": [{"id": "aa1", identity: stored, "role": "user"}]})
        (puts if request.method == "PUT" else posts).append(request.url.path)
        return httpx.Response(200, json={"id": "aa1" if request.method == "PUT" else "bb2"})

    dest = IntercomDestination("ic", {"type": "intercom", "access_token": TOKEN, "base_url": "http://ic.test"},
                               transport=httpx.MockTransport(handler))
    tgt = SyncTarget("s", "contacts", Mode.UPSERT, (FieldSpec(identity, identity),), (identity,))
    assert run(dest, tgt, Operation.UPSERT, [Record("k", {identity: searched})]) == BatchResult()
    assert (puts, posts) == ((["/contacts/aa1"], []) if updated else ([], ["/contacts"]))
