"""Acquirers of one sync's lock, each on its own connection, started together in threads: shared by the
tests of each lock path (test_locks.py: MERGE; test_locks_claim.py: INSERT-only claims)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from dbt_activate.state.locks import Holder, SyncLock
from dbt_activate.warehouse.connection import WarehouseConnection

SYNC = "customers_hook"

Connect = Callable[[], WarehouseConnection]


def sync_lock(conn: WarehouseConnection, table: str, run_id: str, *, host: str = "host-a", ttl: float = 300.0,
         pid: int = 1) -> SyncLock:
    return SyncLock(conn, table, SYNC, run_id, ttl=ttl, host=host, pid=pid)


def _contend(contender: SyncLock, start: threading.Barrier, results: dict[str, object]) -> None:
    start.wait()
    try:
        results[contender.run_id] = contender.try_acquire()
    except Exception as exc:  # asserted on in the test's thread
        results[contender.run_id] = exc


def never_two_holders(factory: Connect, table: str, holders: Callable[[SyncLock], list[str]], *, rounds: int,
                      contenders: int) -> list[str]:
    """``rounds`` times, ``contenders`` acquirers start together: at most one holds the lock, a loser leaves
    no live row behind (``holders(lock)`` reads the run ids holding it) and names a contender it read.

    All may give way when their rows cross (PostgreSQL lets both inserts through): then no row is left
    and the next attempt takes the lock. Returns the run id that held the lock in each round."""
    held: list[str] = []
    for round_ in range(rounds):
        locks = [sync_lock(factory(), table, f"r{round_}-{i}", host=f"host-{i}") for i in range(contenders)]
        start = threading.Barrier(len(locks))
        results: dict[str, object] = {}
        threads = [threading.Thread(target=_contend, args=(each, start, results)) for each in locks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not [h for h in results.values() if isinstance(h, Exception)], results
        winners = [run_id for run_id, holder in results.items() if holder is None]
        assert len(winners) <= 1, results
        assert holders(locks[0]) == winners
        if not winners:
            assert locks[0].try_acquire() is None
            winners = [locks[0].run_id]
        losers = [h for run_id, h in results.items() if run_id not in winners]
        # A loser names a contender whose row it read (which may have given way since), or "unknown"
        # when its own insert was refused.
        named = {each.run_id for each in locks} | {"unknown"}
        assert all(isinstance(h, Holder) and h.run_id in named for h in losers), results
        held.append(winners[0])
        next(each for each in locks if each.run_id == winners[0]).release()
        for each in locks:
            each.conn.close()
    return held
