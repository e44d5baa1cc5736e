"""Reading Salesforce's answers back onto records, and the SOQL that finds record Ids (pure).

sObject Collections answer one result per record, in request order
(``[{"id", "success", "errors": [{"statusCode", "message", "fields"}]}]``), so results map back to
records by position; a list of another length cannot be matched and fails the batch. Bulk API
results are CSV rows carrying the original columns, so they map back by the external id column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from dbt_activate.destinations.api import clip_reason

# Well under SOQL's 100,000 characters and the REST URI limit (16,384), since lookups are GETs.
MAX_IN_LIST_CHARS = 8_000
MAX_IN_LIST_VALUES = 200


@dataclass(frozen=True)
class ItemResult:
    success: bool
    record_id: str | None
    codes: tuple[str, ...]  # statusCode of every error
    reason: str  # "" when success


def item_results(data: Any, expected: int) -> list[ItemResult]:
    """Parse a Collections response; ``ValueError`` when it is not one result per record."""
    if not isinstance(data, list) or len(data) != expected:
        got = f"{len(data)} results" if isinstance(data, list) else f"a {type(data).__name__}"
        raise ValueError(f"expected {expected} results in request order, got {got}")
    results = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("success"), bool):
            raise ValueError(f"unreadable result item: {str(item)[:200]}")
        errors = [e for e in item.get("errors") or [] if isinstance(e, dict)]
        results.append(ItemResult(item["success"], item.get("id") or None,
                                  tuple(str(e.get("statusCode") or "") for e in errors),
                                  "" if item["success"] else reason_of(errors)))
    return results


def reason_of(errors: Sequence[Mapping[str, Any]]) -> str:
    """``STRING_TOO_LONG: Last Name: data value too large … (fields: LastName)``, errors joined by ``; ``."""
    if not errors:
        return "Salesforce refused the record without saying why"
    parts = []
    for e in errors:
        text = f"{e.get('statusCode') or 'ERROR'}: {e.get('message') or ''}".rstrip(": ")
        fields = [str(f) for f in e.get("fields") or []]
        parts.append(f"{text} (fields: {', '.join(fields)})" if fields else text)
    return clip_reason("; ".join(parts))


def bulk_reason(sf_error: str) -> str:
    """``CODE:message:fields --`` (Bulk API failedResults) as ``CODE: message (fields: …)``."""
    text = sf_error.strip().removesuffix("--").strip()
    code, _, rest = text.partition(":")
    message, _, fields = rest.rpartition(":")
    if not message or " " in fields.strip():  # no field list: the last colon belongs to the message
        message, fields = rest, ""
    reason = f"{code}: {message.strip()}".rstrip(": ") if code else "Salesforce refused the record"
    return clip_reason(f"{reason} (fields: {fields.strip()})" if fields.strip() else reason)


def csv_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of a Bulk API result CSV."""
    rows = list(csv.reader(io.StringIO(text)))
    return (rows[0], rows[1:]) if rows else ([], [])


def lookup_key(value: Any) -> str:
    """How Salesforce compares match values: text ignoring case, numbers by value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        try:
            return format(Decimal(str(value)).normalize(), "f")
        except InvalidOperation:
            return str(value)
    return str(value).casefold()


def soql_literal(value: Any, numeric: bool) -> str | None:
    """``value`` as a SOQL literal; None when a number field is matched with something else."""
    if numeric:
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return None
        return format(number, "f") if number.is_finite() else None
    text = str(value)
    for char, escaped in (("\\", "\\\\"), ("'", "\\'"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"),
                          ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f")):
        text = text.replace(char, escaped)
    return f"'{text}'"


def lookup_queries(sobject: str, field: str, values: Iterable[Any], numeric: bool) -> list[str]:
    """``SELECT Id, <field> FROM <sobject> WHERE <field> IN (…)`` in chunks that fit a GET."""
    prefix = f"SELECT Id, {field} FROM {sobject} WHERE {field} IN ("
    queries: list[str] = []
    chunk: list[str] = []
    size = 0
    for value in dict.fromkeys(values):
        literal = soql_literal(value, numeric)
        if literal is None:
            continue
        if chunk and (len(chunk) >= MAX_IN_LIST_VALUES or size + len(literal) + 1 > MAX_IN_LIST_CHARS):
            queries.append(prefix + ",".join(chunk) + ")")
            chunk, size = [], 0
        chunk.append(literal)
        size += len(literal) + 1
    if chunk:
        queries.append(prefix + ",".join(chunk) + ")")
    return queries
