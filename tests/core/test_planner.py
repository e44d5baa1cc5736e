"""The planner's decisions, as a table of cases (pure: no warehouse, no dbt)."""

from __future__ import annotations

import pytest

from dbt_activate.dbt.artifacts import parse_manifest, parse_run_results
from dbt_activate.planner import make_plan, select, unknown_selector_methods
from dbt_activate.spec import parse_manifest_syncs
from dbt_activate.state.store import SavedSync
from tests.factories import dbt_test_node, manifest, model_node, run_results

BLOCK = {"destination": "crm", "object": "contacts", "primary_key": "id"}
PEOPLE = "model.shop.people"


def _project(**kw: object) -> tuple[object, list]:
    m = parse_manifest(manifest(
        (PEOPLE, model_node("people", [BLOCK], tags=("crm",), path="models/crm/people.sql")),
        ("model.shop.deals", model_node("deals", [{**BLOCK, "object": "deals"}], path="models/sales/deals.sql")),
        ("test.shop.unique_people_id", dbt_test_node("unique_people_id", "people")),
    ))
    return m, parse_manifest_syncs(m)


CASES = [
    # (command, model status, test status, saved, flags, runs, reason fragment)
    ("build", "success", "pass", "same", {}, True, "was rebuilt"),
    ("run", "success", None, "same", {}, True, "was rebuilt"),
    ("build", "error", "skipped", "same", {}, False, "failed to build"),
    ("build", "error", None, "same", {"run_all": True}, False, "failed to build"),
    ("build", "skipped", None, "same", {}, False, "was skipped"),
    ("build", "success", "fail", "same", {}, False, "tests failed"),
    ("build", "success", "error", "same", {"full_resync": True}, False, "tests failed"),
    ("build", "success", "warn", "same", {}, True, "was rebuilt"),
    ("build", "no-op", None, "same", {}, False, "not rebuilt (status: no-op)"),
    ("build", "reused", None, "same", {}, False, "not rebuilt (status: reused)"),
    ("build", "partial success", None, "same", {}, False, "not rebuilt (status: partial success)"),
    ("build", None, None, "same", {}, False, "not part of the last"),
    ("build", None, None, None, {}, True, "new sync"),
    ("build", None, None, "changed", {}, True, "activate block changed"),
    ("build", None, None, "retries", {}, True, "waiting for retry"),
    ("build", None, None, "same", {"run_all": True}, True, "--all"),
    ("build", None, None, "same", {"full_resync": True}, True, "--full-resync"),
    ("docs", "success", None, "same", {}, False, "not build/run"),
    ("docs", "success", None, "changed", {}, False, "not build/run"),
    ("run-operation", "success", None, "same", {"run_all": True}, True, "--all"),
    ("test", None, "fail", "same", {"run_all": True}, False, "tests failed"),
]


@pytest.mark.parametrize(("command", "model_status", "test_status", "saved", "flags", "runs", "reason"), CASES)
def test_decision(command: str, model_status: str | None, test_status: str | None, saved: str | None,
                  flags: dict[str, bool], runs: bool, reason: str) -> None:
    m, specs = _project()
    statuses = {}
    if model_status:
        statuses[PEOPLE] = model_status
    if test_status:
        statuses["test.shop.unique_people_id"] = test_status
    results = parse_run_results(run_results(command, statuses, {PEOPLE: "Runtime Error\n  boom"}))
    spec = next(s for s in specs if s.model_name == "people")
    saved_state = {
        None: {},
        "same": {spec.name: SavedSync(spec.config_hash)},
        "changed": {spec.name: SavedSync("other")},
        "retries": {spec.name: SavedSync(spec.config_hash, pending_retries=3)},
    }[saved]
    plan = make_plan(specs, m, results, saved_state, select_terms=["people"], **flags)  # type: ignore[arg-type]
    (decision,) = plan.decisions
    assert decision.run is runs
    assert reason in decision.reason
    if command == "docs":
        assert plan.notice and "docs" in plan.notice


def test_error_reason_quotes_dbt_message() -> None:
    m, specs = _project()
    results = parse_run_results(run_results("build", {PEOPLE: "error"}, {PEOPLE: "Database Error\n bad"}))
    plan = make_plan(specs, m, results, {}, select_terms=["people"])
    assert plan.decisions[0].reason.endswith(": Database Error")


@pytest.mark.parametrize(("select_terms", "exclude_terms", "expected"), [
    ([], [], {"people", "deals"}),
    (["people"], [], {"people"}),
    (["tag:crm"], [], {"people"}),
    (["path:models/sales"], [], {"deals"}),
    (["models/crm"], [], {"people"}),
    (["people__crm__contacts"], [], {"people"}),
    (["sync:deals__*"], [], {"deals"}),
    (["destination:crm"], ["deals"], {"people"}),
    (["people deals"], [], {"people", "deals"}),
    (["tag:crm,deals"], [], set()),
    (["tag:crm,people"], [], {"people"}),
    ([], ["tag:crm"], {"deals"}),
    (["p*"], [], {"people"}),
])
def test_selection(select_terms: list[str], exclude_terms: list[str], expected: set[str]) -> None:
    _, specs = _project()
    assert {s.model_name for s in select(specs, select_terms, exclude_terms)} == expected


def test_unknown_selector_method_is_reported() -> None:
    assert unknown_selector_methods(["tag:x", "colour:red"]) == ["colour:red"]


def test_not_selected_are_counted() -> None:
    m, specs = _project()
    plan = make_plan(specs, m, parse_run_results(run_results("build", {})), {}, select_terms=["deals"])
    assert plan.not_selected == 1
    assert [d.spec.model_name for d in plan.decisions] == ["deals"]


@pytest.mark.parametrize(("saved", "hint"), [
    # The default name followed an edit of `object`: the old sync is gone, same model and destination.
    ({"people__crm__persons": SavedSync("h", model="people", destination="crm", object="persons")},
     "new sync while people__crm__persons (object persons) of the same model and destination is no longer "
     "declared: renamed? set `name: people__crm__persons` to keep its state"),
    # Still declared (deals), another destination, another model, or the sync itself saved: no hint.
    ({"deals__crm__deals": SavedSync("h", model="deals", destination="crm", object="deals")}, None),
    ({"people__ads__contacts": SavedSync("h", model="people", destination="ads", object="contacts")}, None),
    ({"orders__crm__contacts": SavedSync("h", model="orders", destination="crm", object="contacts")}, None),
    ({"people__crm__contacts": SavedSync("h", model="people", destination="crm", object="contacts"),
      "people__crm__persons": SavedSync("h", model="people", destination="crm", object="persons")}, None),
])
def test_a_new_sync_replacing_a_vanished_one_says_renamed(saved: dict[str, SavedSync], hint: str | None) -> None:
    m, specs = _project()
    [decision] = make_plan(specs, m, None, saved, select_terms=["people"], run_all=True).decisions
    assert decision.spec.name == "people__crm__contacts"
    assert (hint in decision.reason) if hint else ("renamed?" not in decision.reason), decision.reason
