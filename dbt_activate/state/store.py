"""Sync state in the user's warehouse: snapshots, syncs, run history and rejected rows.

Everything lives in one state schema (default ``<target schema>_activate``), versioned in
``activate_state_version`` so later releases can migrate it. Tables users may query or declare as dbt
sources: ``sync_runs`` (one row per sync per run) and ``sync_rejections`` (rows a destination refused,
until they go through); ``sync_locks`` holds the lock of each sync while a run sends (``locks.py``).
Reads and inserts are plain SQL valid on every dialect (warehouse/); what differs (types, names, the
transaction and load calls, and every write that deletes or changes rows: Dialect's state-write hooks)
comes from the dialect.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from dbt_activate.errors import WarehouseError
from dbt_activate.state.journal import ACK_COLUMNS, MAYBE_FINGERPRINT, REJECT_COLUMNS
from dbt_activate.state.locks import LOCK_TABLE, SyncLock, lock_table_ddl
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import SNAPSHOT_COLUMNS, Sql, snapshot_table_name

STATE_VERSION = 1
_ACK_STAGE = "activate_stage_acks"
_REJECT_STAGE = "activate_stage_rejects"
RUN_COUNT_COLUMNS = ("rows_added", "rows_changed", "rows_removed", "rows_rejected", "rows_skipped",
                     "records_sent")


@dataclass(frozen=True)
class SavedSync:
    """What the state schema remembers of a sync."""

    config_hash: str
    pending_retries: int = 0
    # Where the sync went, so `plan` can tell a sync whose default name changed (an edited `object`).
    model: str = ""
    destination: str = ""
    object: str = ""


@dataclass(frozen=True)
class SyncRecord:
    """What is remembered about a sync between runs."""

    saved: SavedSync
    fields_signature: str


@dataclass(frozen=True)
class RunRow:
    run_id: str
    dbt_invocation_id: str
    sync_name: str
    model: str
    destination: str
    object: str
    mode: str
    status: str
    started_at: str
    finished_at: str
    duration_seconds: float
    counts: Mapping[str, int]
    error: str | None


class StateStore(Protocol):
    """What the engine needs of the state schema: the seam of ``runner.run_sync``'s state steps.

    ``WarehouseStateStore`` keeps it in the user's warehouse; ``state/memory.py`` in an in-memory
    DuckDB database, for the engine's in-process tests.
    """

    def ensure(self) -> None: ...
    def saved_syncs(self) -> dict[str, SyncRecord]: ...
    def snapshot(self, sync_name: str) -> str: ...
    def is_empty(self, snapshot: str) -> bool: ...
    def lock(self, sync_name: str, run_id: str, *, ttl: float | None = None) -> SyncLock: ...
    def resend(self, sync_name: str, keys: Sequence[str]) -> None: ...
    def apply_segment(self, sync_name: str, run_id: str, acks: Path | None, rejects: Path | None) -> None: ...
    def finish(self, run: RunRow, *, config_hash: str, fields_signature: str, complete: bool) -> int: ...


class WarehouseStateStore:
    """The state schema in the warehouse. ``lock_connection`` opens the connection a sync's lock keeps
    for itself (its heartbeat thread shares it); without one, ``lock`` is not available."""

    def __init__(self, conn: WarehouseConnection, schema: str, database: str | None = None, *,
                 lock_connection: Callable[[], WarehouseConnection] | None = None) -> None:
        self.conn = conn
        self.schema = schema
        self.database = database
        self._d = conn.dialect
        self._stages_ready = False
        self._lock_connection = lock_connection
        self._ack_stage, self._reject_stage = (self._d.stage_table(n, schema) for n in (_ACK_STAGE, _REJECT_STAGE))

    def table(self, name: str) -> str:
        return self._d.table(self.schema, name, self.database if self._d.names_state_database else None)

    # --- schema --------------------------------------------------------------------------------

    def ensure(self) -> None:
        text, key, ts, varchar = self._d.text_type, self._d.key_type, "timestamp", self._d.varchar
        name = varchar(512)
        # Tables every run writes to take the dialect's options (Spark: a format safe for concurrent inserts).
        opts = self._d.shared_table_options
        ddl = [
            self._d.create_schema(self.schema),
            f"create table if not exists {self.table('activate_state_version')} (version integer, applied_at {ts})",
            f"create table if not exists {self.table('activate_syncs')} (sync_name {name}, "
            f"config_hash {varchar(64)}, fields_signature {varchar(64)}, snapshot_table {varchar(128)}, "
            f"model {name}, destination {name}, object {name}, mode {varchar(16)}, last_run_id {varchar(64)}, "
            f"last_run_at {ts}, last_status {varchar(16)}, pending_retries integer){opts}",
            f"create table if not exists {self.table('sync_runs')} (run_id {varchar(64)}, "
            f"dbt_invocation_id {varchar(64)}, sync_name {name}, model {name}, destination {name}, object {name}, "
            f"mode {varchar(16)}, status {varchar(16)}, started_at {ts}, finished_at {ts}, "
            f"duration_seconds {self._d.double_type}, "
            + ", ".join(f"{c} bigint" for c in RUN_COUNT_COLUMNS) + f", error {text}){opts}",
            f"create table if not exists {self.table('sync_rejections')} (sync_name {name}, sync_key {key}, "
            f"reason {text}, attempts integer, first_seen_at {ts}, last_seen_at {ts}, last_run_id {varchar(64)}){opts}",
            lock_table_ddl(self.table(LOCK_TABLE), self._d),
        ]
        self.conn.run_ddl(ddl)
        with self.conn.transaction():
            rows = self.conn.query(f"select max(version) from {self.table('activate_state_version')}")
            version = rows[0][0] if rows else None
            if version is None:
                self.conn.execute(f"insert into {self.table('activate_state_version')} values "
                                  f"({STATE_VERSION}, cast({self._d.placeholder} as timestamp))", [_now()])
            elif int(version) > STATE_VERSION:
                raise WarehouseError(
                    f"the state schema {self.schema} was written by a newer dbt-activate (state version "
                    f"{version}, this release reads {STATE_VERSION}): upgrade dbt-activate")

    def saved_syncs(self) -> dict[str, SyncRecord]:
        syncs = self._d.current_rows(self.table("activate_syncs"), "sync_name", "last_run_at")
        rows = self.conn.query(f"select sync_name, config_hash, fields_signature, pending_retries, model, "
                               f"destination, object from {syncs} t")
        return {r[0]: SyncRecord(SavedSync(str(r[1] or ""), int(r[3] or 0), *(str(v or "") for v in r[4:7])),
                                 str(r[2] or "")) for r in rows}

    def snapshot(self, sync_name: str) -> str:
        table = self.table(snapshot_table_name(sync_name))
        self.conn.run_ddl([self._d.snapshot_ddl(table)])
        return table

    def is_empty(self, snapshot: str) -> bool:
        return not self.conn.query(f"select 1 from {snapshot} limit 1")

    def lock(self, sync_name: str, run_id: str, *, ttl: float | None = None) -> SyncLock:
        """The lock of one sync for one run, on a connection of its own (``locks.py``); not yet taken."""
        if self._lock_connection is None:
            raise TypeError("this state store was opened without a connection for locks")
        return SyncLock(self._lock_connection(), self.table(LOCK_TABLE), sync_name, run_id, ttl=ttl)

    def reset_snapshot(self, sync_name: str) -> None:
        snapshot = self.snapshot(sync_name)
        with self.conn.transaction():
            self.conn.execute_all(self._d.delete_rows(snapshot))

    def resend(self, sync_name: str, keys: Sequence[str]) -> None:
        """Make the next diff send ``keys`` again (as changed), whatever the model says: their record in
        the destination needs a write the model did not ask for (a link to a deleted parent, links.py)."""
        if not keys:
            return
        snapshot = self.snapshot(sync_name)
        p = self._d.placeholder
        with self.conn.transaction():
            for start in range(0, len(keys), 500):
                chunk = list(keys[start:start + 500])
                self.conn.execute_all(self._d.update_rows(
                    snapshot, SNAPSHOT_COLUMNS, {"fingerprint": Sql(p, (MAYBE_FINGERPRINT,))},
                    Sql(f"sync_key in ({', '.join([p] * len(chunk))})", tuple(chunk))))

    # --- checkpoints -----------------------------------------------------------------------------

    def _ensure_stages(self) -> None:
        if self._stages_ready:
            return
        self.conn.run_ddl([self._d.stage_ddl(self._ack_stage, ACK_COLUMNS),
                           self._d.stage_ddl(self._reject_stage, REJECT_COLUMNS)])
        self._stages_ready = True

    def apply_segment(self, sync_name: str, run_id: str, acks: Path | None, rejects: Path | None) -> None:
        """Load one journal segment into the snapshot and the rejections, all or nothing."""
        self._ensure_stages()
        snapshot = self.snapshot(sync_name)
        p = self._d.placeholder
        # load_csv takes a quoted table name; the dialect hooks take the stage names as they are.
        ack_stage, reject_stage = self._d.quote_own(self._ack_stage), self._d.quote_own(self._reject_stage)
        rejections = self.table("sync_rejections")
        now = _now()

        def load() -> None:
            self.conn.execute_all(self._d.clear_stage(self._ack_stage, ACK_COLUMNS))
            self.conn.execute_all(self._d.clear_stage(self._reject_stage, REJECT_COLUMNS))
            if acks is not None and acks.stat().st_size:
                self.conn.load_csv(ack_stage, acks, ACK_COLUMNS)
                self.conn.execute_all(self._d.apply_stage(snapshot, self._ack_stage, now))
                self.conn.execute_all(self._d.delete_staged_keys(rejections, self._ack_stage,
                                                                 Sql(f"sync_name = {p}", (sync_name,))))
            if rejects is not None and rejects.stat().st_size:
                self.conn.load_csv(reject_stage, rejects, REJECT_COLUMNS)
                self.conn.execute_all(self._d.record_rejections(rejections, self._reject_stage, sync_name, run_id,
                                                                now))

        # On DuckDB a segment that ran out of memory is loaded again with a higher limit.
        self.conn.run_transaction(load)

    # --- end of a sync ---------------------------------------------------------------------------

    def finish(self, run: RunRow, *, config_hash: str, fields_signature: str, complete: bool) -> int:
        """Record the run; returns how many rejected rows now wait for a retry."""
        p = self._d.placeholder
        rejections = self.table("sync_rejections")
        syncs = self.table("activate_syncs")
        with self.conn.transaction():
            if complete:
                # A complete run re-diffs every rejected row; those not rejected again went through
                # or left the model, so they no longer wait.
                self.conn.execute_all(self._d.delete_rows(rejections, Sql(
                    f"sync_name = {p} and (last_run_id is null or last_run_id <> {p})", (run.sync_name, run.run_id))))
            pending = int(self.conn.query(f"select count(*) from {rejections} where sync_name = {p}",
                                          [run.sync_name])[0][0])
            counts = [int(run.counts.get(c, 0)) for c in RUN_COUNT_COLUMNS]
            self.conn.execute(
                f"insert into {self.table('sync_runs')} (run_id, dbt_invocation_id, sync_name, model, destination, "
                f"object, mode, status, started_at, finished_at, duration_seconds, {', '.join(RUN_COUNT_COLUMNS)}, "
                f"error) values ({', '.join([p] * 8)}, cast({p} as timestamp), cast({p} as timestamp), "
                f"{', '.join([p] * (len(RUN_COUNT_COLUMNS) + 2))})",
                [run.run_id, run.dbt_invocation_id, run.sync_name, run.model, run.destination, run.object,
                 run.mode, run.status, run.started_at, run.finished_at, run.duration_seconds, *counts, run.error])
            self.conn.execute_all(self._d.superseded_rows(syncs, Sql(f"sync_name = {p}", (run.sync_name,))))
            # A failed run keeps the old config hash so the next run still sees the change.
            self.conn.execute(
                f"insert into {syncs} (sync_name, config_hash, fields_signature, snapshot_table, model, "
                f"destination, object, mode, last_run_id, last_run_at, last_status, pending_retries) values "
                f"({', '.join([p] * 9)}, cast({p} as timestamp), {p}, {p})",
                [run.sync_name, config_hash, fields_signature, snapshot_table_name(run.sync_name), run.model,
                 run.destination, run.object, run.mode, run.run_id, run.finished_at, run.status, pending])
        return pending

    def query_table(self, name: str) -> list[tuple[Any, ...]]:
        return self.conn.query(f"select * from {self.table(name)}")


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
