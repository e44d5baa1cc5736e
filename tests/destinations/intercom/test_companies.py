"""Intercom companies and contacts attached to them (``references`` ``as: company``), against the
emulator over real HTTP: ids reported, attach, move (detach the old one), NULL detaches, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dbt_activate.core.types import FieldSpec, MemoryIdStore, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.intercom.destination import IntercomDestination
from dbt_activate.errors import ConfigError
from dbt_activate.testing.intercom.emulator import IntercomEmulator
from tests.destinations.intercom.test_unit import TOKEN, build, run

COMPANIES = SyncTarget("fleets", "companies", Mode.MIRROR,
                       tuple(FieldSpec(f, f) for f in ("company_id", "name", "fleet_size")), ("company_id",))
CONTACTS = SyncTarget("drivers", "contacts", Mode.UPSERT,
                      tuple(FieldSpec(f, f) for f in ("external_id", "name", "company")), ("external_id",),
                      references=("company",))


@pytest.fixture
def emu() -> Iterator[IntercomEmulator]:
    with IntercomEmulator(token=TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


def _company(key: str, **values: Any) -> Record:
    return Record(key, {"company_id": f"F{key}", "name": f"Fleet {key}", **values})


def _driver(key: str, company: str | None) -> Record:
    return Record(key, {"external_id": f"D{key}", "name": f"Driver {key}", "company": company})


def _attached(emu: IntercomEmulator) -> dict[str, set[str]]:
    """Each contact's external_id -> the company_ids it is attached to."""
    with emu.lock:
        by_id = {c["id"]: c["company_id"] for c in emu.companies.companies.values()}
        return {c["external_id"]: {by_id[i] for i in emu.companies.of(c["id"])} for c in emu.store.contacts.values()}


def test_companies_report_their_ids_and_contacts_attach_move_and_detach(emu: IntercomEmulator) -> None:
    written = run(build(emu), COMPANIES, Operation.UPSERT, [_company("1", fleet_size=12), _company("2")])
    companies = {c["company_id"]: c for c in emu.companies.companies.values()}
    assert written.rejected == {} and written.ids == {"1": companies["F1"]["id"], "2": companies["F2"]["id"]}
    assert companies["F1"]["custom_attributes"] == {"fleet_size": 12}  # not a standard property
    f1, f2 = written.ids["1"], written.ids["2"]

    store = MemoryIdStore()
    result = run(build(emu, store), CONTACTS, Operation.UPSERT,
                 [_driver("1", f1), _driver("2", f1), _driver("3", None)])
    assert result.rejected == {}
    assert _attached(emu) == {"D1": {"F1"}, "D2": {"F1"}, "D3": set()}
    assert all("company" not in c["custom_attributes"] for c in emu.records())  # a link, not an attribute

    emu.reset_counters()
    run(build(emu, store), CONTACTS, Operation.UPSERT, [_driver("1", f2), _driver("2", None), _driver("3", None)])
    assert _attached(emu) == {"D1": {"F2"}, "D2": set(), "D3": set()}
    paths = emu.counters.by_path
    assert sum(n for p, n in paths.items() if p.endswith("/companies") and "/contacts/" in p) >= 4  # list + attach
    assert sum(n for p, n in paths.items() if "/companies/" in p and "/contacts/" in p) == 2  # two detaches

    run(build(emu), COMPANIES, Operation.DELETE, [_company("2"), _company("9")])  # 9: not in Intercom
    assert {c["company_id"] for c in emu.companies.companies.values()} == {"F1"}
    assert _attached(emu)["D1"] == set()


def test_a_company_intercom_does_not_know_rejects_the_contact_with_the_reason(emu: IntercomEmulator) -> None:
    result = run(build(emu), CONTACTS, Operation.UPSERT, [_driver("1", "0000000000000000000fffff")])
    assert result.rejected == {"1": "Intercom refused attaching the contact to company 0000000000000000000fffff: "
                                    "company_not_found: Company Not Found"}
    assert [c["external_id"] for c in emu.records()] == ["D1"]  # its attributes were written


def test_companies_need_company_id_and_a_create_or_update_mode() -> None:
    dest = IntercomDestination("ic", {"type": "intercom", "access_token": TOKEN})
    with pytest.raises(ConfigError, match="finds a company by company_id"):
        dest.check_target(SyncTarget("s", "companies", Mode.UPSERT, (FieldSpec("name", "name"),), ("name",)))
    with pytest.raises(ConfigError, match="use mode upsert or mirror"):
        dest.check_target(SyncTarget("s", "companies", Mode.UPDATE, COMPANIES.fields, ("company_id",)))
    assert IntercomDestination.references == {"contacts": {"company": "companies"}}
