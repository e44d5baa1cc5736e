"""Property tests: whatever an `activate` block or destinations.yml holds, the answer is a result or a
ConfigError that names where the problem is, never another exception (which would be a traceback
and exit 2 with "unexpected error"). Identifiers that cannot be quoted are ConfigErrors too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.destinations.base import load_destination_type
from dbt_activate.errors import ConfigError
from dbt_activate.project import load_destinations
from dbt_activate.spec import ACTIVATE_KEYS, parse_manifest_syncs, resolve_columns
from dbt_activate.warehouse.registry import dialect_for
from tests.factories import manifest, model_node

PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["upsert", "mirror", "append", "create", "update",
                                                           "auto", "id", "email", "delete", "clear", "ignore",
                                                           "error", "warn", "none", "a\x00b", ""]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=4)),
                      max_leaves=12)
KEY_NAMES = [k.name for k in ACTIVATE_KEYS]
blocks = st.dictionaries(st.one_of(st.sampled_from(KEY_NAMES), st.text(max_size=8)), values, max_size=8)
activate_values = st.one_of(values, blocks, st.lists(st.one_of(blocks, values), max_size=3))
COLUMNS = {"id": "integer", "email": "varchar", "score": "double", "Name": "text"}


def _parse(activate: Any, defaults: Any = None) -> None:
    node = model_node("people", activate)
    if defaults is not None:
        node["config"]["meta"]["activate_defaults"] = defaults
    for spec in parse_manifest_syncs(parse_manifest(manifest(("model.shop.people", node)))):
        resolve_columns(spec, COLUMNS)


@PROPERTY_SETTINGS
@given(activate_values, st.one_of(st.none(), blocks, values))
def test_any_activate_value_parses_or_is_a_located_config_error(activate: Any, defaults: Any) -> None:
    try:
        _parse(activate, defaults)
    except ConfigError as exc:
        assert exc.location, str(exc)
        assert "people" in exc.location


KINDS = ["webhook", "hubspot", "pipedrive", "salesforce", "postgres", "file"]


@st.composite
def destination_entries(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from([*KINDS, "nope"]))
    keys = [k.name for k in load_destination_type(kind).config_keys] if kind != "nope" else []
    entry = draw(st.dictionaries(st.sampled_from([*keys, "batch_size", "rate_limit", "max_concurrency",
                                                  "verify_tls", "ca_bundle", "extra"]), values, max_size=6))
    if draw(st.booleans()):
        entry["type"] = kind
    return entry


destinations_docs = st.one_of(
    values,
    st.dictionaries(st.text(min_size=1, max_size=8), st.one_of(destination_entries(), values), max_size=3),
)


def _load(path: Path) -> None:
    loaded = load_destinations(path)
    for name in loaded.names():
        loaded.build(name, used_at="models/schema.yml: people.config.meta.activate[0].destination")


@PROPERTY_SETTINGS
@given(destinations_docs)
def test_any_destinations_yml_loads_or_is_a_located_config_error(tmp_path_factory: pytest.TempPathFactory,
                                                                 doc: Any) -> None:
    path = tmp_path_factory.mktemp("dest") / "destinations.yml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    try:
        _load(path)
    except ConfigError as exc:
        assert exc.location, str(exc)


@PROPERTY_SETTINGS
@given(st.binary(max_size=80) | st.text(max_size=80).map(str.encode))
def test_any_bytes_as_destinations_yml_are_a_located_config_error_or_load(
        tmp_path_factory: pytest.TempPathFactory, raw: bytes) -> None:
    path = tmp_path_factory.mktemp("raw") / "destinations.yml"
    path.write_bytes(raw)
    try:
        _load(path)
    except ConfigError as exc:
        assert exc.location == str(path) or (exc.location or "").startswith(str(path)), str(exc)


@pytest.mark.parametrize("warehouse", ["duckdb", "postgres", "redshift"])
@pytest.mark.parametrize("name", ["", "a\x00b", "x" * 200])
def test_identifiers_that_cannot_be_quoted_are_config_errors(warehouse: str, name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be quoted"):
        dialect_for(warehouse).quote(name)


@PROPERTY_SETTINGS
@given(st.text(min_size=1, max_size=60).filter(lambda s: "\x00" not in s))
def test_every_other_identifier_is_quoted_and_round_trips(name: str) -> None:
    quoted = dialect_for("postgres").quote(name)
    assert quoted.startswith('"') and quoted.endswith('"')
    assert quoted[1:-1].replace('""', '"') == name  # the quote char is escaped by doubling, never dropped
