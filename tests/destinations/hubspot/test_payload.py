"""HubSpot value formatting: a table of warehouse values and the strings HubSpot is sent."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbt_activate.destinations.hubspot.payload import (
    UnformattableValue,
    date_ms,
    datetime_ms,
    format_properties,
    format_value,
)

UTC = dt.timezone.utc
PARIS_SUMMER = dt.timezone(dt.timedelta(hours=2))


class Tier(str, enum.Enum):
    GOLD = "gold"


class Level(enum.IntEnum):
    HIGH = 3


VALUES: list[tuple[Any, str | None]] = [
    (None, None),
    ("Ada", "Ada"),
    ("", ""),
    (True, "true"),
    (False, "false"),
    (0, "0"),
    (-42, "-42"),
    (10**30, "1000000000000000000000000000000"),
    (1.5, "1.5"),
    (0.1, "0.1"),
    (3.0, "3.0"),
    (1e20, "100000000000000000000"),
    (1.5e-7, "0.00000015"),
    (Decimal("1234.50"), "1234.50"),
    (Decimal("1E+3"), "1000"),
    # HubSpot's timestamp FAQ: 1430438400000 is 2015-05-01 at midnight UTC.
    (dt.date(2015, 5, 1), "1430438400000"),
    (dt.date(1969, 12, 31), "-86400000"),
    (dt.datetime(2015, 5, 1), "1430438400000"),  # naive = UTC
    (dt.datetime(2015, 5, 1, 12, 30, 15, 123456), "1430483415123"),  # microseconds dropped
    (dt.datetime(2015, 5, 1, 2, 0, tzinfo=PARIS_SUMMER), "1430438400000"),
    (dt.datetime(2015, 5, 1, tzinfo=UTC), "1430438400000"),
    (dt.time(9, 30), "09:30:00"),
    (dt.timedelta(days=1, seconds=5), "P1DT5S"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "12345678-1234-5678-1234-567812345678"),
    (b"\x00\xff", "AP8="),
    (["chocolate", "strawberry"], "chocolate;strawberry"),
    (("a", None, "b"), "a;b"),
    ({"vanilla", "chocolate"}, "chocolate;vanilla"),
    ([], ""),
    ([1, True, dt.date(2015, 5, 1)], "1;true;1430438400000"),
    ({"plan": "pro", "seats": 3}, '{"plan":"pro","seats":3}'),
    (Tier.GOLD, "gold"),
    (Level.HIGH, "3"),
]


@pytest.mark.parametrize(("value", "expected"), VALUES)
def test_values_become_hubspot_strings(value: Any, expected: str | None) -> None:
    assert format_value(value) == expected


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), Decimal("NaN"), Decimal("-Infinity")])
def test_non_finite_numbers_are_refused(value: Any) -> None:
    with pytest.raises(UnformattableValue, match="not a number HubSpot can store"):
        format_value(value)


def test_a_multi_checkbox_item_holding_the_separator_is_refused() -> None:
    with pytest.raises(UnformattableValue, match="contains ';'"):
        format_value(["a;b", "c"])


def test_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(UnformattableValue, match="type object"):
        format_value(object())


def test_dates_are_whole_days_in_milliseconds() -> None:
    assert date_ms(dt.date(1970, 1, 2)) == 86_400_000
    assert date_ms(dt.date(2024, 2, 29)) % 86_400_000 == 0
    assert datetime_ms(dt.datetime(1970, 1, 1, 0, 0, 0, 999)) == 0
    assert datetime_ms(dt.datetime(1969, 12, 31, 23, 59, 59, 999_500)) == -1


def test_properties_omit_nulls_by_default_so_hubspot_keeps_its_value() -> None:
    values = {"email": "a@x.io", "firstname": None, "score": 2}
    assert format_properties(values) == {"email": "a@x.io", "score": "2"}
    assert format_properties(values, clear_nulls=True) == {"email": "a@x.io", "firstname": "", "score": "2"}
    assert format_properties(values, exclude="email") == {"score": "2"}


def test_the_error_names_the_field() -> None:
    with pytest.raises(UnformattableValue, match="field 'score': nan"):
        format_properties({"email": "a@x.io", "score": float("nan")})


class _NoOffset(dt.tzinfo):
    """A time zone that does not know its offset: the timestamp is read as UTC, like a naive one."""

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta | None:
        return None


def test_properties_are_format_value_for_every_type_in_the_order_of_the_fields() -> None:
    # format_properties inlines format_value for the common types (for speed): the strings must be the same.
    values = {f"f{i}": value for i, (value, _) in enumerate(VALUES)}
    values.update(early=dt.datetime(1, 1, 1), late=dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
                  before=dt.datetime(1969, 12, 31, 23, 59, 59, 999_500),
                  unknown=dt.datetime(2015, 5, 1, 1, tzinfo=_NoOffset()),
                  west=dt.datetime(2015, 5, 1, 1, tzinfo=dt.timezone(-dt.timedelta(hours=9, minutes=30))),
                  first=dt.date(1, 1, 1), cents=Decimal("-0.000001"), big=Decimal("1.5E+30"),
                  tiny=Decimal("1E-7"), zero=Decimal("-0.00"), whole=Decimal("0E+3"))
    # str(): what format_properties always did with format_value's answer (a str enum member is its str()).
    expected = {name: None if value is None else str(format_value(value)) for name, value in values.items()}
    assert list(format_properties(values).items()) == [(k, v) for k, v in expected.items() if v is not None]
    cleared = format_properties(values, clear_nulls=True, exclude="f3")
    assert list(cleared.items()) == [(k, "" if v is None else v) for k, v in expected.items() if k != "f3"]
    assert format_properties({"id": float("nan"), "a": None}, exclude="id") == {}  # never formatted


_OFFSETS = st.builds(dt.timezone, st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59),
                                                max_value=dt.timedelta(hours=23, minutes=59)))


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.datetimes(), st.datetimes(timezones=_OFFSETS), st.dates(), st.integers(),
                 st.decimals(allow_nan=False, allow_infinity=False), st.booleans()))
def test_every_datetime_date_number_and_boolean_is_sent_as_format_value_writes_it(value: Any) -> None:
    assert format_properties({"v": value}) == {"v": format_value(value)}
