"""Selection parity with dbt: graph operators (+model, model+, depth) and state:modified (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.dbt.selectors import modified_models
from dbt_activate.errors import ConfigError
from dbt_activate.planner import make_plan, select, unknown_selector_methods
from dbt_activate.spec import parse_manifest_syncs
from tests.factories import manifest, model_node, run_results

BLOCK = {"destination": "crm", "object": "contacts", "primary_key": "id"}


def _node(name: str, parents: tuple[str, ...] = (), *, synced: bool = True, tags: tuple[str, ...] = ()
          ) -> tuple[str, dict[str, Any]]:
    node = model_node(name, [{**BLOCK, "object": name}] if synced else None, tags=tags)
    node["depends_on"] = {"nodes": [f"model.shop.{p}" for p in parents] + ["seed.shop.raw"]}
    node["checksum"] = {"name": "sha256", "checksum": f"sum-{name}"}
    return f"model.shop.{name}", node


def _raw() -> dict[str, Any]:
    # stg_people (no sync) -> people -> people_scores -> vip_alerts; deals stands alone.
    return manifest(
        _node("stg_people", synced=False, tags=("staging",)),
        _node("people", ("stg_people",)),
        _node("people_scores", ("people",)),
        _node("vip_alerts", ("people_scores",)),
        _node("deals"),
    )


def _models(terms: list[str], exclude: list[str] | None = None, raw: dict[str, Any] | None = None,
            state: tuple[frozenset[str], frozenset[str]] | None = None) -> list[str]:
    m = parse_manifest(raw or _raw())
    chosen = select(parse_manifest_syncs(m), terms, exclude or [], manifest=m, state=state)
    return sorted(s.model_name for s in chosen)


@pytest.mark.parametrize(("terms", "expected"), [
    (["people"], ["people"]),
    (["+people_scores"], ["people", "people_scores"]),  # stg_people has no sync: nothing to add
    (["people+"], ["people", "people_scores", "vip_alerts"]),
    (["people+1"], ["people", "people_scores"]),
    (["1+vip_alerts"], ["people_scores", "vip_alerts"]),
    (["+people_scores+"], ["people", "people_scores", "vip_alerts"]),
    # A model without syncs still anchors the graph: its children's syncs are selected.
    (["stg_people+"], ["people", "people_scores", "vip_alerts"]),
    (["tag:staging+"], ["people", "people_scores", "vip_alerts"]),
    # sync names anchor too; intersection and union keep dbt's meaning
    (["people__crm__people+"], ["people", "people_scores", "vip_alerts"]),
    (["people+,tag:nothing"], []),
    (["people+ deals"], ["deals", "people", "people_scores", "vip_alerts"]),
])
def test_graph_operators(terms: list[str], expected: list[str]) -> None:
    assert _models(terms) == expected


def test_graph_operators_in_exclude() -> None:
    assert _models([], ["people_scores+"]) == ["deals", "people"]


def test_without_operators_selection_is_unchanged() -> None:
    assert _models(["tag:staging"]) == []  # stg_people has no sync; no graph walk without '+'
    assert _models(["people*"]) == ["people", "people_scores"]


def test_graph_needs_the_manifest() -> None:
    m = parse_manifest(_raw())
    with pytest.raises(ConfigError, match="graph operators"):
        select(parse_manifest_syncs(m), ["+people"], [])


# --- state:modified -------------------------------------------------------------------------------


def _changed(raw: dict[str, Any], name: str, **changes: Any) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    raw["nodes"][f"model.shop.{name}"].update(changes)
    return raw


def test_modified_models_by_checksum_config_activate_and_new() -> None:
    old = _raw()
    assert modified_models(old, old) == (frozenset(), frozenset())
    sql_changed = _changed(old, "people", checksum={"name": "sha256", "checksum": "other"})
    assert modified_models(sql_changed, old)[0] == {"model.shop.people"}
    node = old["nodes"]["model.shop.deals"]
    activate_changed = _changed(old, "deals", config={"meta": {"activate": [{**BLOCK, "object": "new_object"}]}})
    assert node["config"] != activate_changed["nodes"]["model.shop.deals"]["config"]
    assert modified_models(activate_changed, old)[0] == {"model.shop.deals"}
    materialized = _changed(old, "vip_alerts", config={**node["config"], "materialized": "table"})
    assert modified_models(materialized, old)[0] == {"model.shop.vip_alerts"}
    new = copy.deepcopy(old)
    new["nodes"]["model.shop.fresh"] = _node("fresh")[1]
    assert modified_models(new, old) == (frozenset({"model.shop.fresh"}), frozenset({"model.shop.fresh"}))
    # Non-model nodes never count.
    tests_only = copy.deepcopy(old)
    tests_only["nodes"]["test.shop.t"] = {"resource_type": "test", "name": "t"}
    assert modified_models(tests_only, old) == (frozenset(), frozenset())


def test_state_modified_selects_changed_models_and_their_children() -> None:
    old = _raw()
    current = _changed(old, "people_scores", checksum={"name": "sha256", "checksum": "edited"})
    state = modified_models(current, old)
    assert _models(["state:modified"], raw=current, state=state) == ["people_scores"]
    assert _models(["state:modified+"], raw=current, state=state) == ["people_scores", "vip_alerts"]
    assert _models(["+state:modified"], raw=current, state=state) == ["people", "people_scores"]
    assert _models(["state:new"], raw=current, state=state) == []
    assert _models(["state:modified,tag:x"], raw=current, state=state) == []


def test_state_modified_without_state_dir_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="--state"):
        _models(["state:modified"])


def test_unknown_selectors() -> None:
    assert unknown_selector_methods(["state:modified+", "+tag:x", "2+people+1", "model:x,sync:y"]) == []
    assert unknown_selector_methods(["state:changed", "colour:red+"]) == ["state:changed", "colour:red+"]


def test_make_plan_applies_state_selection() -> None:
    old = _raw()
    current = _changed(old, "deals", checksum={"name": "sha256", "checksum": "edited"})
    m = parse_manifest(current)
    plan = make_plan(parse_manifest_syncs(m), m, parse_run_results_all(m), {}, select_terms=["state:modified"],
                     state=modified_models(current, old))
    assert [d.spec.model_name for d in plan.decisions] == ["deals"]
    assert plan.not_selected == 3


def parse_run_results_all(m: Any) -> Any:
    from dbt_activate.dbt.artifacts import parse_run_results

    return parse_run_results(run_results("build", dict.fromkeys(m.models, "success")))


def _env_manifest(relation_schema: str, db: str = "analytics", **unrendered: Any) -> dict[str, Any]:
    return {"nodes": {"model.shop.people": {
        "resource_type": "model", "name": "people", "database": db, "schema": relation_schema, "alias": "people",
        "checksum": {"name": "sha256", "checksum": "abc"},
        "config": {"materialized": "table", "schema": "marts", "meta": {"activate": [BLOCK]}},
        "unrendered_config": {"materialized": "table", "schema": "marts", **unrendered}, "meta": {}}}}


def test_state_modified_ignores_the_environments_target_schema_and_database() -> None:
    # Slim CI: prod manifest (schema analytics_marts) vs a PR build (dbt_ci_pr_7_marts), same code.
    # dbt compares unrendered_config for database/schema/alias, not the rendered relation.
    modified, _ = modified_models(_env_manifest("dbt_ci_pr_7_marts", "ci_db"), _env_manifest("analytics_marts"))
    assert modified == frozenset()


def test_state_modified_sees_configured_schema_and_activate_changes_with_unrendered_config() -> None:
    old = _env_manifest("analytics_marts")
    assert modified_models(_env_manifest("analytics_crm", schema="crm"), old)[0] == {"model.shop.people"}
    activate_changed = copy.deepcopy(old)
    activate_changed["nodes"]["model.shop.people"]["config"]["meta"] = {"activate": [{**BLOCK, "object": "leads"}]}
    assert modified_models(activate_changed, old)[0] == {"model.shop.people"}
