"""Pipedrive field names -> v2 properties and custom-field keys, and value formatting (pure)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from dbt_activate.destinations.pipedrive.fields import (
    FieldTarget,
    FormatError,
    build_body,
    clear_body,
    needs_definitions,
    resolve,
)
from dbt_activate.destinations.pipedrive.ids import term
from dbt_activate.errors import ConfigError

TIER_KEY = "a" * 40
SKILLS_KEY = "b" * 40
DEFINITIONS: list[dict[str, Any]] = [
    {"key": "name", "name": "Name", "field_type": "varchar"},
    {"key": "email", "name": "Email", "field_type": "varchar"},
    {"key": "org_id", "name": "Organization", "field_type": "org"},
    {"key": TIER_KEY, "name": "Tier", "field_type": "enum", "options": [{"id": 7, "label": "Gold"},
                                                                      {"id": 8, "label": "Silver"}]},
    {"key": SKILLS_KEY, "name": "Skills", "field_type": "set", "options": [{"id": 11, "label": "Drift"},
                                                                          {"id": 12, "label": "Rally"}]},
    {"key": "c" * 40, "name": "Licensed on", "field_type": "date"},
    {"key": "d" * 40, "name": "score", "field_type": "double"},
    {"key": "e" * 40, "name": "Score", "field_type": "double"},
]


def _targets(*names: str) -> dict[str, FieldTarget]:
    return resolve("persons", list(names), DEFINITIONS, where="sync: fields")


def test_v2_properties_and_aliases_need_no_field_definitions() -> None:
    assert not needs_definitions("persons", ["name", "email", "phone", "org_id", "label_ids"])
    assert not needs_definitions("deals", ["title", "value", "expected_close_date"])
    assert needs_definitions("persons", ["name", "Tier"])
    assert needs_definitions("deals", ["name"])  # deals have a title, not a name


def test_names_resolve_to_properties_and_custom_keys() -> None:
    targets = _targets("email", "Tier", "Organization", TIER_KEY, "licensed ON")
    assert (targets["email"].prop, targets["email"].custom) == ("emails", False)
    assert (targets["Tier"].prop, targets["Tier"].custom, targets["Tier"].field_type) == (TIER_KEY, True, "enum")
    assert targets["Organization"].prop == "org_id"  # a built-in field by its display name
    assert targets[TIER_KEY].prop == TIER_KEY  # a custom field by its key
    assert targets["licensed ON"].prop == "c" * 40  # case-insensitive when only one field matches


def test_an_unknown_name_is_a_config_error_naming_the_field_and_the_object() -> None:
    with pytest.raises(ConfigError) as info:
        _targets("name", "Favourite colour")
    message = str(info.value)
    assert message.startswith("sync: fields: ")
    assert "Pipedrive persons have no field 'Favourite colour'" in message
    assert "custom fields: Licensed on, Score, Skills, Tier, score" in message


def test_an_ambiguous_case_insensitive_name_is_not_guessed() -> None:
    assert _targets("Score")["Score"].prop == "e" * 40  # exact spelling wins
    with pytest.raises(ConfigError, match="no field 'SCORE'"):
        _targets("SCORE")


def test_body_puts_custom_fields_under_their_keys() -> None:
    targets = _targets("name", "email", "phone", "Tier", "Skills", "Licensed on", "org_id")
    body = build_body(targets, {
        "name": "Ada Lovelace", "email": "ada@example.com", "phone": ["+44 1", "+44 2"], "Tier": "gold",
        "Skills": "Rally, drift", "Licensed on": dt.datetime(2024, 5, 1, 23, 30), "org_id": Decimal("12"),
    })
    assert body == {
        "name": "Ada Lovelace",
        "emails": [{"value": "ada@example.com", "primary": True, "label": "work"}],
        "phones": [{"value": "+44 1", "primary": True, "label": "work"},
                   {"value": "+44 2", "primary": False, "label": "work"}],
        "org_id": 12,
        "custom_fields": {TIER_KEY: 7, SKILLS_KEY: [12, 11], "c" * 40: "2024-05-01"},
    }


@pytest.mark.parametrize(("entity", "name", "value", "expected"), [
    ("deals", "value", Decimal("1234.50"), 1234.5),
    ("deals", "value", "99", 99),
    ("deals", "expected_close_date", dt.date(2026, 1, 31), "2026-01-31"),
    ("deals", "expected_close_date", "2026-01-31T10:00:00", "2026-01-31"),
    ("deals", "won_time", dt.datetime(2026, 1, 31, 10, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
     "2026-01-31T08:05:00Z"),
    ("deals", "won_time", dt.datetime(2026, 1, 31, 10, 5), "2026-01-31T10:05:00Z"),
    ("deals", "person_id", "17", 17),
    ("deals", "label_ids", "1,2", [1, 2]),
    ("deals", "is_archived", False, False),
    ("deals", "title", 42, "42"),
    ("organizations", "address", "1 Main St", {"value": "1 Main St"}),
    ("persons", "email", None, []),
    ("deals", "probability", None, None),  # nullable in the spec
    ("persons", "name", True, "true"),
])
def test_standard_values_follow_the_v2_spec(entity: str, name: str, value: Any, expected: Any) -> None:
    targets = resolve(entity, [name], [], where="w")
    assert build_body(targets, {name: value}) == {targets[name].prop: expected}


@pytest.mark.parametrize(("entity", "name"), [
    ("persons", "owner_id"), ("persons", "org_id"), ("persons", "visible_to"), ("persons", "name"),
    ("organizations", "address"), ("deals", "value"), ("deals", "currency"), ("deals", "expected_close_date"),
    ("deals", "org_id"), ("deals", "status"),
])
def test_a_null_is_left_out_where_the_v2_spec_forbids_null(entity: str, name: str) -> None:
    """nulls: clear on a property the spec does not make nullable: Pipedrive keeps its value."""
    targets = resolve(entity, [name], [], where="w")
    assert build_body(targets, {name: None}) == {}


@pytest.mark.parametrize(("name", "value", "reason"), [
    ("Tier", "Bronze", "'Bronze' is not an option (options: Gold, Silver)"),
    ("Tier", True, "is not an option"),
    ("org_id", "acme", "expects an integer id, got 'acme'"),
    ("org_id", 1.5, "expects an integer id"),
    ("Score", float("nan"), "not a JSON number"),
    ("Score", "lots", "expects a number, got 'lots'"),
    ("Licensed on", "yesterday", "Invalid isoformat"),
])
def test_values_without_a_pipedrive_form_name_the_field(name: str, value: Any, reason: str) -> None:
    with pytest.raises(FormatError) as info:
        build_body(_targets(name), {name: value})
    assert str(info.value).startswith(f"field {name!r}")
    assert reason in str(info.value)


def test_an_option_id_is_accepted_as_is() -> None:
    assert build_body(_targets("Tier"), {"Tier": 8}) == {"custom_fields": {TIER_KEY: 8}}
    assert build_body(_targets("Tier"), {"Tier": "8"}) == {"custom_fields": {TIER_KEY: 8}}


def test_clear_empties_what_the_spec_lets_be_empty_and_keeps_the_rest() -> None:
    targets = _targets("name", "phone", "Tier", "org_id", "owner_id", "visible_to", "label_ids")
    assert clear_body("persons", targets.values()) == {
        "phones": [], "label_ids": [], "custom_fields": {TIER_KEY: None}}
    deal = resolve("deals", ["title", "value", "currency", "expected_close_date", "owner_id", "org_id",
                             "probability", "lost_reason", "close_time"], [], where="w")
    assert clear_body("deals", deal.values()) == {"probability": None, "lost_reason": None, "close_time": None}


def test_search_terms() -> None:
    assert term(" ada@example.com ") == "ada@example.com"
    assert term(["first@example.com", "second@example.com"]) == "first@example.com"
    assert term(Decimal("10.50")) == "10.5"
    assert term(dt.date(2024, 5, 1)) == "2024-05-01"
    assert term(None) == ""
