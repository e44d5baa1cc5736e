"""An engine in one process: ``runner.run_sync`` over its three seams, for the guarantee tests.

- the ``Source``: ``diff.WarehouseSource``, the real diff SQL of DuckDB's dialect, over a model table
  ``main.people`` in the same in-memory database as the state;
- the ``StateStore``: ``state/memory.py``, the real state tables in that in-memory DuckDB database;
- the ``Destination``: the real ``webhook`` destination, over HTTP to the ``WebhookReceiver`` emulator.

One sync runs in milliseconds, so a guarantee is a table of cases, not a subprocess per case.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from dbt_activate.core.outcomes import SilentReporter, SyncOutcome
from dbt_activate.delivery import RetryPolicy
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.diff import WarehouseSource
from dbt_activate.runner import run_sync
from dbt_activate.state.memory import MemoryStateStore
from dbt_activate.sync import Sync, Tunables
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.warehouse.connection import WarehouseConnection
from tests.factories import engine_sync, resolved_sync

COLUMNS = {"id": "INTEGER", "email": "VARCHAR", "name": "VARCHAR"}
BATCH = 5
# Retries as in production, minus the waiting: a test of a fault costs milliseconds, not seconds.
FAST = RetryPolicy(max_attempts=5, base_delay=0.001, max_delay=0.01, jitter=False, max_retry_after=1.0)


class Recorder(SilentReporter):
    """The ``Reporter`` of a test: keeps the warnings the engine gives."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warning(self, message: str) -> None:
        self.warnings.append(message)


class World:
    """The model, the state and the receiver of one test, and the syncs that run between them."""

    def __init__(self, tmp_path: Path, receiver: WebhookReceiver) -> None:
        self.store = MemoryStateStore()
        self.receiver = receiver
        self.journal = tmp_path / "journal"
        self.reporter = Recorder()
        self._connections: list[WarehouseConnection] = []
        self.model = self._connect()
        self.model.execute("create table main.people (id integer, email varchar, name varchar)")
        self.runs = 0

    def _connect(self) -> WarehouseConnection:
        conn = self.store.connect()
        self._connections.append(conn)
        return conn

    def close(self) -> None:
        for conn in self._connections:
            conn.close()
        self.store.close()

    # --- the model -------------------------------------------------------------------------------

    def insert(self, ids: Iterable[int], name: str = "first") -> None:
        for i in ids:
            self.model.execute("insert into main.people values (?, ?, ?)", [i, f"user{i}@example.com", f"{name} {i}"])

    def rename(self, ids: Iterable[int], name: str) -> None:
        for i in ids:
            self.model.execute("update main.people set name = ? where id = ?", [f"{name} {i}", i])

    def delete(self, ids: Iterable[int]) -> None:
        for i in ids:
            self.model.execute("delete from main.people where id = ?", [i])

    def rows(self) -> dict[str, dict[str, Any]]:
        """The model as the destination should hold it: key -> the record's fields."""
        rows = self.model.query("select id, email, name from main.people")
        return {str(i): {"id": i, "email": e, "name": n} for i, e, n in rows}

    # --- syncs -----------------------------------------------------------------------------------

    def sync(self, mode: str, *, config: dict[str, Any] | None = None, **overrides: Any) -> Sync:
        resolved = resolved_sync(f"{mode}_people", mode=mode, columns=COLUMNS)
        destination = WebhookDestination("hook", {"type": "webhook", "url": self.receiver.url,
                                                  "batch_size": BATCH, "max_concurrency": 2, **(config or {})})
        self.runs += 1
        values: dict[str, Any] = {
            "run_id": f"run-{self.runs}", "previous": self.store.saved_syncs().get(resolved.spec.name),
            "reporter": self.reporter, "policy": FAST, "tunables": Tunables(checkpoint_rows=10),
            "lock_timeout": 0.0, **overrides}
        return engine_sync(resolved, destination, WarehouseSource(self._connect(), resolved), self.store,
                           self.journal, **values)

    def run(self, mode: str, **options: Any) -> SyncOutcome:
        return asyncio.run(run_sync(self.sync(mode, **options)))

    # --- what the state and the receiver hold ----------------------------------------------------

    def snapshot(self, mode: str) -> dict[str, str]:
        table = self.store.snapshot(f"{mode}_people")  # created empty when the sync never ran
        return {str(k): str(f) for k, f in self.store.conn.query(f"select sync_key, fingerprint from {table}")}

    def rejections(self) -> dict[str, str]:
        rows = self.store.conn.query(f"select sync_key, reason from {self.store.table('sync_rejections')}")
        return {str(k): str(r) for k, r in rows}

    def newest_events(self) -> dict[str, dict[str, Any]]:
        """Append: the last event of every key."""
        newest: dict[str, dict[str, Any]] = {}
        for event in self.receiver.events:
            newest[str(event["id"])] = event
        return newest

    def duplicate_events(self) -> int:
        """Append: events sent more than once (every step gives rows new names, so a repeat is one)."""
        repeats = Counter((e["id"], e["name"]) for e in self.receiver.events)
        return sum(n - 1 for n in repeats.values())

    def held(self, mode: str) -> dict[str, dict[str, Any]]:
        """What the destination holds per key: the record (upsert, mirror) or the newest event (append)."""
        return self.newest_events() if mode == "append" else dict(self.receiver.records)

    def settle(self) -> None:
        """Wait until every request the receiver read is answered: a timed-out request is applied late
        (not after dropped connections: those are never answered)."""
        deadline = time.monotonic() + 10
        while sum(self.receiver.counters.by_status.values()) < self.receiver.counters.requests:
            assert time.monotonic() < deadline, "the receiver kept a request open"
            time.sleep(0.01)

    def assert_state_not_ahead(self, mode: str, before: dict[str, str]) -> None:
        """Every snapshot entry this run wrote stands for a record the destination holds, with the model's
        values; a key a mirror dropped from its snapshot is gone from the destination."""
        after, model, held = self.snapshot(mode), self.rows(), self.held(mode)
        for key in (k for k, f in after.items() if before.get(k) != f):
            assert key in model and held.get(key) == model[key], (mode, key, "marked synced, not in the destination")
        if mode == "mirror":
            for key in set(before) - set(after):
                assert key not in held, (mode, key, "dropped from the state but still in the destination")

    def assert_destination_equals_model(self, mode: str) -> None:
        model, held = self.rows(), self.held(mode)
        if mode == "mirror":
            assert held == model
        else:  # upsert keeps what left the model; append keeps every event
            assert {k: held.get(k) for k in model} == model
        assert not list(self.journal.rglob("*.csv")), "a journal segment was left behind"
