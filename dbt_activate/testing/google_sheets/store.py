"""The spreadsheets a ``GoogleSheetsEmulator`` holds: tabs as grids of cells, A1 ranges, value input.

A tab has a grid size (``rowCount`` x ``columnCount``, 1,000 x 26 when added, as in Sheets) and its
cells; a values write outside the grid is refused with Sheets' message ("Range ('T'!A1001) exceeds
grid limits. Max rows: 1000, max columns: 26"). ``RAW`` stores values as sent; ``USER_ENTERED``
parses strings as the UI would, for the cases a sync meets: numbers, ``TRUE``/``FALSE``, a leading
``'`` forcing text, and ``=…`` kept as a formula (not evaluated). Dates stay text here (Sheets would
turn them into serial numbers): the emulator does not model number formats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.testing.messages import ApiError

MAX_CELL_CHARS = 50_000
_A1 = re.compile(r"^(?:(?P<sheet>'(?:[^']|'')+'|[^'!]+)!)?(?P<start>[A-Z]*\d*)(?::(?P<end>[A-Z]*\d*))?$")
_CELL = re.compile(r"^(?P<col>[A-Z]*)(?P<row>\d*)$")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclass
class Tab:
    sheet_id: int
    title: str
    index: int
    row_count: int = 1000
    column_count: int = 26
    cells: list[list[Any]] = field(default_factory=list)  # ragged; "" and missing are empty

    def properties(self) -> dict[str, Any]:
        return {"sheetId": self.sheet_id, "title": self.title, "index": self.index, "sheetType": "GRID",
                "gridProperties": {"rowCount": self.row_count, "columnCount": self.column_count}}

    def values(self) -> list[list[Any]]:
        """Rows as the API returns them: trailing empty cells and rows left out."""
        rows = [_trim(r) for r in self.cells]
        while rows and not rows[-1]:
            rows.pop()
        return rows


@dataclass(frozen=True)
class Area:
    """A parsed A1 range: 0-based, end exclusive; ``None`` end = to the grid's edge."""

    title: str
    row: int
    col: int
    row_end: int | None
    col_end: int | None


def column_index(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + (ord(char) - ord("A") + 1)
    return number - 1


def parse_range(text: str, default_title: str | None = None) -> Area:
    """``'My tab'!A1:C3``, ``Tab!A2``, ``Tab`` (whole tab), ``Tab!A:C``; else Sheets' 400."""
    text = text.strip()
    if "!" not in text and not _CELL.match(text):  # a bare tab name: the whole tab
        bare = text[1:-1].replace("''", "'") if text.startswith("'") and text.endswith("'") else text
        return Area(bare, 0, 0, None, None)
    found = _A1.match(text)
    if found is None:
        raise ApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
    sheet = found.group("sheet")
    start, end = found.group("start") or "", found.group("end")
    title: str | None = (sheet[1:-1].replace("''", "'") if sheet and sheet.startswith("'")
                         else (sheet or default_title))
    if title is None:
        raise ApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
    first = _CELL.match(start)
    last = _CELL.match(end) if end is not None else None
    if first is None or (end is not None and last is None):
        raise ApiError(400, f"Unable to parse range: {text}", "INVALID_ARGUMENT")
    row = int(first.group("row")) - 1 if first.group("row") else 0
    col = column_index(first.group("col")) if first.group("col") else 0
    if last is None:
        # A single cell is the top-left of a write; a bare tab name is the whole tab.
        return Area(title, row, col, None, None)
    row_end = int(last.group("row")) if last.group("row") else None
    col_end = column_index(last.group("col")) + 1 if last.group("col") else None
    return Area(title, row, col, row_end, col_end)


def user_entered(value: Any) -> Any:
    """A value as Sheets stores it when typed into a cell."""
    if not isinstance(value, str):
        return value
    if value.startswith("'"):
        return value[1:]
    if value.upper() in ("TRUE", "FALSE"):
        return value.upper() == "TRUE"
    if _NUMBER.match(value.strip()):
        number = float(value)
        return int(number) if number.is_integer() and "." not in value and "e" not in value.lower() else number
    return value


def check_cell(value: Any) -> None:
    if value is not None and not isinstance(value, (str, int, float, bool)):
        raise ApiError(400, f"Invalid values: struct_value {value!r} is not a cell value", "INVALID_ARGUMENT")
    if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
        raise ApiError(400, f"Your input contains more than the maximum of {MAX_CELL_CHARS} characters in a "
                            "single cell.", "INVALID_ARGUMENT")


def write(tab: Tab, area: Area, rows: list[list[Any]], parse: bool) -> int:
    """Write ``rows`` at ``area``'s top-left; ``None`` leaves a cell as it is. Returns cells updated."""
    height = len(rows)
    width = max((len(r) for r in rows), default=0)
    if area.row + height > tab.row_count or area.col + width > tab.column_count:
        end = f"{column_letters(area.col + width - 1)}{area.row + height}"
        raise ApiError(400, f"Range ('{tab.title}'!{end}) exceeds grid limits. Max rows: {tab.row_count}, "
                            f"max columns: {tab.column_count}", "INVALID_ARGUMENT")
    if (area.row_end is not None and area.row + height > area.row_end) or (
            area.col_end is not None and area.col + width > area.col_end):
        raise ApiError(400, "Requested writing within range, but tried writing outside of it.", "INVALID_ARGUMENT")
    updated = 0
    for i, row in enumerate(rows):
        while len(tab.cells) <= area.row + i:
            tab.cells.append([])
        target = tab.cells[area.row + i]
        for j, value in enumerate(row):
            if value is None:
                continue
            col = area.col + j
            if len(target) <= col:
                target.extend([""] * (col + 1 - len(target)))
            target[col] = user_entered(value) if parse else value
            updated += 1
    return updated


def clear(tab: Tab, area: Area) -> None:
    for r in range(area.row, min(area.row_end or len(tab.cells), len(tab.cells))):
        row = tab.cells[r]
        for c in range(area.col, min(area.col_end or len(row), len(row))):
            row[c] = ""


def read(tab: Tab, area: Area) -> list[list[Any]]:
    rows = tab.values()[area.row:area.row_end]
    return [r for r in (_trim(row[area.col:area.col_end]) for row in rows)] if rows else []


def _trim(row: list[Any]) -> list[Any]:
    end = len(row)
    while end and row[end - 1] in ("", None):
        end -= 1
    return list(row[:end])


def column_letters(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
