"""What one batch does to a sheet (pure): the header, the rows found by key, the cells to write.

The sheet is a header row (field names) over one row per record. ``plan`` takes the sheet as last
read (or as kept since the last acknowledged write), applies one batch to a copy and returns the
cells that changed, grouped into rectangular ranges for one ``values:batchUpdate``, plus the row
numbers to delete. Only mapped columns are written: columns a user added by hand (notes, formulas)
are never touched, and a deleted row goes whole, so they stay next to the record they belong to.

Rules per operation (the first row whose identity cell matches is the record's row):

========  ===========================================================================
upsert    update the mapped cells of the row, or add a row at the bottom
update    update; a key not in the sheet is skipped
create    add; a key already in the sheet is skipped
append    always add a row
delete    delete the row (rows are deleted bottom-up, so the numbers stay valid); a key not
          in the sheet is acknowledged
clear     empty the mapped cells but the identity; a key not in the sheet is acknowledged
========  ===========================================================================

A record of an upsert or update whose identity changed (``previous``: record key -> the identity
cell last sent) is written to the row of its old identity, the new one included, so the sheet keeps
one row per record; if another row already has the new identity the record is rejected, never
merged into that row. A record with no row under its old identity is written by the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.core.types import Operation
from dbt_activate.destinations.google_sheets.values import Cell, key_text

Grid = list[list[Any]]


@dataclass(frozen=True)
class CellRange:
    """A rectangle of cells to write: top-left at 0-based ``row``, ``col``."""

    row: int
    col: int
    values: list[list[Cell]]


@dataclass
class Plan:
    grid: Grid  # the sheet once the batch is applied
    writes: list[CellRange] = field(default_factory=list)
    deletes: list[int] = field(default_factory=list)  # 0-based row numbers, descending
    skipped: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)

    @property
    def rows_needed(self) -> int:
        return max((r.row + len(r.values) for r in self.writes), default=0)

    @property
    def cols_needed(self) -> int:
        return max((r.col + len(r.values[0]) for r in self.writes if r.values), default=0)


def column_letters(index: int) -> str:
    """0 -> ``A``, 25 -> ``Z``, 26 -> ``AA``."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def quote_sheet(title: str) -> str:
    """A sheet name as A1 notation wants it: in single quotes, inner quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


def a1_range(title: str, cells: CellRange) -> str:
    rows, cols = len(cells.values), len(cells.values[0]) if cells.values else 1
    start = f"{column_letters(cells.col)}{cells.row + 1}"
    end = f"{column_letters(cells.col + cols - 1)}{cells.row + rows}"
    return f"{quote_sheet(title)}!{start}:{end}"


def plan(grid: Grid, fields: Sequence[str], identity: str, operation: Operation,
         records: Sequence[tuple[str, Mapping[str, Cell]]], previous: Mapping[str, Cell] | None = None) -> Plan:
    """Apply ``records`` (key, cells by field) to a copy of ``grid``; see the module docstring."""
    rows = [list(r) for r in grid]
    dirty: set[tuple[int, int]] = set()
    if not rows:
        rows.append([])
    header = rows[0]
    columns = _columns(header, fields, dirty)
    id_col = columns[identity]
    index = _key_index(rows, id_col)
    result = Plan(grid=rows)
    doomed: set[int] = set()
    moves = previous if previous and operation in (Operation.UPSERT, Operation.UPDATE) else {}
    for key, cells in records:
        found = index.get(key_text(cells.get(identity)))
        if key in moves:
            old, new = key_text(moves[key]), key_text(cells.get(identity))
            row = index.get(old)
            if row is not None and row != found:
                if found is not None:
                    result.rejected[key] = (f"{identity} changed from {old!r} to {new!r}, which row {found + 1} of "
                                            "the sheet already has: not merged into it")
                    continue
                del index[old]
                index[new] = found = row
        if operation is Operation.DELETE:
            if found is not None:
                doomed.add(found)
            continue
        if operation is Operation.UPDATE and found is None:
            result.skipped[key] = "no row with this key in the sheet"
            continue
        if operation is Operation.CREATE and found is not None:
            result.skipped[key] = f"row {found + 1} of the sheet already has this key"
            continue
        if operation is Operation.CLEAR:
            if found is not None:
                _set(rows, dirty, found, {columns[f]: "" for f in fields if f != identity})
            continue
        new_row = found is None or operation is Operation.APPEND
        if found is None or new_row:
            found = len(rows)
            rows.append([])
            index.setdefault(key_text(cells.get(identity)), found)
        # A field left out of the record (a NULL under `nulls: keep`) keeps an existing row's cell.
        _set(rows, dirty, found, {columns[f]: cells.get(f, "") for f in fields if new_row or f in cells})
    result.deletes = sorted(doomed, reverse=True)
    for row in result.deletes:
        del rows[row]
    result.writes = _ranges(rows, dirty)  # a delete batch writes at most a new header (row 0 stays)
    return result


def _columns(header: list[Any], fields: Sequence[str], dirty: set[tuple[int, int]]) -> dict[str, int]:
    """Column of every field; fields missing from the header get a new column at its end."""
    columns: dict[str, int] = {}
    for col, name in enumerate(header):
        if isinstance(name, str) and name and name not in columns:
            columns[name] = col
    for name in fields:
        if name not in columns:
            columns[name] = len(header)
            dirty.add((0, len(header)))
            header.append(name)
    return columns


def _key_index(rows: Grid, id_col: int) -> dict[str, int]:
    index: dict[str, int] = {}
    for number in range(1, len(rows)):
        row = rows[number]
        if id_col < len(row):
            text = key_text(row[id_col])
            if text:
                index.setdefault(text, number)
    return index


def _set(rows: Grid, dirty: set[tuple[int, int]], number: int, cells: Mapping[int, Cell]) -> None:
    row = rows[number]
    for col, value in cells.items():
        if len(row) <= col:
            row.extend([""] * (col + 1 - len(row)))
        if row[col] != value or (number, col) in dirty or type(row[col]) is not type(value):
            row[col] = value
            dirty.add((number, col))


def _ranges(rows: Grid, dirty: set[tuple[int, int]]) -> list[CellRange]:
    """Dirty cells as few rectangles: runs of columns per row, then equal runs of adjacent rows."""
    runs: dict[int, list[tuple[int, int]]] = {}
    for number in sorted({r for r, _ in dirty}):
        cols = sorted(c for r, c in dirty if r == number)
        spans: list[tuple[int, int]] = []
        for col in cols:
            if spans and spans[-1][1] == col:
                spans[-1] = (spans[-1][0], col + 1)
            else:
                spans.append((col, col + 1))
        runs[number] = spans
    ranges: list[CellRange] = []
    open_blocks: dict[tuple[int, int], CellRange] = {}
    for number in sorted(runs):
        still_open: dict[tuple[int, int], CellRange] = {}
        for start, end in runs[number]:
            values = [rows[number][c] for c in range(start, end)]
            block = open_blocks.get((start, end))
            if block is not None and block.row + len(block.values) == number:
                block.values.append(values)
            else:
                block = CellRange(number, start, [values])
                ranges.append(block)
            still_open[(start, end)] = block
        open_blocks = still_open
    return ranges
