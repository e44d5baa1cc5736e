"""Snowflake through dbt-snowflake (snowflake-connector-python).

Identifiers: unquoted names are stored upper-case and a quoted name matches only its exact case
(https://docs.snowflake.com/en/sql-reference/identifiers-syntax). dbt-snowflake creates models and
columns unquoted, so columns are quoted exactly as ``information_schema.columns`` spells them
(upper-case), names dbt-activate chooses (state schema, its tables) are folded to upper-case before
quoting, and a column reported in the default upper-case goes by its lower-case name outside the
warehouse (``fields: auto``), as it is written in the model's SQL and YAML.

Text rules: ``TIMESTAMP_TZ``/``TIMESTAMP_LTZ`` are converted to UTC with ``CONVERT_TIMEZONE('UTC', …)``
and every timestamp and date is formatted explicitly, because ``cast(… as varchar)`` follows the
session's ``*_OUTPUT_FORMAT`` parameters; ``VARIANT``/``OBJECT``/``ARRAY`` render as ``TO_JSON``. The
fingerprint is one ``MD5_HEX`` a row over length-prefixed texts (as DuckDB's and PostgreSQL's).

Driver: dbt-snowflake opens its handle with autocommit on, so a state write opens its transaction
with ``BEGIN`` (DML only inside: Snowflake commits a transaction at any DDL). Every statement of
dbt-activate runs with the connector's ``timeout`` (``cursor.execute(…, timeout=N)``, which cancels
the query after N seconds: https://docs.snowflake.com/en/developer-guide/python-connector/python-connector-api),
``DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS`` (default 3600), so a hung statement cannot block a run
forever. Results are read with ``fetchmany``, which downloads the result's chunks as it goes. There
is no ``LOCK TABLE``: the per-sync lock is a conditional ``MERGE`` (state/locks.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from dbt_activate.errors import ConfigError
from dbt_activate.warehouse.dialect import BOOLEAN, TIMESTAMP, TIMESTAMPTZ, Column, Dialect

DEFAULT_STATEMENT_TIMEOUT = 3600
_FORMAT = "'YYYY-MM-DD\"T\"HH24:MI:SS.FF6'"
_UPPER_IDENT = re.compile(r"^[A-Z_][A-Z0-9_$]*$")
_SEMI_STRUCTURED = ("variant", "object", "array")


def statement_timeout() -> int:
    raw = os.environ.get("DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS", str(DEFAULT_STATEMENT_TIMEOUT))
    try:
        seconds = int(raw)
    except ValueError:
        seconds = 0
    if seconds <= 0:
        raise ConfigError(f"DBT_ACTIVATE_STATEMENT_TIMEOUT_SECONDS must be a positive whole number of "
                          f"seconds, not {raw!r}")
    return seconds


@dataclass(frozen=True)
class SnowflakeDialect(Dialect):
    name: ClassVar[str] = "snowflake"
    # https://docs.snowflake.com/en/sql-reference/transactions: "each DDL statement executes as its own
    # transaction" and commits one that is open.
    transactional_ddl: ClassVar[bool] = False
    statement_timeout: int = field(default_factory=statement_timeout)

    def fold(self, identifier: str) -> str:
        return identifier.upper()

    def field_name(self, column: str) -> str:
        # A column created unquoted is reported upper-case; users wrote it (and expect it) lower-case.
        return column.lower() if _UPPER_IDENT.match(column) else column

    def text_of(self, column_sql: str, kind: str, data_type: str) -> str:
        if kind == BOOLEAN:
            return super().text_of(column_sql, kind, data_type)
        if kind == TIMESTAMPTZ:
            return f"to_char(convert_timezone('UTC', {column_sql}), {_FORMAT})"
        if kind == TIMESTAMP:
            return f"to_char({column_sql}, {_FORMAT})"
        if data_type == "date":
            return f"to_char({column_sql}, 'YYYY-MM-DD')"
        if data_type in _SEMI_STRUCTURED:
            return f"to_json({column_sql})"
        return f"cast({column_sql} as varchar)"

    def fingerprint(self, columns: Sequence[Column], prefix: str = "") -> str:
        """One MD5_HEX a row over each text prefixed by its length and ':' ('-:' for null)."""
        texts = [self.normalized(f"{prefix}{self.quote(c.name)}", c.data_type) for c in columns]
        pieces = [f"coalesce(cast(length({t}) as varchar), '-') || ':' || coalesce({t}, '')" for t in texts]
        return f"md5_hex({' || '.join(pieces)})"

    # --- driver --------------------------------------------------------------------------------------

    def begin(self, handle: Any) -> None:
        self.execute(handle.cursor(), "begin")

    def execute(self, cursor: Any, sql: str, params: Sequence[Any] = ()) -> None:
        if params:
            cursor.execute(sql, tuple(params), timeout=self.statement_timeout)
        else:
            cursor.execute(sql, timeout=self.statement_timeout)
