"""The two number rules of core/values.py that several codecs share: ``double_or_text`` (a decimal as
the number a double holds exactly, else text with every digit) and ``as_number`` (what a vendor's
number field accepts: numbers, numeric text read exactly; never a boolean)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from dbt_activate.core.values import MAX_EXACT_INT, RejectedValue, as_number, double_or_text


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("42"), 42),
    (Decimal("42.000"), 42),
    (Decimal("-0.5"), -0.5),
    (Decimal("0.1"), 0.1),  # repr(0.1) is "0.1": the double holds the written digits
    (Decimal(MAX_EXACT_INT), MAX_EXACT_INT),
    (Decimal(MAX_EXACT_INT + 1), str(MAX_EXACT_INT + 1)),  # past 2**53 a double may round: text
    (Decimal("12345678901234567890.01"), "12345678901234567890.01"),
    (Decimal("0.12345678901234567890"), "0.12345678901234567890"),
])
def test_a_decimal_is_the_number_a_double_holds_exactly_else_text(value: Decimal, expected: Any) -> None:
    converted = double_or_text(value, "is not a JSON number")
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_a_decimal_that_is_no_number_is_refused_with_the_callers_words(value: Decimal) -> None:
    with pytest.raises(RejectedValue, match=rf"^decimal {value} cannot be written to a cell$"):
        double_or_text(value, "cannot be written to a cell")


@pytest.mark.parametrize(("value", "expected"), [
    (7, 7),
    (2.5, 2.5),
    (Decimal("1.10"), Decimal("1.10")),
    (" 12.50 ", Decimal("12.50")),  # numeric text read exactly, spaces around it ignored
    ("1e3", Decimal("1E+3")),
    ("NaN", Decimal("NaN")),  # a number here: each vendor says why it refuses it
    (True, None),  # Python counts True as 1; no vendor does
    ("twelve", None),
    ("", None),
    (None, None),
    ([1], None),
])
def test_what_a_vendors_number_field_accepts(value: Any, expected: Any) -> None:
    number = as_number(value)
    if isinstance(expected, Decimal) and expected.is_nan():
        assert isinstance(number, Decimal) and number.is_nan()
    else:
        assert number == expected and type(number) is type(expected)
