"""dbt artifacts read as plain data: versions, unknown keys, missing files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbt_activate.dbt.artifacts import load_manifest, load_run_results, parse_manifest, parse_run_results
from dbt_activate.errors import ArtifactsError
from tests.factories import dbt_test_node, manifest, model_node, run_results


def test_manifest_reads_models_tests_and_ignores_unknown_keys() -> None:
    node = model_node("people", [{"destination": "x"}], columns={"id": "integer"})
    node["some_future_field"] = {"nested": True}
    data = manifest(("model.shop.people", node), ("test.shop.t", dbt_test_node("t", "people")))
    data["metadata"]["new_thing"] = 1
    m = parse_manifest(data)
    people = m.models["model.shop.people"]
    assert m.schema_version == "v12"
    assert people.activate == [{"destination": "x"}]
    assert people.activate_key_path == "config.meta.activate"
    assert people.yaml_file == "models/schema.yml"
    assert people.columns == {"id": "integer"}
    assert m.tests["test.shop.t"].tested_models == ("model.shop.people",)
    assert m.model_by_name("people") is people


def test_config_meta_wins_over_top_level_meta() -> None:
    node = model_node("people", [{"destination": "new"}])
    node["meta"] = {"activate": [{"destination": "old"}]}
    assert parse_manifest(manifest(("model.shop.people", node))).models["model.shop.people"].activate == [
        {"destination": "new"}]


def test_run_results_command_and_statuses() -> None:
    r = parse_run_results(run_results("build", {"model.shop.people": "Success"}))
    assert r.command == "build" and r.is_build and r.schema_version == "v6"
    assert r.statuses == {"model.shop.people": "success"}
    assert not parse_run_results(run_results("docs", {})).is_build


def test_missing_artifacts_tell_the_user_to_run_dbt_build(tmp_path: Path) -> None:
    with pytest.raises(ArtifactsError, match=r"Run `dbt build` first"):
        load_manifest(tmp_path)
    (tmp_path / "run_results.json").write_text("{not json")
    with pytest.raises(ArtifactsError, match="not readable JSON"):
        load_run_results(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps([1]))
    with pytest.raises(ArtifactsError, match="expected a JSON object"):
        load_manifest(tmp_path)
