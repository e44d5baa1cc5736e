"""Warehouse values -> Google Sheets cell values (pure).

Cells are written with ``valueInputOption=RAW`` by default, so a cell holds exactly what the model
holds: a string that looks like a number, a date or a formula (``=HYPERLINK(…)``, ``+1 555…``,
``00123``) stays text. ``USER_ENTERED`` parses strings as if typed into the UI (formulas run,
``2024-05-01`` becomes a date, ``00123`` becomes 123), which is what a user wants for dates but
lets any value in the model become a formula; it is an opt-in (``value_input: user_entered``).

=====================  =============================================================
warehouse value        cell
=====================  =============================================================
NULL                   ``""`` (the cell is emptied); under the sync's ``nulls: keep`` (the
                       default) the pipeline leaves NULLs out and an existing row's cell
                       keeps its value (``google_sheets_grid.plan``)
boolean                ``true``/``false`` (a checkbox-able boolean)
integer                number when a double holds it exactly (|n| <= 2**53); else text,
                       so a 19-digit id is not rounded to 15 significant digits
float                  number; NaN and ±Infinity reject the record
decimal                number when a double holds it to its written digits, else text
date                   ``2024-05-01``
timestamp              ``2024-05-01 12:00:00`` (``+00:00`` when it has a time zone):
                       the form Sheets parses as a date-time under USER_ENTERED
time, interval         ``12:00:00``; ISO 8601 duration ``P1DT3600S``
uuid                   text
binary                 base64 text
array, struct, json    compact JSON text
=====================  =============================================================

Sheets refuses a cell over 50,000 characters and the whole request with it; such a record is
rejected here, before sending, with the field named, so the rest of the batch still lands.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from dbt_activate.core.values import MAX_EXACT_INT, RejectedValue, double_or_text, iso_duration, json_default

MAX_CELL_CHARS = 50_000  # Sheets' per-cell limit (developers.google.com/workspace/sheets/api/limits)

Cell = str | int | float | bool


UnwritableValue = RejectedValue  # a value no cell can hold


def cell_value(value: Any) -> Cell:
    if value is None:
        return ""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value) if abs(value) <= MAX_EXACT_INT else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise UnwritableValue(f"{value} cannot be written to a cell (NaN and infinities are refused)")
        return value
    if isinstance(value, Decimal):
        return double_or_text(value, "cannot be written to a cell")
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return iso_duration(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, Sequence, set, frozenset)):
        try:
            return json.dumps(value, default=json_default, ensure_ascii=False, separators=(",", ":"),
                              allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise UnwritableValue(f"cannot be written as JSON text: {exc}") from None
    raise UnwritableValue(f"values of type {type(value).__name__} cannot be written to a cell")


def row_cells(values: Mapping[str, Any]) -> dict[str, Cell]:
    """One record's cells by field; the error names the field (the record's rejection reason)."""
    cells: dict[str, Cell] = {}
    for name, value in values.items():
        try:
            cell = cell_value(value)
        except UnwritableValue as exc:
            raise UnwritableValue(f"field {name!r}: {exc}") from None
        if isinstance(cell, str) and len(cell) > MAX_CELL_CHARS:
            raise UnwritableValue(f"field {name!r} has {len(cell):,} characters; a Google Sheets cell holds at "
                                  f"most {MAX_CELL_CHARS:,}")
        cells[name] = cell
    return cells


def key_text(cell: Any) -> str:
    """How an identity cell is compared: ``42``, ``42.0`` (read back as a number) and ``"42"`` match."""
    if isinstance(cell, bool):
        return "TRUE" if cell else "FALSE"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return "" if cell is None else str(cell)
