"""Suggesting the primary-key test for syncs whose key no dbt test guards."""

from __future__ import annotations

from typing import Any

from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.dbt.key_tests import missing_key_tests
from dbt_activate.spec import parse_manifest_syncs
from tests.factories import dbt_test_node, manifest, model_node


def _test(name: str, model: str, macro: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    node = {**dbt_test_node(name, model), "test_metadata": {"name": macro, "kwargs": kwargs},
            "column_name": kwargs.get("column_name")}
    return f"test.shop.{name}", node


def _suggest(*tests: tuple[str, dict[str, Any]]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    block = {"destination": "crm", "object": "contacts"}
    m = parse_manifest(manifest(
        ("model.shop.people", model_node("people", [{**block, "primary_key": "id"},
                                                    {**block, "object": "leads", "primary_key": "id"}])),
        ("model.shop.deals", model_node("deals", [{**block, "primary_key": ["lead_id", "region"]}])),
        *tests))
    return [(s.model, s.columns, s.syncs) for s in missing_key_tests(m, parse_manifest_syncs(m))]


def test_every_unguarded_key_is_suggested_once_per_model_and_key() -> None:
    assert _suggest() == [
        ("deals", ("lead_id", "region"), ("deals__crm__contacts",)),
        ("people", ("id",), ("people__crm__contacts", "people__crm__leads")),
    ]


def test_package_test_or_unique_and_not_null_guard_a_key() -> None:
    assert _suggest(_test("pk_deals", "deals", "activate_primary_key", columns=["LEAD_ID", "region"]),
                    _test("u", "people", "unique", column_name="id"),
                    _test("nn", "people", "not_null", column_name="id")) == []
    assert _suggest(_test("pk_people", "people", "activate_primary_key", column_name="id"),
                    _test("pk_deals", "deals", "activate_primary_key", columns=["lead_id"])) == [
        ("deals", ("lead_id", "region"), ("deals__crm__contacts",))]
    # unique alone does not forbid nulls.
    assert [s[0] for s in _suggest(_test("u", "people", "unique", column_name="id"))] == ["deals", "people"]


def test_suggestion_is_the_yaml_to_paste() -> None:
    m = parse_manifest(manifest(("model.shop.people", model_node("people", [
        {"destination": "crm", "object": "contacts", "primary_key": ["id", "region"]}]))))
    (suggestion,) = missing_key_tests(m, parse_manifest_syncs(m))
    assert suggestion.yaml == "- dbt_activate.activate_primary_key:\n    arguments:\n      columns: [id, region]"
    assert suggestion.message.startswith("models/schema.yml: model people: no test guards the primary key")
