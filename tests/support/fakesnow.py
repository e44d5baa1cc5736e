"""Snowflake for tests: fakesnow's server (https://github.com/tekumara/fakesnow), a DuckDB-backed
emulation of Snowflake's HTTP API that the real ``snowflake-connector-python`` and dbt-snowflake talk
to, started on a free port of 127.0.0.1.

An emulator, not the service. What it does not do like Snowflake (measured with fakesnow 0.12.1):

- quoted identifiers match case-insensitively (``"customer_id"`` finds ``CUSTOMER_ID``); Snowflake
  matches a quoted name exactly, so the quoting rule is unit-tested on its own
  (tests/warehouse/test_snowflake.py);
- ``TO_CHAR`` of a ``TIMESTAMP_NTZ`` column ignores the format (DuckDB's cast text comes back);
  ``DESCRIBE TABLE`` (dbt's ``get_columns_in_relation``) finds nothing in a schema named ``main``;
  ``ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS`` is refused; a transaction that created a schema
  cannot create a table (Snowflake commits at every DDL anyway);
- ``hash(1, 'a')`` crashes the server (HTTP 500), and the connector retries for minutes unless the
  statement has a timeout; dbt's incremental ``merge`` fails, so test models are tables.

``connect()`` opens a connector connection the way dbt-snowflake does (autocommit on);
``profile_output()`` is the dbt-snowflake target for a database.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import servers

_BIN = Path(sys.executable).parent


@contextmanager
def fakesnow_server() -> Iterator[int]:
    """Start ``fakesnow -s`` on a free port; yield the port; stop it."""
    port = servers.free_port()
    with servers.serving("fakesnow", [str(_BIN / "fakesnow"), "-s", "--host", "127.0.0.1", "-p", str(port)], port):
        yield port


def profile_output(port: int, database: str, schema: str = "analytics") -> dict[str, Any]:
    return {"type": "snowflake", "account": "fakesnow", "user": "fake", "password": "snow", "host": "localhost",
            "port": port, "protocol": "http", "database": database, "schema": schema, "warehouse": "wh",
            "threads": 1, "connect_retries": 0}


def connect(port: int, database: str, schema: str = "analytics") -> Any:
    import snowflake.connector

    return snowflake.connector.connect(account="fakesnow", user="fake", password="snow", host="localhost",
                                       port=port, protocol="http", database=database, schema=schema,
                                       warehouse="wh", autocommit=True, network_timeout=60, login_timeout=30)


def query(port: int, database: str, sql: str) -> list[tuple[Any, ...]]:
    conn = connect(port, database)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()]
    finally:
        conn.close()
