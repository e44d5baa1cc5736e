"""A `sqlite` destination: each sync writes its rows into one table of a SQLite file.

It exists to show the plugin seam end to end (an installed package, found by entry point) and is
small on purpose. SQLite is a blocking library, so each batch runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import sqlite3
from collections.abc import Mapping
from typing import Any, ClassVar

from dbt_activate.destinations.base import (
    Batch,
    BatchResult,
    ConfigKey,
    Destination,
    Mode,
    Operation,
    Record,
    SyncTarget,
)
from dbt_activate.errors import ConfigError, DestinationError


def _quoted(name: str) -> str:
    if "\x00" in name:
        raise ConfigError(f"SQLite identifier {name!r} contains a NUL character")
    return '"' + name.replace('"', '""') + '"'


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


class SQLiteDestination(Destination):
    kind = "sqlite"
    description = "Rows into a table of a local SQLite file (example plugin)."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("path", str, required=True, help="The SQLite file; created when missing."),
    )
    modes = frozenset({Mode.UPSERT, Mode.UPDATE, Mode.CREATE, Mode.MIRROR})
    batch_size = 500

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self._db: sqlite3.Connection | None = None

    async def open(self, target: SyncTarget) -> None:
        await asyncio.to_thread(self._open, target)

    def _open(self, target: SyncTarget) -> None:
        self._db = sqlite3.connect(str(self.config["path"]), check_same_thread=False)
        columns = ", ".join(_quoted(f) for f in target.field_names)
        keys = ", ".join(_quoted(f) for f in target.identity)
        self._db.execute(f"create table if not exists {_quoted(target.object)} ({columns}, primary key ({keys}))")
        self._db.commit()

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        return await asyncio.to_thread(self._write, target, batch)

    def _write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if self._db is None:
            raise DestinationError(f"{self.name}: write before open")
        result = BatchResult()
        for record in batch.records:
            try:
                if self._apply(target, batch.operation, record) == 0:
                    result.skipped[record.key] = ("no such row" if batch.operation is Operation.UPDATE
                                                  else "row exists already")
            except sqlite3.Error as exc:  # one bad value rejects its row, not the batch
                result.rejected[record.key] = f"sqlite: {exc}"
        self._db.commit()  # nothing is acknowledged before it is committed
        return result

    def _apply(self, target: SyncTarget, operation: Operation, record: Record) -> int:
        assert self._db is not None
        table = _quoted(target.object)
        values = {f: _value(v) for f, v in record.values.items()}
        where = " and ".join(f"{_quoted(f)} = :{i}" for i, f in enumerate(target.identity))
        ids = {str(i): values.get(f) for i, f in enumerate(target.identity)}
        if operation is Operation.DELETE:
            self._db.execute(f"delete from {table} where {where}", ids)
            return 1  # a row that is gone already is what delete asked for
        names = list(values)
        params = {f"v{i}": values[n] for i, n in enumerate(names)}
        if operation is Operation.UPDATE:
            sets = ", ".join(f"{_quoted(n)} = :v{i}" for i, n in enumerate(names))
            return self._db.execute(f"update {table} set {sets} where {where}", {**params, **ids}).rowcount
        columns = ", ".join(_quoted(n) for n in names)
        placeholders = ", ".join(f":v{i}" for i in range(len(names)))
        verb = "insert or ignore" if operation is Operation.CREATE else "insert or replace"
        return self._db.execute(f"{verb} into {table} ({columns}) values ({placeholders})", params).rowcount

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.to_thread(db.close)
