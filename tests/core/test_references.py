"""`references` and `after`: parsed and validated like every key, errors naming file, model and key path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from dbt_activate.core.order import Dependency
from dbt_activate.core.types import Batch, BatchResult, SyncTarget
from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.destinations.base import Destination
from dbt_activate.errors import ConfigError
from dbt_activate.spec import Reference, SyncSpec, check_links, parse_manifest_syncs, resolve_columns
from tests.factories import manifest, model_node

ORGS = {"name": "orgs", "destination": "crm", "object": "organizations", "primary_key": "org_key"}
PEOPLE = {"name": "people", "destination": "crm", "object": "persons", "primary_key": "id",
          "references": [{"sync": "orgs", "column": "company", "as": "org_id"}]}
WHERE = "models/schema.yml: people.config.meta.activate[0]"


class Linked(Destination):
    kind = "linked"
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {"persons": {"org_id": "organizations"}}

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        return BatchResult()


class Unlinked(Linked):
    kind = "unlinked"
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {}


def _syncs(people: Any, orgs: Any = ORGS) -> list[SyncSpec]:
    nodes = [("model.shop.people", model_node("people", [people]))]
    if orgs is not None:
        nodes.append(("model.shop.orgs", model_node("orgs", [orgs])))
    return parse_manifest_syncs(parse_manifest(manifest(*nodes)))


def _check(specs: list[SyncSpec], kind: type[Destination] = Linked) -> list[Dependency]:
    return check_links(specs, lambda s: kind)


def test_references_and_after_are_parsed_and_make_dependencies() -> None:
    specs = _syncs({**PEOPLE, "after": "orgs"})
    people = next(s for s in specs if s.name == "people")
    assert people.references == (Reference("orgs", "company", "org_id"),)
    assert people.after == ("orgs",)
    assert _check(specs) == [Dependency("people", "orgs", "references[0] org_id"),
                             Dependency("people", "orgs", "after")]


@pytest.mark.parametrize(("people", "path", "message"), [
    ({**PEOPLE, "references": {"sync": "orgs"}}, ".references", "must be a list"),
    ({**PEOPLE, "references": ["orgs"]}, ".references[0]", "must be a mapping with sync, column and as"),
    ({**PEOPLE, "references": [{"sync": "orgs", "column": "company"}]}, ".references[0].as", "is required"),
    ({**PEOPLE, "references": [{"sync": "orgs", "column": "c", "as": "org_id", "via": 1}]},
     ".references[0].via", "unknown key"),
    ({**PEOPLE, "references": [{"sync": "orgs", "column": "a", "as": "org_id"},
                               {"sync": "orgs", "column": "b", "as": "org_id"}]},
     ".references[1].as", "declared twice"),
    ({**PEOPLE, "after": [""]}, ".after", "must be a sync name or a list"),
])
def test_malformed_keys(people: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _syncs(people)
    assert str(info.value).startswith(WHERE + path + ":"), str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(("people", "orgs", "kind", "path", "message"), [
    ({**PEOPLE, "references": [{"sync": "org", "column": "company", "as": "org_id"}]}, ORGS, Linked,
     ".references[0].sync", "unknown sync 'org' (syncs: orgs, people)"),
    (PEOPLE, {**ORGS, "destination": "other"}, Linked, ".references[0].sync",
     "sync 'orgs' writes to destination 'other', this sync to 'crm'"),
    ({**PEOPLE, "references": [{"sync": "orgs", "column": "company", "as": "company_id"}]}, ORGS, Linked,
     ".references[0].as", "'company_id' is not a relationship linked persons can have (supported: org_id (-> "
     "organizations))"),
    (PEOPLE, ORGS, Unlinked, ".references[0].as",
     "unlinked has no relationships between records; `references` cannot be used with it"),
    (PEOPLE, {**ORGS, "object": "deals"}, Linked, ".references[0].sync",
     "'org_id' points at organizations, but sync 'orgs' writes deals"),
    (PEOPLE, {**ORGS, "primary_key": ["a", "b"]}, Linked, ".references[0].sync", "composite primary key"),
    ({**PEOPLE, "after": ["people"]}, ORGS, Linked, ".after[0]", "cannot reference or run after itself"),
    ({**PEOPLE, "after": ["nope"]}, ORGS, Linked, ".after[0]", "unknown sync 'nope'"),
])
def test_links_are_checked_against_the_other_syncs_and_the_destination_type(
        people: dict[str, Any], orgs: dict[str, Any], kind: type[Destination], path: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _check(_syncs(people, orgs), kind)
    assert str(info.value).startswith(WHERE + path + ":"), str(info.value)
    assert message in str(info.value)


def test_a_cycle_through_after_is_an_error_naming_the_syncs() -> None:
    with pytest.raises(ConfigError) as info:
        _check(_syncs(PEOPLE, {**ORGS, "after": ["people"]}))
    assert str(info.value).startswith("models/schema.yml: orgs.config.meta.activate[0]: syncs depend on each "
                                      "other in a cycle: orgs -> people -> orgs;")


COLUMNS = {"id": "integer", "email": "varchar", "company": "integer"}


def test_the_reference_column_is_sent_under_its_relationship() -> None:
    people = next(s for s in _syncs(PEOPLE) if s.name == "people")
    assert [(f.column, f.field) for f in resolve_columns(people, COLUMNS).fields] == [
        ("id", "id"), ("email", "email"), ("company", "org_id")]
    listed = next(s for s in _syncs({**PEOPLE, "fields": ["email"]}) if s.name == "people")
    assert [(f.column, f.field) for f in resolve_columns(listed, COLUMNS).fields] == [
        ("email", "email"), ("company", "org_id"), ("id", "id")]


@pytest.mark.parametrize(("people", "columns", "path", "message"), [
    (PEOPLE, {"id": "integer"}, ".references[0].column", "column 'company' is not in"),
    ({**PEOPLE, "fields": {"company": "name"}}, COLUMNS, ".fields.company", "is a reference, sent as 'org_id'"),
    ({**PEOPLE, "fields": {"email": "org_id"}}, COLUMNS, ".references", "column 'email' is also sent as 'org_id'"),
    ({**PEOPLE, "primary_key": "company"}, COLUMNS, ".references[0].column", "column 'company' finds the record"),
    ({**PEOPLE, "match": {"company": "x"}}, COLUMNS, ".references[0].column", "column 'company' finds the record"),
])
def test_reference_columns_are_checked(people: dict[str, Any], columns: dict[str, str], path: str,
                                       message: str) -> None:
    spec = next(s for s in _syncs(people) if s.name == "people")
    with pytest.raises(ConfigError) as info:
        resolve_columns(spec, columns)
    assert str(info.value).startswith(WHERE + path + ":"), str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize("kind", ["braze", "customerio", "postgres", "mysql"])
def test_types_without_relationships_refuse_references_naming_model_file_and_key(kind: str) -> None:
    from dbt_activate.destinations.base import load_destination_type  # the real types, as `run` loads them

    with pytest.raises(ConfigError) as info:
        _check(_syncs(PEOPLE, ORGS), load_destination_type(kind))
    assert str(info.value).startswith(WHERE + ".references[0].as: " + kind + " has no relationships between records")
