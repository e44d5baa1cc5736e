"""Two runs of one sync at once (two CI jobs): the lock in the state schema lets only one send.

Real ``dbt-activate run`` processes against PostgreSQL and DuckDB (and BigQuery on crucible). The
first run is held inside its first request by the receiver, so the second provably starts while the first is sending:
with ``--lock-timeout 0`` it exits 1 naming the holder; with a timeout it waits, then finds
nothing left to send. A crashed holder's lock (expired, or a dead process on this host) does not
block the next run.
"""

from __future__ import annotations

import queue
import socket
import subprocess
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from dbt_activate.errors import SyncLockedError
from dbt_activate.state.locks import SyncLock, lock_table_ddl
from dbt_activate.testing.messages import Request, Response
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import BIN, PG_DSN, Project, customer, fresh_database, pg_query
from tests.e2e.state_schema import state_schema

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

ROWS = [customer(i) for i in range(1, 61)]
SYNC = "customers_hook"


class GateReceiver(WebhookReceiver):
    """Holds the first request open until ``release`` is set; counts every request and key it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.held = threading.Event()
        self.release = threading.Event()
        self.arrived = 0
        self.sent_keys: Counter[str] = Counter()

    def _receive(self, request: Request) -> Response:
        with self.lock:
            self.arrived += 1
            first = self.arrived == 1
        if first:
            self.held.set()
            self.release.wait(900)  # set by the test; long, for loaded CI machines
        response = super()._receive(request)
        if 200 <= response.status < 300:
            for record in self.requests[-1].payload["records"]:
                self.sent_keys[str(record["key"])] += 1
        return response


@pytest.fixture(params=["postgres", pytest.param("bigquery", marks=pytest.mark.bigquery),
                        pytest.param("spark", marks=pytest.mark.spark)])
def pg_project(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Project]:
    """PostgreSQL (LOCK TABLE), BigQuery on crucible (the conditional MERGE) and Spark's Thrift server
    (the insert-only claim); the last two slow (tests/conftest.py)."""
    if request.param in ("bigquery", "spark"):
        yield request.getfixturevalue(f"{request.param}_project")
        return
    with fresh_database("act_dst") as destination_db, fresh_database("act_wh") as warehouse_db:
        yield Project(tmp_path, "postgres", warehouse_db=warehouse_db, destination_db=destination_db)


def _setup(project: Project, receiver: WebhookReceiver) -> None:
    block = [{"destination": "hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
              "name": SYNC}]
    # A long request timeout: the held request must not be retried while the test starts the others.
    project.write(ROWS, block, {"hook": {"type": "webhook", "url": receiver.url, "batch_size": 10,
                                         "max_concurrency": 1, "timeout": 900}})
    project.dbt("build")


def _start(project: Project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "dbt-activate"), "run", *args], cwd=project.root, env=project.run_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """Lines of a child's stream as they come (a thread reads, so the test never blocks on a pipe)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put("")

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue[str], text: str, seen: list[str]) -> None:
    while True:
        line = lines.get(timeout=600)  # long: a dbt-bigquery run starts slowly on a loaded machine
        seen.append(line)
        assert line, f"the process ended before printing {text!r}:\n{''.join(seen)}"
        if text in line:
            return


@pytest.mark.slow  # two processes on one lock: in process, tests/state/test_locks.py (PostgreSQL acquirers)
def test_second_run_of_a_sending_sync_exits_or_waits_and_never_sends_twice(pg_project: Project) -> None:
    with GateReceiver() as receiver:
        _setup(pg_project, receiver)
        first = _start(pg_project)
        try:
            assert receiver.held.wait(600), "the first run never reached its first request"

            refused = pg_project.activate("run", "--lock-timeout", "0")
            assert refused.returncode == 1, refused.stderr
            assert f"sync {SYNC} is running since" in refused.stderr
            assert f"on {socket.gethostname()}" in refused.stderr and "--lock-timeout" in refused.stderr
            assert receiver.arrived == 1, "the refused run sent nothing"
            assert pg_project.result_of(SYNC)["status"] == "error"

            waiting = _start(pg_project, "--lock-timeout", "300")
            assert waiting.stderr is not None
            seen: list[str] = []
            _wait_for_line(_lines(waiting.stderr), "waiting up to 300s", seen)
            assert receiver.arrived == 1, "the waiting run sent nothing while the first one held the lock"
            receiver.release.set()
            assert first.wait(600) == 0
            assert waiting.wait(600) == 0, "".join(seen)
        finally:
            receiver.release.set()
            for proc in (first,):
                if proc.poll() is None:
                    proc.kill()
        assert pg_project.result_of(SYNC)["counts"]["sent"] == 0  # the waiter found everything synced
    assert sorted(receiver.sent_keys.values()) == [1] * len(ROWS)  # every row sent once, by one run
    if pg_project.warehouse == "spark":  # claims are appended, never deleted: the lock is free if a run gets it
        again = pg_project.activate("run", "--lock-timeout", "0")
        assert again.returncode == 0, again.stderr
        return
    assert pg_project.warehouse_query(f"select count(*) from {state_schema(pg_project)}.sync_locks") == [(0,)]


def _insert_lock(project: Project, host: str, pid: int, expires: str) -> None:
    sql = ("insert into main_activate.sync_locks values "
           f"('{SYNC}', 'run-elsewhere', '{host}', {pid}, timestamp '2026-01-01 10:00:00', timestamp '{expires}')")
    import duckdb

    con = duckdb.connect(str(project.root / "wh.duckdb"))
    try:
        con.execute(sql)
    finally:
        con.close()


def test_live_lock_of_another_host_blocks_and_names_it_expired_or_dead_ones_do_not(duckdb_project: Project) -> None:
    with WebhookReceiver() as receiver:
        _setup(duckdb_project, receiver)
        assert duckdb_project.activate("run").returncode == 0  # creates the state schema
        duckdb_project.write_rows([customer(i, name=f"Renamed {i}") for i in range(1, 61)])
        duckdb_project.dbt("build")

        _insert_lock(duckdb_project, "ci-runner-7", 4242, "2999-01-01 00:00:00")
        blocked = duckdb_project.activate("run", "--lock-timeout", "0")
        assert blocked.returncode == 1
        assert (f"sync {SYNC} is running since 2026-01-01 10:00:00 UTC (run run-elsewhere on ci-runner-7, "
                "pid 4242)") in blocked.stderr
        assert len(receiver.requests) == 6  # only the first run's batches

        rows = duckdb_project.warehouse_query("select run_id from main_activate.sync_locks")
        # The refused run left the other host's lock alone.
        assert rows == [("run-elsewhere",)]

    with WebhookReceiver() as receiver:
        _setup_url(duckdb_project, receiver)
        expired = duckdb_project.warehouse_query("select count(*) from main_activate.sync_locks")
        assert expired == [(1,)]
        _expire(duckdb_project)
        ran = duckdb_project.activate("run", "--lock-timeout", "0")
        assert ran.returncode == 0, ran.stderr
        assert {v["full_name"] for v in receiver.records.values()} == {f"Renamed {i}" for i in range(1, 61)}
        assert duckdb_project.warehouse_query("select count(*) from main_activate.sync_locks") == [(0,)]


def _setup_url(project: Project, receiver: WebhookReceiver) -> None:
    """Point the destination at a new receiver without rebuilding the model."""
    text = (project.root / "destinations.yml").read_text()
    (project.root / "destinations.yml").write_text(text.replace(text.split("url: ")[1].split()[0], receiver.url))


def _expire(project: Project) -> None:
    import duckdb

    con = duckdb.connect(str(project.root / "wh.duckdb"))
    try:
        con.execute("update main_activate.sync_locks set expires_at = timestamp '2000-01-01 00:00:00'")
    finally:
        con.close()


def test_lock_of_a_killed_run_on_this_host_is_taken_over_at_once(duckdb_project: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer exists
    with WebhookReceiver() as receiver:
        _setup(duckdb_project, receiver)
        assert duckdb_project.activate("run").returncode == 0
        _insert_lock(duckdb_project, socket.gethostname(), dead.pid, "2999-01-01 00:00:00")
        ran = duckdb_project.activate("run", "--all", "--lock-timeout", "0")
        assert ran.returncode == 0, ran.stderr


@pytest.mark.subprocess  # the holder is this process: the second run must be another one
def test_duckdb_allows_one_writing_process_so_a_second_run_fails_clearly(duckdb_project: Project) -> None:
    """DuckDB locks its file for one writing process: a run while another process writes cannot
    even connect, so two DuckDB runs can never both send; the message says why."""
    import duckdb

    with WebhookReceiver() as receiver:
        _setup(duckdb_project, receiver)
        holder = duckdb.connect(str(duckdb_project.root / "wh.duckdb"))
        try:
            second = duckdb_project.activate("run")
        finally:
            holder.close()
    assert second.returncode != 0
    assert "lock" in second.stderr.lower(), second.stderr
    assert "Traceback" not in second.stderr
    assert not receiver.requests


def _pg_lock(dbname: str, run_id: str, *, ttl: float = 300.0, host: str = "host-a") -> SyncLock:
    import psycopg2

    from dbt_activate.warehouse.connection import WarehouseConnection
    from dbt_activate.warehouse.registry import dialect_for

    conn = WarehouseConnection(psycopg2.connect(f"{PG_DSN} dbname={dbname}"), dialect_for("postgres"))
    return SyncLock(conn, "public.sync_locks", SYNC, run_id, ttl=ttl, host=host, pid=1)


def test_lock_rows_on_postgres_block_expire_and_renew() -> None:
    with fresh_database("act_lock") as dbname:
        first, second = _pg_lock(dbname, "run-1"), _pg_lock(dbname, "run-2", host="host-b")
        try:
            with first.conn.transaction():
                first.conn.execute(lock_table_ddl("public.sync_locks", first.conn.dialect))
            first.acquire(0)
            with pytest.raises(SyncLockedError, match=r"\(run run-1 on host-a, pid 1\)"):
                second.acquire(0)
            before = pg_query(dbname, "select expires_at from sync_locks")
            first.renew()
            assert pg_query(dbname, "select expires_at from sync_locks") > before  # the heartbeat's write
            first.release()
            second.acquire(0)
            assert pg_query(dbname, "select run_id from sync_locks") == [("run-2",)]
            second.release()

            short = _pg_lock(dbname, "run-3", ttl=0.0)  # a holder that stopped renewing: expired at once
            short.acquire(0)
            short._stop.set()
            first.acquire(0)  # takes the expired lock over
            assert pg_query(dbname, "select run_id from sync_locks") == [("run-1",)]
            first.release()
            short.conn.close()
        finally:
            first.conn.close()
            second.conn.close()
