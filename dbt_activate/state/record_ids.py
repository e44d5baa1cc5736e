"""Record ids a destination found or created, kept in the state schema across runs.

Vendors that cannot upsert by a field (Pipedrive) would otherwise search once per row on every
run. The table is scoped by destination name (one vendor account), not by sync: an id describes
the record in the destination whichever sync wrote it. It has its own connection, because the
destination calls it on the event loop while checkpoints use the state connection in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Sql

TABLE = "destination_record_ids"
_CHUNK = 500


class WarehouseIdStore:
    """A ``RecordIdStore`` (destinations/base.py) backed by a table in the state schema."""

    def __init__(self, conn: WarehouseConnection, schema: str, destination: str) -> None:
        self._conn = conn
        self._d = conn.dialect
        self._table = self._d.table(schema, TABLE)
        self._destination = destination

    def ensure(self) -> None:
        self._conn.run_ddl([f"create table if not exists {self._table} (destination {self._d.varchar(256)}, "
                            f"id_key {self._d.key_type}, record_id {self._d.varchar(256)})"
                            f"{self._d.shared_table_options}"])

    def _in(self, count: int) -> str:
        return ", ".join([self._d.placeholder] * count)

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        p = self._d.placeholder
        for start in range(0, len(keys), _CHUNK):
            chunk = list(keys[start:start + _CHUNK])
            rows = self._conn.query(
                f"select id_key, record_id from {self._table} where destination = {p} "
                f"and id_key in ({self._in(len(chunk))})", [self._destination, *chunk])
            found.update({str(k): str(v) for k, v in rows})
        self._conn.end_read()
        return found

    def put_many(self, ids: Mapping[str, str]) -> None:
        if not ids:
            return
        items = list(ids.items())
        with self._conn.transaction():
            self._delete([k for k, _ in items])
            for start in range(0, len(items), _CHUNK):
                chunk = items[start:start + _CHUNK]
                values = ", ".join(f"({self._in(3)})" for _ in chunk)
                params = [v for key, record_id in chunk for v in (self._destination, key, record_id)]
                self._conn.execute(f"insert into {self._table} (destination, id_key, record_id) values {values}",
                                   params)

    def delete_many(self, keys: Sequence[str]) -> None:
        if keys:
            with self._conn.transaction():
                self._delete(list(keys))

    def scan(self, prefixes: Sequence[str]) -> dict[str, str]:
        # A range per prefix rather than LIKE: keys hold user values, where % and _ would be wildcards.
        # The range's end is the prefix with its last character incremented; the check in Python
        # keeps collations that order differently (MySQL's case-insensitive ones) from adding keys.
        found: dict[str, str] = {}
        p = self._d.placeholder
        wanted = [x for x in prefixes if x]
        for start in range(0, len(wanted), _CHUNK // 2):
            chunk = wanted[start:start + _CHUNK // 2]
            ranges = " or ".join([f"(id_key >= {p} and id_key < {p})"] * len(chunk))
            params = [v for x in chunk for v in (x, x[:-1] + chr(ord(x[-1]) + 1))]
            rows = self._conn.query(f"select id_key, record_id from {self._table} where destination = {p} "
                                    f"and ({ranges})", [self._destination, *params])
            found.update({str(k): str(v) for k, v in rows if any(str(k).startswith(x) for x in chunk)})
        self._conn.end_read()
        return found

    def _delete(self, keys: list[str]) -> None:
        p = self._d.placeholder
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            where = Sql(f"destination = {p} and id_key in ({self._in(len(chunk))})", (self._destination, *chunk))
            self._conn.execute_all(self._d.delete_rows(self._table, where))
