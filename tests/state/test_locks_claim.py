"""The per-sync lock with INSERT only (``lock_kind = "claim"``, Spark without Delta): a claim row, the
rows read back, the run gives way to any other live claim. On real engines: Spark's Thrift server
(tests/support/spark.py) and PostgreSQL with a dialect that takes the claim path (a second engine, and
a fast one for many rounds of contention). The same heartbeat, expiry and takeover rules as the other
paths (tests/state/test_locks.py)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

import psycopg2
import pytest

from dbt_activate.errors import SyncLockedError, WarehouseError
from dbt_activate.state.locks import Holder, SyncLock, _current, lock_table_ddl
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.postgres import PostgresDialect
from dbt_activate.warehouse.spark import SparkDialect
from tests.e2e.project import PG_DSN, fresh_database
from tests.state.locks_harness import Connect, never_two_holders, sync_lock
from tests.support import spark

T0 = datetime(2026, 1, 1, 12, 0, 0)


@dataclass(frozen=True)
class _PostgresByClaim(PostgresDialect):
    """PostgreSQL taking the lock as Spark does: proves the claim path on a second engine."""

    lock_kind: ClassVar[str] = "claim"


@pytest.fixture(params=["postgres", pytest.param("spark", marks=pytest.mark.spark)])
def connect(request: pytest.FixtureRequest) -> Iterator[tuple[Connect, str]]:
    if request.param == "postgres":
        with fresh_database("act_lock") as dbname:
            conn = WarehouseConnection(psycopg2.connect(f"{PG_DSN} dbname={dbname}"), _PostgresByClaim())
            with conn.transaction():
                conn.execute(lock_table_ddl("public.sync_locks", conn.dialect))
            conn.close()
            yield (lambda: WarehouseConnection(psycopg2.connect(f"{PG_DSN} dbname={dbname}"), _PostgresByClaim()),
                   "public.sync_locks")
        return
    port = request.getfixturevalue("spark_port")
    dialect = SparkDialect()
    schema = f"act_lock_{uuid.uuid4().hex[:8]}"
    table = dialect.table(schema, "sync_locks")
    conn = WarehouseConnection(spark.connect(port), dialect)
    conn.run_ddl([dialect.create_schema(schema), lock_table_ddl(table, dialect)])
    try:
        yield (lambda: WarehouseConnection(spark.connect(port), dialect), table)
    finally:
        conn.execute(f"drop schema if exists {dialect.quote(schema)} cascade")
        conn.close()


def _live(lock: SyncLock) -> list[str]:
    now = datetime.utcnow()
    return [h.run_id for h in lock._holders() if not h.stale(now, "elsewhere")]


def test_claim_lock_blocks_renews_releases_and_takes_over_expired_and_dead_holders(
        connect: tuple[Connect, str]) -> None:
    factory, table = connect
    first, second = sync_lock(factory(), table, "run-1"), sync_lock(factory(), table, "run-2", host="host-b")
    try:
        first.acquire(0)
        with pytest.raises(SyncLockedError, match=r"\(run run-1 on host-a, pid 1\)"):
            second.acquire(0)
        assert _live(second) == ["run-1"]  # the loser's claim was released at once
        before = first._holders()[0].expires_at
        first.renew()
        assert first._holders()[0].expires_at > before  # the heartbeat's row
        first.release()
        second.acquire(0)
        assert _live(first) == ["run-2"]
        second.release()
        assert _live(first) == []

        expired = sync_lock(factory(), table, "run-3", ttl=0.0)  # stopped renewing: expired at once
        expired.acquire(0)
        expired._stop.set()
        first.acquire(0)
        assert _live(first) == ["run-1"]
        first.release()

        dead = sync_lock(factory(), table, "run-4", pid=2**22 + 12345)  # a process of this host that is gone
        assert dead.try_acquire() is None
        assert sync_lock(factory(), table, "run-5", host="host-a").try_acquire() is None
        for lock in (expired, dead):
            lock.conn.close()
    finally:
        for lock in (first, second):
            lock._stop.set()
            lock.conn.close()


def test_of_acquirers_starting_together_never_two_hold_the_lock(connect: tuple[Connect, str]) -> None:
    factory, table = connect
    # Each Spark statement is a job of a second or more: fewer rounds there, many on PostgreSQL.
    rounds, contenders = (2, 2) if "`" in table else (10, 4)
    held = never_two_holders(factory, table, _live, rounds=rounds, contenders=contenders)
    assert [run_id.split("-")[0] for run_id in held] == [f"r{round_}" for round_ in range(rounds)]


def test_two_runs_waiting_for_each_other_take_turns(connect: tuple[Connect, str]) -> None:
    """Two runs started together both get the lock in the end, one after the other, never at once."""
    factory, table = connect
    held: list[tuple[str, str]] = []
    guard = threading.Lock()
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(run_id: str) -> None:
        lock = sync_lock(factory(), table, run_id, host=f"host-{run_id}")
        try:
            start.wait()
            lock.acquire(120)
            with guard:
                held.append(("in", run_id))
            threading.Event().wait(1.0)
            with guard:
                held.append(("out", run_id))
            lock.release()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            lock.conn.close()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert [kind for kind, _ in held] == ["in", "out", "in", "out"], held
    assert {run_id for _, run_id in held} == {"a", "b"}


def test_current_rows_collapse_heartbeats_and_honour_releases() -> None:
    later, much_later = T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)
    rows = [Holder("a", "h", 1, T0, later), Holder("a", "h", 1, T0, much_later),  # a claim and its heartbeat
            Holder("b", "h", 2, T0, later), Holder("b", "h", 2, T0 + timedelta(seconds=1), datetime(1970, 1, 1)),
            Holder("b", "h", 2, T0 + timedelta(seconds=2), later)]  # b released, then claimed again
    current = _current(rows)
    assert [(h.run_id, h.acquired_at, h.expires_at) for h in current] == [
        ("a", T0, much_later), ("b", T0 + timedelta(seconds=2), later)]


@pytest.mark.spark
def test_the_spark_error_itself_is_reported_not_only_dbts_title(spark_port: int) -> None:
    conn = WarehouseConnection(spark.connect(spark_port), SparkDialect())
    try:
        with pytest.raises(WarehouseError, match="PARSE_SYNTAX_ERROR") as caught:
            conn.execute('select "a" from "b"."c" where')
        assert "failed on spark" in str(caught.value)
    finally:
        conn.close()
