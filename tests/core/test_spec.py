"""The activate schema: every key validated, errors naming file, model and key path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.core.types import Mode
from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.errors import ConfigError
from dbt_activate.spec import ACTIVATE_KEYS, parse_manifest_syncs, resolve_columns
from tests.factories import manifest, model_node

BASE = {"destination": "crm", "object": "contacts", "primary_key": "id"}


def _syncs(activate: Any, **kw: Any) -> list:
    return parse_manifest_syncs(parse_manifest(manifest(("model.shop.people", model_node("people", activate, **kw)))))


def _error(activate: Any) -> str:
    with pytest.raises(ConfigError) as info:
        _syncs(activate)
    return str(info.value)


def test_defaults() -> None:
    (spec,) = _syncs([BASE])
    assert spec.name == "people__crm__contacts"
    assert spec.mode is Mode.UPSERT
    assert spec.on_delete == "ignore"
    assert spec.fields is None
    assert spec.primary_key == ("id",)


def test_nulls_is_unset_unless_the_sync_says() -> None:
    unset, keep, clear = _syncs([{**BASE, "name": "a"}, {**BASE, "name": "b", "nulls": "keep"},
                                 {**BASE, "name": "c", "nulls": "clear"}])
    assert (unset.nulls, keep.nulls, clear.nulls) == ("", "keep", "clear")


def test_mirror_implies_delete_and_legacy_meta_is_read() -> None:
    (spec,) = _syncs([{**BASE, "mode": "mirror"}], legacy_meta=True)
    assert spec.on_delete == "delete"
    assert "people.meta.activate[0]" in spec.location


@pytest.mark.parametrize(("block", "path", "message"), [
    ({**BASE, "mode": "upsrt"}, "people.config.meta.activate[0].mode", "'upsrt' is not one of upsert"),
    ({k: v for k, v in BASE.items() if k != "destination"}, ".destination", "is required"),
    ({k: v for k, v in BASE.items() if k != "primary_key"}, ".primary_key", "is required"),
    ({**BASE, "primary_key": []}, ".primary_key", "non-empty list"),
    ({**BASE, "primary_key": ["id", "id"]}, ".primary_key", "lists a column twice"),
    ({**BASE, "colour": "red"}, ".colour", "unknown key"),
    ({**BASE, "fields": 3}, ".fields", "must be 'auto'"),
    ({**BASE, "fields": {"a": "x", "b": "x"}}, ".fields", "same destination field"),
    ({**BASE, "match": ["email"]}, ".match", "must be a mapping"),
    ({**BASE, "on_delete": "purge"}, ".on_delete", "'purge' is not one of"),
    ({**BASE, "mode": "mirror", "on_delete": "clear"}, ".on_delete", "contradicts"),
    ({**BASE, "mode": "append", "on_delete": "delete"}, ".on_delete", "must be ignore"),
    ({**BASE, "name": "bad name!"}, ".name", "may only contain"),
    ({**BASE, "where": ""}, ".where", "non-empty string"),
    ({**BASE, "nulls": "wipe"}, ".nulls", "'wipe' is not one of keep, clear"),
])
def test_errors_name_file_model_and_key(block: dict[str, Any], path: str, message: str) -> None:
    text = _error([block])
    assert text.startswith("models/schema.yml: people.config.meta.activate[0]")
    assert path in text
    assert message in text


def test_activate_must_be_a_list_of_mappings() -> None:
    assert "must be a list" in _error("crm")
    assert "must be a mapping" in _error(["crm"])


def test_duplicate_sync_names_are_rejected() -> None:
    assert "already used" in _error([BASE, BASE])


def test_resolve_auto_fields_case_insensitively_and_adds_identity() -> None:
    (spec,) = _syncs([{**BASE, "primary_key": "ID", "fields": {"email": "Email"}, "match": {"email": "Email"}}])
    resolved = resolve_columns(spec, {"id": "integer", "email": "varchar", "name": "varchar"})
    assert resolved.key_columns == ("id",)
    assert [(f.column, f.field) for f in resolved.fields] == [("email", "Email")]
    assert resolved.identity == ("Email",)


def test_resolve_adds_key_column_when_not_mapped() -> None:
    (spec,) = _syncs([{**BASE, "fields": ["name"]}])
    resolved = resolve_columns(spec, {"id": "integer", "name": "varchar"})
    assert [f.column for f in resolved.fields] == ["name", "id"]
    assert resolved.identity == ("id",)


def test_unknown_column_in_fields_names_the_key() -> None:
    (spec,) = _syncs([{**BASE, "fields": ["nope"]}])
    with pytest.raises(ConfigError, match=r"people\.config\.meta\.activate\[0\]\.fields\.nope: column 'nope'"):
        resolve_columns(spec, {"id": "integer"})


def test_every_activate_key_is_documented_in_the_readme() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for key in ACTIVATE_KEYS:
        assert re.search(rf"`{key.name}`", readme), f"README does not document activate key {key.name}"


def test_typos_get_a_did_you_mean() -> None:
    assert _error([{**BASE, "mode": "upsrt"}]).endswith("'upsrt' is not one of upsert, update, create, append, "
                                                       "mirror; did you mean 'upsert'?")
    assert _error([{**BASE, "primary_kye": "id"}]).endswith("; did you mean 'primary_key'?")
    (spec,) = _syncs([{**BASE, "match": {"emial": "email"}}])
    with pytest.raises(ConfigError, match=r"match\.emial: column 'emial' is not in .*; did you mean 'email'\?$"):
        resolve_columns(spec, {"id": "integer", "email": "varchar"})
