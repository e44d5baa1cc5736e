"""Project and folder defaults: `+meta: {activate_defaults: {...}}` merged into each sync."""

from __future__ import annotations

from typing import Any

import pytest

from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.errors import ConfigError
from dbt_activate.spec import SyncSpec, parse_manifest_syncs
from tests.factories import manifest, model_node

BLOCK = {"destination": "crm", "object": "contacts", "primary_key": "id"}


def _syncs(activate: Any, defaults: Any, *, legacy_meta: bool = False) -> list[SyncSpec]:
    node = model_node("people", activate, legacy_meta=legacy_meta)
    (node["meta"] if legacy_meta else node["config"]["meta"])["activate_defaults"] = defaults
    return parse_manifest_syncs(parse_manifest(manifest(("model.shop.people", node))))


def test_defaults_fill_keys_the_sync_does_not_set_and_sync_keys_win() -> None:
    defaults = {"destination": "crm", "gate": "warn", "quarantine": True, "where": "country = 'FR'"}
    first, second = _syncs([{"object": "contacts", "primary_key": "id"},
                            {**BLOCK, "object": "leads", "gate": "none", "where": None}], defaults)
    assert (first.destination, first.gate, first.quarantine, first.where) == ("crm", "warn", True, "country = 'FR'")
    assert (second.gate, second.quarantine, second.where) == ("none", True, None)


def test_defaults_are_part_of_the_config_hash() -> None:
    (plain,) = _syncs([BLOCK], None)
    (same,) = _syncs([BLOCK], {"mode": "upsert"})
    (other,) = _syncs([BLOCK], {"gate": "none"})
    assert plain.config_hash != other.config_hash
    assert same.config_hash != plain.config_hash  # an explicit default is still a change of the block


def test_defaults_in_top_level_meta_are_read() -> None:
    (spec,) = _syncs([BLOCK], {"gate": "none"}, legacy_meta=True)
    assert spec.gate == "none"


def test_defaults_without_activate_declare_nothing() -> None:
    assert _syncs(None, {"destination": "crm"}) == []


@pytest.mark.parametrize(("defaults", "message"), [
    ({"name": "x"}, r"activate_defaults.*\.name: is set per sync"),
    ({"colour": "red"}, r"activate_defaults.*\.colour: unknown key"),
    (["gate"], r"activate_defaults.*must be a mapping"),
    ({"gate": "sometimes"}, r"activate\[0\]\.gate: 'sometimes' is not one of error, warn, none"),
    ({"quarantine": "yes"}, r"activate\[0\]\.quarantine: must be true or false"),
])
def test_bad_defaults_name_the_key(defaults: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _syncs([BLOCK], defaults)
