"""Gate modes and quarantine decisions, as a table of cases (pure: synthetic artifacts)."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_activate.dbt.artifacts import parse_manifest, parse_run_results
from dbt_activate.dbt.gating import Quarantine
from dbt_activate.planner import make_plan
from dbt_activate.spec import parse_manifest_syncs
from tests.factories import dbt_test_node, manifest, model_node, run_results

PEOPLE = "model.shop.people"
KEY_TEST = "test.shop.pk_people"
EMAIL_TEST = "test.shop.valid_email_people"
AUDIT = '"db"."main_dbt_test__audit"."valid_email_people"'


def _plan(block: dict[str, Any], statuses: dict[str, str], relations: dict[str, str] | None = None,
          **flags: bool) -> Any:
    email_node = {**dbt_test_node("valid_email_people", "people"), "column_name": "email"}
    m = parse_manifest(manifest(
        (PEOPLE, model_node("people", [{"destination": "crm", "object": "contacts", "primary_key": "id",
                                        **block}])),
        (KEY_TEST, dbt_test_node("pk_people", "people")),
        (EMAIL_TEST, email_node),
    ))
    data = run_results("build", {PEOPLE: "success", **statuses})
    for result in data["results"]:
        if result["unique_id"] in (relations or {}):
            result["relation_name"] = (relations or {})[result["unique_id"]]
    (decision,) = make_plan(parse_manifest_syncs(m), m, parse_run_results(data), {}, **flags).decisions
    return decision


@pytest.mark.parametrize(("gate", "status", "runs"), [
    (None, "pass", True), (None, "warn", True), (None, "fail", False), (None, "error", False),
    ("error", "warn", True), ("error", "fail", False),
    ("warn", "pass", True), ("warn", "warn", False), ("warn", "fail", False), ("warn", "error", False),
    ("none", "fail", True), ("none", "error", True), ("none", "warn", True),
    (None, "skipped", True),
])
def test_gate_modes(gate: str | None, status: str, runs: bool) -> None:
    block = {"gate": gate} if gate else {}
    decision = _plan(block, {KEY_TEST: status})
    assert decision.run is runs
    if not runs:
        assert decision.reason.startswith("tests failed on model people: pk_people")
        assert ("(warn)" in decision.reason) is (status == "warn")


def test_gate_none_still_blocks_a_model_that_failed_to_build() -> None:
    decision = _plan({"gate": "none"}, {PEOPLE: "error", KEY_TEST: "skipped"})
    assert not decision.run and "failed to build" in decision.reason


def test_gate_blocks_even_with_all_and_full_resync() -> None:
    assert not _plan({}, {KEY_TEST: "fail"}, run_all=True).run
    assert not _plan({}, {KEY_TEST: "fail"}, full_resync=True).run


def test_quarantine_turns_a_stored_failure_into_held_back_rows() -> None:
    decision = _plan({"quarantine": True}, {KEY_TEST: "pass", EMAIL_TEST: "fail"}, {EMAIL_TEST: AUDIT})
    assert decision.run
    assert decision.quarantine == (Quarantine("valid_email_people", AUDIT, "email"),)


def test_quarantine_reads_the_failures_table_from_the_manifest_too() -> None:
    m_relation = {EMAIL_TEST: AUDIT}
    email_node = {**dbt_test_node("valid_email_people", "people"), "relation_name": AUDIT}
    m = parse_manifest(manifest(
        (PEOPLE, model_node("people", [{"destination": "crm", "object": "c", "primary_key": "id",
                                        "quarantine": True}])),
        (EMAIL_TEST, email_node)))
    results = parse_run_results(run_results("build", {PEOPLE: "success", EMAIL_TEST: "fail"}))
    (decision,) = make_plan(parse_manifest_syncs(m), m, results, {}).decisions
    assert decision.run and decision.quarantine[0].relation == m_relation[EMAIL_TEST]


@pytest.mark.parametrize(("statuses", "relations", "blocked_by"), [
    ({EMAIL_TEST: "fail"}, {}, "valid_email_people"),  # no store_failures table
    ({EMAIL_TEST: "fail", KEY_TEST: "error"}, {EMAIL_TEST: AUDIT}, "pk_people (error)"),  # nothing listed
])
def test_quarantine_cannot_hold_back_what_no_table_lists(statuses: dict[str, str], relations: dict[str, str],
                                                         blocked_by: str) -> None:
    decision = _plan({"quarantine": True}, statuses, relations)
    assert not decision.run
    assert blocked_by in decision.reason and "store_failures: true" in decision.reason
    assert decision.quarantine == ()


def test_quarantine_follows_the_gate() -> None:
    # A warning only counts under gate: warn; then its stored rows are held back.
    decision = _plan({"quarantine": True}, {EMAIL_TEST: "warn"}, {EMAIL_TEST: AUDIT})
    assert decision.run and decision.quarantine == ()
    decision = _plan({"quarantine": True, "gate": "warn"}, {EMAIL_TEST: "warn"}, {EMAIL_TEST: AUDIT})
    assert decision.run and [q.test for q in decision.quarantine] == ["valid_email_people"]


def test_no_quarantine_on_a_skipped_sync() -> None:
    decision = _plan({"quarantine": True}, {PEOPLE: "skipped", EMAIL_TEST: "fail"}, {EMAIL_TEST: AUDIT})
    assert not decision.run and decision.quarantine == ()
