"""dbt-bigquery's ``google.cloud.bigquery.Client`` behind the cursor the rest of dbt-activate uses.

dbt-bigquery's connection handle is the Client itself, not a DB-API connection (it has no
``cursor()``). ``BigQueryConnection`` gives connection.py what it expects: ``cursor()`` with
``execute``/``fetchall``/``fetchmany``, ``load_csv`` and ``close``. Each statement is one query job
(``client.query``) in the profile's location, labelled so its cost can be found in the billing
export (https://cloud.google.com/bigquery/docs/adding-labels#job-label), its parameters inlined as
literals (``inline_parameters``: the emulator refuses query parameters). Results are read page by page
(``result(page_size=…)``): a diff of millions of rows is never held in memory.

A mutating statement that BigQuery aborts because another one changed the same table at the same time
("Could not serialize access to table … due to concurrent update",
https://cloud.google.com/bigquery/docs/data-manipulation-language#concurrent_jobs) is run again after
a pause, as the documentation advises: two runs of different syncs write the shared state tables.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from dbt_activate.version import __version__

# Label values: lower-case letters, digits, '_' and '-' (https://cloud.google.com/bigquery/docs/labels-intro).
LABELS = {"tool": "dbt-activate", "tool_version": __version__.replace(".", "-")}
_CONCURRENT_UPDATE = "could not serialize access"
_RETRIES = 5
_DEFAULT_PAGE = 10_000
# tables.get reports the legacy names; dbt-bigquery's columns say INT64 and FLOAT64 (BigQueryColumn).
_TYPE_NAMES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "RECORD": "STRUCT"}


# The statement a cursor answers from the table's schema (bigquery_client.py); parameters as
# Dialect.columns_query: schema, table, database, database.
COLUMNS_FROM_SCHEMA = "/* dbt-activate: the columns of a table, read from its schema (tables.get) */"
# Quoted regions of a statement: backtick names, string literals ('…', "…", with backslash escapes).
_QUOTED = re.compile(r"`(?:[^`\\]|\\.)*`|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.DOTALL)


def literal(value: Any) -> str:
    """A GoogleSQL literal for a parameter value: strings escaped with backslashes
    (https://cloud.google.com/bigquery/docs/reference/standard-sql/lexical#escape_sequences), every
    control character as \\uXXXX so a value can never end the literal or the statement."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value == value and value not in (float("inf"), float("-inf")) else \
            f"cast('{value}' as float64)"
    if isinstance(value, Decimal):
        return f"numeric '{value}'"
    if isinstance(value, datetime | date):
        value = value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    text = str(value)
    out = []
    for ch in text:
        if ch in ("\\", "'", '"', "`"):
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"


def _unquoted(sql: str, change: Any) -> str:
    """``sql`` with ``change`` applied to the text outside names and literals only."""
    parts, last = [], 0
    for match in _QUOTED.finditer(sql):
        parts.append(change(sql[last:match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(change(sql[last:]))
    return "".join(parts)


def inline_parameters(sql: str, params: Sequence[Any] = (), placeholder: str = "?") -> str:
    """``sql`` with each placeholder outside names and literals replaced by its value as a literal:
    the emulator refuses query parameters (the statements themselves are BigQuery's, bigquery.py)."""
    if not params:
        return sql
    values = iter(params)

    def inline(text: str) -> str:
        pieces = text.split(placeholder)
        out = [pieces[0]]
        for piece in pieces[1:]:
            value = next(values, values)
            if value is values:
                raise ValueError(f"fewer parameters than placeholders in: {sql}")
            out += [literal(value), piece]
        return "".join(out)

    sql = _unquoted(sql, inline)
    if next(values, values) is not values:
        raise ValueError(f"more parameters than placeholders in: {sql}")
    return sql


class BigQueryCursor:
    def __init__(self, connection: BigQueryConnection) -> None:
        self._conn = connection
        self._rows: Iterator[Any] = iter(())

    def execute(self, sql: str, params: Sequence[Any] = (), *, page_size: int | None = None) -> None:
        if sql == COLUMNS_FROM_SCHEMA:
            schema, table, database = [*params, None, None, None][:3]
            self._rows = iter(self._conn.columns(str(schema), str(table), database))
            return
        self._rows = iter(self._conn.run(inline_parameters(sql, params, self._conn.placeholder), page_size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._rows]

    def fetchmany(self, size: int) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in itertools.islice(self._rows, size)]

    def fetchone(self) -> tuple[Any, ...] | None:
        row = next(self._rows, None)
        return None if row is None else tuple(row)

    def close(self) -> None:
        self._rows = iter(())


class BigQueryConnection:
    """One Client, as connection.py uses a DB-API connection."""

    def __init__(self, client: Any, placeholder: str, *, sleep: Any = time.sleep) -> None:
        self.client = client
        self.placeholder = placeholder
        self._sleep = sleep

    def cursor(self) -> BigQueryCursor:
        return BigQueryCursor(self)

    def run(self, sql: str, page_size: int | None = None) -> Any:
        """The rows of one query job (an iterator that fetches its pages as it goes)."""
        from google.cloud import bigquery

        for attempt in itertools.count():
            try:
                job = self.client.query(sql, job_config=bigquery.QueryJobConfig(labels=dict(LABELS)))
                return job.result(page_size=page_size or _DEFAULT_PAGE)
            except Exception as exc:
                if _CONCURRENT_UPDATE not in str(exc).lower() or attempt + 1 >= _RETRIES:
                    raise
                self._sleep(min(2.0 ** attempt, 30.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def columns(self, schema: str, table: str, database: str | None) -> list[tuple[str, str]]:
        """(name, data type) of a table's columns from its schema; none when it does not exist."""
        from google.api_core.exceptions import NotFound

        try:
            found = self.client.get_table(f"{database or self.client.project}.{schema}.{table}")
        except NotFound:
            return []
        return [(field.name, _type_name(field)) for field in found.schema]

    def load_csv(self, table: str, path: Path, columns: Sequence[str]) -> None:
        """Append a headerless CSV file (empty field = NULL) with a load job: no statement size limit."""
        from google.cloud import bigquery

        data = path.read_bytes()
        if not data:
            return
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.CSV, write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
            schema=[bigquery.SchemaField(c, "STRING") for c in columns], labels=dict(LABELS))
        if _has_quoted_line_breaks(data):
            # BigQuery refuses a line break inside a quoted field unless told (a rejection reason may
            # hold one); the emulator refuses the option, so it is set only when needed.
            config.allow_quoted_newlines = True
        reference = table.replace("`", "")
        if reference.count(".") == 1:
            reference = f"{self.client.project}.{reference}"
        self.client.load_table_from_file(io.BytesIO(data), reference, job_config=config).result()

    def commit(self) -> None:
        """Every statement commits on its own."""

    def rollback(self) -> None:
        """Nothing to roll back: see commit."""

    def close(self) -> None:
        self.client.close()


def _type_name(field: Any) -> str:
    name = _TYPE_NAMES.get(str(field.field_type).upper(), str(field.field_type).upper())
    return f"ARRAY<{name}>" if str(field.mode).upper() == "REPEATED" else name


def _has_quoted_line_breaks(data: bytes) -> bool:
    text = data.decode("utf-8")
    return text.count("\n") != sum(1 for _ in csv.reader(io.StringIO(text, newline="")))
