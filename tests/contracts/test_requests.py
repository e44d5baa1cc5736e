"""Every request each connector builds, and every emulator answer it parses, against the vendor's spec.

Each destination type with a published spec in ``shared/contracts/`` is driven through the
conformance harness's emulator (in process, ``capture.EmulatorTransport``) over a scenario of every
operation it supports: upsert (create, then update), update (a known and an unknown record), create
(a new and an existing one), append, clear, delete (a known and an unknown one), and an upsert of NULLs
under ``nulls: clear``. Every captured exchange is checked by the vendor's contract (``specs.py``); one
finding fails the test, naming the request and what the spec says.

Slack answers an incoming webhook with a plain `ok`, which no Slack spec describes, so only its requests
are checked. Vendors without a copyable spec (HubSpot, Zendesk, Mailchimp, Customer.io, Braze, Salesforce, Meta)
are covered by their emulators' docstrings, which write the contract down from the vendor's docs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dbt_activate.core.types import Batch, FieldSpec, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.destinations.base import Destination
from dbt_activate.testing import PipedriveEmulator, PipedriveField
from tests.conformance.base import SECRET, Harness
from tests.conformance.harness_google_sheets import GoogleSheetsHarness
from tests.conformance.harness_intercom import IntercomHarness
from tests.conformance.harness_klaviyo import KlaviyoHarness
from tests.conformance.harness_slack import SlackDigestHarness, SlackRowHarness
from tests.conformance.harnesses import PipedriveHarness
from tests.contracts import specs
from tests.contracts.capture import EmulatorTransport, Exchange

if specs.contracts_dir() is None:
    if os.environ.get("CI"):
        raise RuntimeError("shared/contracts is missing: CI must validate requests against the vendors' specs")
    pytest.skip("shared/contracts not found beside the checkout (set DBT_ACTIVATE_CONTRACTS)",
                allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type")  # openapi-core on Basic auth schemes


class PipedriveDealsHarness(PipedriveHarness):
    """Deals with the properties the v2 spec does not make nullable, a nullable one and a custom field."""

    name = "pipedrive_deals"
    object = "deals"
    identity = "title"
    fields = ("title", "value", "currency", "expected_close_date", "owner_id", "org_id", "visible_to",
              "probability", "Contract")
    mutable_field = "Contract"

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with PipedriveEmulator(token=SECRET, custom_fields={"deals": [PipedriveField("Contract")]}) as self.emu:
            yield
        assert self.emu.errors == []

    def values(self, i: int) -> dict[str, Any]:
        return {"title": f"Deal {i}", "value": 100 * i, "currency": "EUR", "owner_id": 1, "org_id": 2,
                "expected_close_date": dt.date(2026, 1, 1 + i), "visible_to": 3, "probability": 50,
                "Contract": f"C-{i}"}


class KlaviyoEventsHarness(KlaviyoHarness):
    """Append: events of a metric (``event-bulk-create-jobs``), with the event's own attributes."""

    name = "klaviyo_events"
    object = "Placed Order"
    identity = "unique_id"
    fields = ("unique_id", "email", "time", "value", "sku")

    @property
    def operations(self) -> frozenset[Operation]:
        return frozenset({Operation.APPEND})

    def values(self, i: int) -> dict[str, Any]:
        return {"unique_id": f"order-{i}", "email": f"user{i}@example.com", "value": i * 9.5, "sku": f"SKU-{i}",
                "time": dt.datetime(2026, 1, 1 + i, 12, 30, tzinfo=dt.timezone.utc)}


CONTRACTS: dict[str, Callable[[], specs.Contract]] = {
    "pipedrive": specs.PipedriveContract, "pipedrive_deals": specs.PipedriveContract, "klaviyo": specs.klaviyo,
    "klaviyo_events": specs.klaviyo,
    "intercom": specs.intercom, "slack_row": specs.slack_webhook, "slack_digest": specs.slack_webhook,
    "google_sheets": specs.google_sheets,
}
HARNESSES: list[type[Harness]] = [PipedriveHarness, PipedriveDealsHarness, KlaviyoHarness, KlaviyoEventsHarness,
                                  IntercomHarness, SlackRowHarness, SlackDigestHarness, GoogleSheetsHarness]
MODE_OF = {Operation.UPSERT: Mode.UPSERT, Operation.UPDATE: Mode.UPDATE, Operation.CREATE: Mode.CREATE,
           Operation.APPEND: Mode.APPEND, Operation.DELETE: Mode.MIRROR, Operation.CLEAR: Mode.UPSERT}


def scenario(harness: Harness) -> Iterator[tuple[str, Operation, list[Record], str]]:
    """(step name, operation, records, nulls) for every operation the destination supports, in order."""
    ops, record, changed = harness.operations, harness.record, harness.record
    if Operation.UPSERT in ops:
        yield "upsert: create", Operation.UPSERT, [record(1), record(2)], ""
        yield "upsert: update", Operation.UPSERT, [changed(2, **{harness.mutable_field: "Changed 2"}), record(3)], ""
    if Operation.UPDATE in ops:
        yield "update", Operation.UPDATE, [changed(1, **{harness.mutable_field: "Changed 1"}), record(9)], ""
    if Operation.CREATE in ops:
        yield "create", Operation.CREATE, [record(4), record(1)], ""
    if Operation.APPEND in ops:
        yield "append", Operation.APPEND, [record(5), record(6)], ""
    if Operation.CLEAR in ops:
        yield "clear", Operation.CLEAR, [harness.identity_record(3)], ""
    if Operation.DELETE in ops:
        yield "delete", Operation.DELETE, [harness.identity_record(2), harness.identity_record(8)], ""
    if harness.destination.null_handling is not Nulls.NOT_APPLICABLE and Operation.UPSERT in ops:
        nulls = {f: None for f in harness.fields if f != harness.identity}
        yield "nulls: clear", Operation.UPSERT, [record(1, **nulls)], "clear"


def drive(harness: Harness) -> list[Exchange]:
    """Run the scenario through the real connector; every exchange, tagged with its step."""
    exchanges: list[Exchange] = []
    for step, operation, records, nulls in scenario(harness):
        transport = EmulatorTransport(harness.emu, exchanges, step)  # type: ignore[attr-defined]
        destination = harness.destination(harness.name, harness.config(), transport=transport)  # type: ignore[call-arg]
        target = SyncTarget("contracts__sync", harness.object, MODE_OF[operation],
                            tuple(FieldSpec(f, f) for f in harness.fields), (harness.identity,),
                            run_id="contracts-run", nulls=nulls)
        asyncio.run(write(destination, target, Batch(operation, records)))
    return exchanges


async def write(destination: Destination, target: SyncTarget, batch: Batch) -> None:
    await destination.open(target)
    try:
        await destination.write(target, batch)
    finally:
        await destination.close()


@pytest.mark.parametrize("harness_type", [pytest.param(h, id=h.name) for h in HARNESSES])
def test_every_request_and_parsed_answer_follows_the_vendors_spec(harness_type: type[Harness]) -> None:
    harness = harness_type()
    contract = CONTRACTS[harness.name]()
    with harness.serve():
        exchanges = drive(harness)
    steps = {name for name, *_ in scenario(harness)}
    assert steps <= {e.operation for e in exchanges}, "every step must reach the vendor"
    findings = [finding for exchange in exchanges for finding in contract.violations(exchange)]
    assert findings == []


def test_pipedrive_clear_of_a_deal_sends_only_what_the_v2_spec_lets_be_null() -> None:
    harness = PipedriveDealsHarness()
    with harness.serve():
        exchanges = drive(harness)
    [cleared] = [e.json() for e in exchanges if e.operation == "clear" and e.method == "PATCH"]
    assert cleared == {"probability": None, "custom_fields": {harness.emu.field_key("deals", "Contract"): None}}


def test_intercom_companies_and_contact_attachments_follow_the_spec() -> None:
    """``references`` on Intercom: POST /companies, attach (POST /contacts/{id}/companies), list, detach and
    company deletion, each request and answer checked against Intercom's OpenAPI description."""
    from dbt_activate.destinations.intercom.destination import IntercomDestination
    from dbt_activate.testing.intercom.emulator import IntercomEmulator

    companies = SyncTarget("fleets", "companies", Mode.MIRROR, (FieldSpec("company_id", "company_id"),
                           FieldSpec("name", "name"), FieldSpec("fleet_size", "fleet_size")), ("company_id",))
    contacts = SyncTarget("drivers", "contacts", Mode.UPSERT, (FieldSpec("external_id", "external_id"),
                          FieldSpec("email", "email"), FieldSpec("name", "name"), FieldSpec("company", "company")),
                          ("external_id",), references=("company",))
    exchanges: list[Exchange] = []
    with IntercomEmulator(token=SECRET) as emu:
        def send(step: str, target: SyncTarget, operation: Operation, records: list[Record]) -> None:
            destination = IntercomDestination("intercom", {"type": "intercom", "access_token": SECRET,
                                                           "base_url": emu.base_url},
                                              transport=EmulatorTransport(emu, exchanges, step))
            asyncio.run(write(destination, target, Batch(operation, records)))

        send("companies", companies, Operation.UPSERT,
             [Record(str(i), {"company_id": f"F{i}", "name": f"Fleet {i}", "fleet_size": str(i)}) for i in (1, 2)])
        ids = {c["company_id"]: c["id"] for c in emu.companies.companies.values()}

        def driver(company: str | None) -> Record:
            return Record("1", {"external_id": "D1", "email": "d1@example.com", "name": "A", "company": company})

        send("attach", contacts, Operation.UPSERT, [driver(ids["F1"])])
        send("move", contacts, Operation.UPSERT, [driver(ids["F2"])])
        send("detach", contacts, Operation.UPSERT, [driver(None)])
        send("delete", companies, Operation.DELETE, [Record("1", {"company_id": "F1"})])
        assert emu.errors == []
    calls = {(e.operation, e.method, "/".join("{id}" if len(p) == 24 else p for p in e.path.split("/")))
             for e in exchanges}
    assert {("attach", "POST", "/contacts/{id}/companies"), ("move", "DELETE", "/contacts/{id}/companies/{id}"),
            ("detach", "DELETE", "/contacts/{id}/companies/{id}"), ("companies", "POST", "/companies"),
            ("delete", "DELETE", "/companies/{id}")} <= calls, calls
    contract = specs.intercom()
    assert [finding for exchange in exchanges for finding in contract.violations(exchange)] == []
