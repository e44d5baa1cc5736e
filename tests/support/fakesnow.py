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

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fakesnow_server() -> Iterator[int]:
    """Start ``fakesnow -s`` on a free port; yield the port; stop it."""
    port = free_port()
    proc = subprocess.Popen([str(_BIN / "fakesnow"), "-s", "--host", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"fakesnow did not start on port {port} (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
