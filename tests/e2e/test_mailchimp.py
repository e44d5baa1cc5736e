"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> MailchimpEmulator over HTTP.

Each test writes a throwaway dbt project (tests/e2e/project.py) whose ``customers`` model
feeds one Mailchimp audience, members found by e-mail, and compares what the emulator holds with
the model as Mailchimp stores it (merge fields by tag).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator
from tests.e2e.project import Project, customer
from tests.e2e.vendor_runs import changed

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

KEY = "5f4dcc3b5aa765d61d8327deb882cf99-us6"
LIST = "e2e0audnce"
SEGMENT = "country in ('FR', 'GB')"
MERGE = {"COUNTRY": "text", "SCORE": "number", "SINCE": "date"}
FIELDS = {"full_name": "FNAME", "country": "COUNTRY", "score": "SCORE", "signup_date": "SINCE"}


@pytest.fixture
def emu() -> Iterator[MailchimpEmulator]:
    with MailchimpEmulator(token=KEY, list_ids=[LIST], merge_fields=MERGE, max_connections=True) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def activate(mode: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "news", "object": LIST, "mode": mode, "primary_key": "customer_id",
             "match": {"email": "email_address"}, "fields": FIELDS, "where": SEGMENT, "name": "customers_mailchimp",
             **extra}]


def destinations(emu: MailchimpEmulator, **config: Any) -> dict[str, Any]:
    # The key's "-us6" would point at Mailchimp; base_url points at the emulator instead.
    return {"news": {"type": "mailchimp", "api_key": KEY, "base_url": emu.base_url, "timeout": 10, **config}}


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    return project.result_of("customers_mailchimp")


def model_as_mailchimp(project: Project) -> dict[str, dict[str, Any]]:
    rows = project.model_rows(where=SEGMENT, columns=["email", "full_name", "country", "score", "signup_date"])
    return {email: {"FNAME": name, "LNAME": "", "COUNTRY": country, "SCORE": score, "SINCE": since.isoformat()}
            for email, name, country, score, since in rows}


def members(emu: MailchimpEmulator) -> dict[str, dict[str, Any]]:
    return {m["email_address"]: m["merge_fields"] for m in emu.members(LIST)}


def mutate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rename 6 and 9, delete 1 and 4, add 100 and 102, move 3 (FR) out of the segment."""
    return changed(rows, renamed=(6, 9), deleted=(1, 4), added=(100, 102), moved_out=(3,))


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_upsert_and_mirror_make_the_audience_equal_the_model(project: Project, emu: MailchimpEmulator,
                                                             mode: str) -> None:
    rows = [customer(i) for i in range(1, 31)]
    project.write(rows, activate(mode), destinations(emu))
    project.dbt("build")
    first = sync(project)
    assert first["counts"]["sent"] == len(model_as_mailchimp(project)) > 0
    assert members(emu) == model_as_mailchimp(project)

    project.write_rows(mutate(rows))
    project.dbt("build")
    sync(project)
    gone = {"user1@example.com", "user3@example.com", "user4@example.com"}
    if mode == "mirror":
        assert members(emu) == model_as_mailchimp(project)  # removed members archived
        assert {m["email_address"] for m in emu.members(LIST, archived=True)} == gone
    else:
        assert set(members(emu)) == set(model_as_mailchimp(project)) | gone
    assert members(emu)["user6@example.com"]["FNAME"] == "Renamed 6"
    assert sync(project)["counts"]["sent"] == 0


@pytest.mark.slow
def test_a_refused_member_is_rejected_with_mailchimps_reason_and_the_others_sync(project: Project,
                                                                                emu: MailchimpEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    rows[3]["email"] = "not-an-email"  # customer 4, GB
    project.write(rows, activate("upsert"), destinations(emu))
    project.dbt("build")
    result = sync(project, expect_exit=1)
    assert result["status"] == "partial"
    assert result["rejected_samples"] == [{"key": "4", "reason": "ERROR_GENERIC: Please provide a valid email "
                                                                  "address. (email_address: Please provide a valid "
                                                                  "email address.)"}]
    assert set(members(emu)) == set(model_as_mailchimp(project)) - {"not-an-email"}
    rows[3]["email"] = "user4@example.com"
    project.write_rows(rows)
    project.dbt("build")
    assert sync(project)["counts"]["sent"] == 1
    assert members(emu) == model_as_mailchimp(project)


@pytest.mark.slow
def test_create_skips_existing_members(project: Project, emu: MailchimpEmulator) -> None:
    emu.add_members(LIST, [{"email_address": "user1@example.com", "merge_fields": {"FNAME": "Made in Mailchimp"}}])
    project.write([customer(i) for i in range(1, 13)], activate("create"), destinations(emu))
    project.dbt("build")
    result = sync(project)
    assert result["counts"]["skipped"] == 1
    assert members(emu)["user1@example.com"]["FNAME"] == "Made in Mailchimp"
    assert len(members(emu)) == len(model_as_mailchimp(project))


@pytest.mark.slow
def test_throttling_and_server_errors_are_retried(project: Project, emu: MailchimpEmulator) -> None:
    emu.inject("throttle")
    emu.inject("status_5xx", status=502)
    emu.inject("drop")
    project.write([customer(i) for i in range(1, 61)], activate("upsert"), destinations(emu, batch_size=5))
    project.dbt("build")
    result = sync(project)
    assert emu.counters.faults == 3
    assert emu.peak_connections <= 10
    assert result["counts"]["sent"] == len(model_as_mailchimp(project))
    assert members(emu) == model_as_mailchimp(project)
    assert KEY not in (project.root / "target" / "activate_results.json").read_text()


@pytest.mark.slow
def test_an_unsubscribed_member_stays_unsubscribed_through_a_run(project: Project, emu: MailchimpEmulator) -> None:
    # Consent: the configured status goes to new members only; user 3 (FR) unsubscribed in Mailchimp.
    emu.add_members(LIST, [{"email_address": "user3@example.com", "status": "unsubscribed",
                            "merge_fields": {"FNAME": "Old"}}])
    project.write([customer(i) for i in range(1, 13)], activate("upsert"), destinations(emu, status="subscribed"))
    project.dbt("build")
    assert sync(project)["counts"]["rejected"] == 0
    assert members(emu) == model_as_mailchimp(project)
    statuses = {m["email_address"]: m["status"] for m in emu.members(LIST)}
    assert statuses.pop("user3@example.com") == "unsubscribed"
    assert set(statuses.values()) == {"subscribed"}
