"""Counted nouns and "did you mean" suggestions for error messages."""

from __future__ import annotations

import pytest

from dbt_activate.core.wording import closest, did_you_mean, plural


@pytest.mark.parametrize(("count", "noun", "expected"), [
    (1, "request", "1 request"), (0, "request", "0 requests"), (100, "request", "100 requests"),
    (1_000, "row", "1,000 rows"), (2, "entry", "2 entries"),
])
def test_plural(count: int, noun: str, expected: str) -> None:
    assert plural(count, noun, "entries" if noun == "entry" else None) == expected


@pytest.mark.parametrize(("word", "choices", "expected"), [
    ("upsrt", ["upsert", "update", "create", "append", "mirror"], "upsert"),
    ("emial", ["customer_id", "email", "full_name"], "email"),
    ("EMAIL", ["customer_id", "email"], "email"),  # a case slip
    ("nosuchmodel", ["customers", "orders"], None),
])
def test_closest(word: str, choices: list[str], expected: str | None) -> None:
    assert closest(word, choices) == expected


def test_did_you_mean_is_a_suffix_or_nothing() -> None:
    assert did_you_mean("primary_kye", ["primary_key", "fields"]) == "; did you mean 'primary_key'?"
    assert did_you_mean("zzz", ["primary_key"]) == ""
    assert did_you_mean(3, ["primary_key"]) == ""
