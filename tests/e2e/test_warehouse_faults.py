"""Warehouse faults: the PostgreSQL connection is lost during extract or during the state write.

The test kills the backend with ``pg_terminate_backend`` (what a DBA, a failover or an idle-session
timeout does) at a moment it controls, without sleeps or timing:

- during extract: the receiver holds the second batch while the run streams the model (6,000 changed
  rows, read 5,000 at a time through a server-side cursor), the test terminates the reader's
  backend, then lets the batch through; the next fetch from the cursor fails;
- during the state write: the test holds a SHARE lock on the sync's snapshot table (reads go on,
  writes wait), so the first checkpoint blocks inside its transaction; the test terminates the
  writer's backend there and releases the lock.

Either way the run exits 1 and says what to do; the snapshot holds a new fingerprint only for rows
the receiver acknowledged; the next clean run sends exactly the rest, nothing twice, and the
receiver equals the model.

DuckDB runs inside the dbt-activate process: there is no connection to lose, only the process, and
that is the kill test's subject (test_kill_matrix.py).
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from dbt_activate.diff import FETCH_ROWS
from dbt_activate.testing.messages import Request, Response
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.warehouse.dialect import snapshot_table_name
from tests.e2e.project import BIN, PG_DSN, Project, customer, fresh_database

# dbt build and the clean runs in this process (tests/e2e/inprocess.py); the faulted run is a subprocess.
pytestmark = [pytest.mark.postgres, pytest.mark.in_process]

ROWS = FETCH_ROWS + 1000  # more than one fetch: the stream goes back to the server mid-extract
BATCH = 500
SYNC = "wh_hook"
STATE = "analytics_activate"
MODEL_SQL = """{{ config(materialized='table') }}
select i as customer_id, 'user' || i || '@example.com' as email, 'Customer ' || i as full_name,
       case when i % 3 = 0 then 'FR' when i % 3 = 1 then 'GB' else 'RU' end as country,
       i * 1.5 as score, i % 4 = 0 as is_vip, date '2024-01-01' + (i % 28) as signup_date,
       timestamp '2025-06-01 10:00:00' + (i % 60) * interval '1 minute' as updated_at
from generate_series(1, {rows}) as g(i)
""".replace("{rows}", str(ROWS))


class HoldingReceiver(WebhookReceiver):
    """Holds the ``hold_at``-th request (counted from ``arm``) until ``release`` is set, then answers it."""

    def __init__(self) -> None:
        super().__init__()
        self.hold_at: int | None = None
        self.seen = 0
        self.held = threading.Event()
        self.release = threading.Event()

    def arm(self, hold_at: int | None) -> None:
        self.hold_at, self.seen = hold_at, 0
        self.held.clear()
        self.release.clear()

    def _receive(self, request: Request) -> Response:
        with self._failures_lock:
            self.seen += 1
            hold = self.seen == self.hold_at
        if hold:
            self.held.set()
            assert self.release.wait(120), "the test never released the held request"
        return super()._receive(request)

    def acked_keys(self, since: int = 0) -> Counter[str]:
        """Keys of every acknowledged record in requests[since:], with repeats."""
        with self.lock:
            requests = self.requests[since:]
        return Counter(str(rec["key"]) for r in requests if 200 <= r.status < 300 for rec in r.payload["records"])


@pytest.fixture
def pg_project(tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_whf") as warehouse_db:
        yield Project(tmp_path, "postgres", warehouse_db=warehouse_db)


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    with HoldingReceiver() as hook:
        yield hook
    assert hook.errors == []


def _warehouse(project: Project, sql: str) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(f"{PG_DSN} dbname={project.warehouse_db}")
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return list(cur.fetchall()) if cur.description else []
    finally:
        conn.close()


def _snapshot(project: Project) -> dict[str, str]:
    table = f"{STATE}.{snapshot_table_name(SYNC)}"
    return {str(k): str(f) for k, f in _warehouse(project, f"select sync_key, fingerprint from {table}")}


def _terminate(project: Project, where: str) -> int:
    """Terminate the one dbt-activate backend matching ``where``, once it shows up; returns its pid."""
    deadline = time.monotonic() + 60
    while True:
        pids = [int(r[0]) for r in _warehouse(
            project, f"select pid from pg_stat_activity where datname = '{project.warehouse_db}' "
                     f"and pid <> pg_backend_pid() and {where}")]
        if len(pids) == 1:
            _warehouse(project, f"select pg_terminate_backend({pids[0]})")
            return int(pids[0])
        assert time.monotonic() < deadline, f"no single backend matched {where}: {pids}"
        time.sleep(0.05)  # polling pg_stat_activity for the condition, not waiting for time to pass


def _setup(project: Project, receiver: HoldingReceiver, **env: str) -> None:
    block = [{"destination": "hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
              "name": SYNC}]
    project.write([customer(1)], block, {"hook": {"type": "webhook", "url": receiver.url, "batch_size": BATCH,
                                                   "max_concurrency": 1}}, model_sql=MODEL_SQL)
    project.env.update(env)
    project.dbt("build")
    first = project.activate("run")
    assert first.returncode == 0, first.stderr[-3000:]
    assert sum(receiver.acked_keys().values()) == ROWS
    _warehouse(project, "update analytics.customers set full_name = full_name || ' v2'")  # every row changes


def _faulted_run(project: Project, receiver: HoldingReceiver, fault: Callable[[], None],
                 hold_at: int | None) -> tuple[subprocess.CompletedProcess[str], Counter[str]]:
    """Run with ``fault`` applied while the run is under way; returns the run and the keys acked meanwhile."""
    start = len(receiver.requests)
    receiver.arm(hold_at)
    proc = subprocess.Popen([str(BIN / "dbt-activate"), "run", "--all"], cwd=project.root, env=project.run_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        fault()
    finally:
        receiver.release.set()
    out, err = proc.communicate(timeout=300)
    receiver.arm(None)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), receiver.acked_keys(start)


def _assert_lost_connection_is_recoverable(project: Project, receiver: HoldingReceiver, before: dict[str, str],
                                           run: subprocess.CompletedProcess[str], acked: Counter[str]) -> None:
    output = run.stdout + run.stderr
    assert run.returncode == 1, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert "failed on postgres: " in output, output[-3000:]  # the warehouse's own reason follows
    assert "run again: rows that were not acknowledged are sent by the next run" in output, output[-3000:]
    result = project.result_of(SYNC)
    assert result["status"] == "error" and result["error"], result
    after = _snapshot(project)
    marked = {k for k, f in after.items() if before.get(k) != f}
    assert marked <= set(acked), "the state is ahead of the destination"
    assert set(before) == set(after)  # nothing removed: the mirror had nothing to delete

    start = len(receiver.requests)
    clean = project.activate("run", "--all")
    assert clean.returncode == 0, clean.stderr[-3000:]
    resent = receiver.acked_keys(start)
    assert max((acked + resent).values()) == 1, "a row acknowledged by the destination was sent again"
    assert sum(resent.values()) == ROWS - sum(acked.values())
    model = {str(r[0]): r[1] for r in project.model_rows(columns=["customer_id", "full_name"])}
    assert {k: v["full_name"] for k, v in receiver.records.items()} == model
    assert all(name.endswith(" v2") for name in model.values())


def test_connection_lost_during_extract(pg_project: Project, receiver: HoldingReceiver) -> None:
    _setup(pg_project, receiver)
    before = _snapshot(pg_project)

    def lose_reader() -> None:
        assert receiver.held.wait(120), "the run never reached the second batch"
        _terminate(pg_project, "query ilike '%activate_cursor_%'")  # the reader, its cursor open

    run, acked = _faulted_run(pg_project, receiver, lose_reader, hold_at=2)
    assert sum(acked.values()) == FETCH_ROWS  # the rows read before the connection was lost, and no more
    assert "reading rows failed" in run.stdout + run.stderr
    _assert_lost_connection_is_recoverable(pg_project, receiver, before, run, acked)


def test_connection_lost_during_the_state_write(pg_project: Project, receiver: HoldingReceiver) -> None:
    _setup(pg_project, receiver, DBT_ACTIVATE_CHECKPOINT_ROWS=str(2 * BATCH))
    before = _snapshot(pg_project)
    snapshot = f"{STATE}.{snapshot_table_name(SYNC)}"
    blocker = psycopg2.connect(f"{PG_DSN} dbname={pg_project.warehouse_db}")
    try:
        blocker.cursor().execute(f"lock table {snapshot} in share mode")  # reads go on, writes wait

        def lose_writer() -> None:
            _terminate(pg_project, f"wait_event_type = 'Lock' and query ilike '%{snapshot_table_name(SYNC)}%'")
            blocker.rollback()

        run, acked = _faulted_run(pg_project, receiver, lose_writer, hold_at=None)
    finally:
        blocker.close()
    assert sum(acked.values()) == 2 * BATCH  # the run stopped sending when the first checkpoint failed
    assert _snapshot(pg_project) == before  # the failed transaction left the state as it was
    journal = list((pg_project.root / "target" / "activate" / "journal").rglob("*.acks.csv"))
    assert journal, "the acknowledged rows wait in the local journal for the next run"
    _assert_lost_connection_is_recoverable(pg_project, receiver, before, run, acked)
