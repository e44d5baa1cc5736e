"""The ``mysql`` destination against the local MariaDB (127.0.0.1:3306), one fresh database per test."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from dbt_activate.core.types import Record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.mysql.destination import MySQLDestination
from tests.conformance.base import SECRET, WRONG_SECRET, Harness

HOST, PORT = "127.0.0.1", 3306


def person(i: int) -> dict[str, Any]:
    """Record ``i``, as ``harnesses.person`` (not imported: harnesses.py imports this module)."""
    return {"id": i, "name": f"Name {i}", "score": i * 1.5, "vip": i % 2 == 0,
            "signed_up": dt.date(2024, 1, 1 + i % 28)}


@contextlib.contextmanager
def mysql_database(prefix: str = "conformance") -> Iterator[tuple[Any, str]]:
    """An admin connection (autocommit) and a fresh database, dropped at the end; skips without a server."""
    pymysql = pytest.importorskip("pymysql")
    try:
        admin = pymysql.connect(host=HOST, port=PORT, user="root", password="", autocommit=True, connect_timeout=5)
    except pymysql.err.OperationalError as exc:
        pytest.skip(f"MySQL/MariaDB not reachable: {exc}")
    database = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
    try:
        yield admin, database
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
        admin.close()


class MySQLHarness(Harness):
    """A user of its own whose password is ``SECRET``; the table is made beforehand with a VARCHAR(40)
    name, so the server refuses a longer one."""

    name = "mysql"
    destination: ClassVar[type[Destination]] = MySQLDestination
    fields = ("id", "name", "score", "vip", "signed_up")
    secret = SECRET

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with mysql_database() as (self.admin, self.database):
            self.object = f"{self.database}.people"
            self.user = self.database[:32]
            for host in ("%", "localhost"):
                self._sql(f"CREATE USER '{self.user}'@'{host}' IDENTIFIED BY '{SECRET}'")
                self._sql(f"GRANT ALL ON `{self.database}`.* TO '{self.user}'@'{host}'")
            self._sql(f"CREATE TABLE `{self.database}`.people (id INT PRIMARY KEY, name VARCHAR(40), "
                      "score DOUBLE, vip BOOLEAN, signed_up DATE)")
            try:
                yield
            finally:
                self._sql(f"DROP USER IF EXISTS '{self.user}'@'%', '{self.user}'@'localhost'")

    def _sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.admin.cursor() as cur:
            cur.execute(statement, params or None)
            return list(cur.fetchall())

    def config(self) -> dict[str, Any]:
        return {"type": "mysql", "dsn": f"mysql://{self.user}:{SECRET}@{HOST}:{PORT}/{self.database}",
                "connect_timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return person(i)

    def read_back(self) -> dict[str, dict[str, Any]]:
        rows = self._sql(f"SELECT {', '.join(self.fields)} FROM `{self.database}`.people ORDER BY id")
        return {str(r[0]): {**dict(zip(self.fields, r, strict=True)), "vip": None if r[3] is None else bool(r[3])}
                for r in rows}

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, name="x" * 41)  # ERROR 1406: Data too long for column 'name'

    def fail_next_write(self) -> bool:
        ids = self._sql("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (self.user,))
        for (pid,) in ids:
            self._sql(f"KILL CONNECTION {int(pid)}")
        return bool(ids)

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"dsn": f"mysql://{self.user}:{WRONG_SECRET}@{HOST}:{PORT}/{self.database}"}


HARNESSES: list[type[Harness]] = [MySQLHarness]
