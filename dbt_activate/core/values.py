"""How warehouse values become JSON and text, for destinations that write files or JSON columns.

Values come from the warehouse's DB-API cursor: int, float, Decimal, str, bool, date, datetime
(naive or aware), time, timedelta, UUID, bytes, and lists/dicts from DuckDB. Dates and times are
ISO 8601 (a timestamp with a time zone in UTC: ``in_utc``); Decimals are strings, so no digit is
lost to a float; NaN and infinities are refused (JSON has no such numbers, and a database would
store a value no reader expects). A value no destination format can take raises ``RejectedValue``.
"""

from __future__ import annotations

import base64
import datetime
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

T = TypeVar("T")

MAX_EXACT_INT = 2**53  # a double (JSON's number in most parsers, a Sheets cell) holds every integer up to here


class RejectedValue(ValueError):
    """A value a destination cannot be given (no JSON form, no form for the vendor's field, nothing
    to hash); the message, which names the field and never the value of a secret, is the rejection
    reason of its record. The one error every value codec raises: the JSON encoding, HubSpot's,
    Intercom's, Zendesk's and Pipedrive's formats, Google Sheets cells, PII normalisation."""


def in_utc(value: T) -> T:
    """A timestamp with a time zone moved to UTC; anything else as it is.

    DuckDB hands zoned timestamps over in the session's zone, which is the machine's: without this the
    same row would be written as ``…T06:00:00-04:00`` on one machine and ``…T10:00:00+00:00`` on another.
    """
    if isinstance(value, datetime.datetime) and value.utcoffset():
        return value.astimezone(datetime.timezone.utc)
    return value


def iso_duration(value: datetime.timedelta) -> str:
    """ISO 8601 duration in days and seconds, e.g. ``P1DT3600.5S``; ``-`` prefix when negative."""
    sign = "-" if value < datetime.timedelta(0) else ""
    value = abs(value)
    seconds = value.seconds + value.microseconds / 1_000_000
    text = f"{seconds:.6f}".rstrip("0").rstrip(".")
    return f"{sign}P{value.days}DT{text}S"


def json_default(value: Any) -> Any:
    """``default=`` for json encoders: what the json module cannot write on its own."""
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return in_utc(value).isoformat()
    if isinstance(value, Decimal):
        if value.is_finite():
            return str(value)
        raise ValueError(f"{value} is not a number JSON can hold")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime.timedelta):
        return iso_duration(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"a {type(value).__name__} value cannot be written: {value!r}")


def double_or_text(value: Decimal, refusal: str) -> int | float | str:
    """A finite decimal as the number a double holds exactly (an int when it is whole and small enough),
    else as text with every digit, so no reader rounds it; NaN and infinities raise ``RejectedValue``
    with ``refusal`` (e.g. "is not a JSON number")."""
    if not value.is_finite():
        raise RejectedValue(f"decimal {value} {refusal}")
    if value == value.to_integral_value() and abs(value) <= MAX_EXACT_INT:
        return int(value)
    as_float = float(value)
    if math.isfinite(as_float) and Decimal(repr(as_float)) == value:
        return as_float
    return str(value)


def is_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, Decimal) and not value.is_finite()


def as_number(value: Any) -> int | float | Decimal | None:
    """``value`` for a vendor's number field: a number as it is, numeric text read exactly (a Decimal,
    surrounding spaces ignored); None for anything else, a boolean too (Python counts True as 1, no
    vendor does). NaN and infinities are numbers here: each vendor says why it refuses them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except ArithmeticError:  # decimal.InvalidOperation: not numeric text
            return None
    return value if isinstance(value, (int, float, Decimal)) else None


def rejection_reason(values: Mapping[str, Any], exc: Exception) -> str:
    """Why a record could not be encoded, naming the field when it is a NaN or an infinity."""
    for name, value in values.items():
        if is_nonfinite(value):
            return f"field {name!r} is {value}: NaN and infinite numbers cannot be written"
    return f"cannot encode record: {exc}"
