"""Per-sync run locks in the state schema: two runs of one sync never send at the same time.

Two CI jobs (or a cron and a person) may start ``dbt-activate run`` for the same sync together.
Advisory locks are not portable (Redshift has none), so the lock is a row of ``sync_locks``
(sync, run id, host, pid, acquired_at, expires_at), taken atomically in the way the warehouse's
dialect names (``Dialect.lock_kind``):

- ``lock_table`` (PostgreSQL, Redshift): a transaction that first takes ``LOCK TABLE``, which
  serialises every acquirer; the second reads the first one's row.
- ``file`` (DuckDB): one writing process per database file, so the file lock already serialises.
- ``merge`` (Snowflake, and any warehouse without LOCK TABLE): one conditional ``MERGE`` that
  inserts the row when there is none, or takes it over only from the holder this run read and found
  stale (compare and swap on its run id), committed; then the rows are read back, and the run holds
  the lock only if its row is the only live one. Snowflake runs MERGEs on one table one at a time, so
  the second sees the first one's row; where an engine lets two inserts through (PostgreSQL without a
  unique key), a run that reads another live row gives way and removes its own: since each reads after
  its own commit, the later reader always sees the earlier row, so two runs never both hold the lock
  (both may give way, and try again after a second).
- ``claim`` (Spark without Delta: no DELETE, UPDATE, MERGE or LOCK TABLE, only INSERT): rows are only
  appended. A run inserts a claim row, reads the rows back and holds the lock only if no other run's
  claim is live; otherwise it gives way (appends a release row) and tries again after a random
  0.5 to 1.5 s. Each run reads after its own insert returned, so of two claims the later reader sees
  the earlier one: two runs never both hold the lock, as with ``merge`` (both may give way). The
  guarantee rests on an INSERT being visible to every later query once it returned: on Spark only
  after ``REFRESH TABLE`` in the reading session (a session keeps the file listing it read; the
  dialect's ``refresh``, run before every read of the rows). There is no fairness (a run may give way
  several times), and a writer that is not dbt-activate's (or a clock far off) is not guarded against.
  The holder renews by appending a row with a later ``expires_at``; releasing appends a row whose
  ``expires_at`` precedes its ``acquired_at``, which ends every claim of that run up to then. The
  table grows by a row per heartbeat (every TTL/3) and by three a run.

The holder renews ``expires_at`` from a background thread on a connection of its own; a run that
crashed stops renewing and its lock expires after ``DBT_ACTIVATE_LOCK_TTL_SECONDS`` (default 300), or
at once when the holder was on this host and its process is gone. A second run waits up to
``--lock-timeout`` seconds, then fails that sync (exit 1) naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dbt_activate.errors import ActivateError, SyncLockedError, WarehouseError
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Dialect, Sql

LOCK_TABLE = "sync_locks"
DEFAULT_LOCK_TIMEOUT = 60.0
DEFAULT_TTL = 300.0
_POLL_SECONDS = 1.0
_FORMAT = "%Y-%m-%d %H:%M:%S"


LOCK_COLUMNS = ("sync_name", "run_id", "host", "pid", "acquired_at", "expires_at")


def lock_table_ddl(table: str, dialect: Dialect) -> str:
    varchar = dialect.varchar
    types = {"sync_name": varchar(512), "run_id": varchar(64), "host": varchar(256), "pid": "integer",
             "acquired_at": "timestamp", "expires_at": "timestamp"}
    columns = ", ".join(f"{c} {types[c]}" for c in LOCK_COLUMNS)
    return f"create table if not exists {table} ({columns}){dialect.shared_table_options}"


def ttl_seconds() -> float:
    return float(os.environ.get("DBT_ACTIVATE_LOCK_TTL_SECONDS", str(DEFAULT_TTL)))


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    acquired_at: datetime
    expires_at: datetime

    def stale(self, now: datetime, host: str) -> bool:
        """Expired, or held by a process of this host that no longer exists (it was killed)."""
        return self.expires_at < now or (self.host == host and not _alive(self.pid))

    def describe(self, sync_name: str) -> str:
        return (f"sync {sync_name} is running since {self.acquired_at.strftime(_FORMAT)} UTC "
                f"(run {self.run_id} on {self.host}, pid {self.pid})")


class SyncLock:
    """The lock of one sync for one run. ``acquire`` then ``release`` (or use as a context manager
    after acquiring). ``conn`` is used by this object only: the heartbeat thread shares it."""

    def __init__(self, conn: WarehouseConnection, table: str, sync_name: str, run_id: str, *,
                 ttl: float | None = None, host: str | None = None, pid: int | None = None) -> None:
        self.conn, self.table, self.sync_name, self.run_id = conn, table, sync_name, run_id
        self.ttl = ttl if ttl is not None else ttl_seconds()
        self.host = host or socket.gethostname()
        self.pid = pid if pid is not None else os.getpid()
        self._io = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._claimed_at = _utcnow()  # the claim this run appended last (lock_kind "claim")

    # --- acquiring ---------------------------------------------------------------------------------

    def try_acquire(self) -> Holder | None:
        """Take the lock and return None, or return the live holder that has it."""
        if self.conn.dialect.lock_kind == "merge":
            return self._try_merge()
        if self.conn.dialect.lock_kind == "claim":
            return self._try_claim()
        p = self.conn.dialect.placeholder
        now = _utcnow()
        with self._io, self.conn.transaction():
            statement = self.conn.dialect.lock_statement(self.table)
            if statement is not None:
                # Serialises acquirers until commit: the second reads the first one's row.
                self.conn.execute(statement)
            for holder in self._holders():
                if holder.run_id != self.run_id and not holder.stale(now, self.host):
                    return holder
            self.conn.execute_all(self.conn.dialect.delete_rows(self.table, Sql(f"sync_name = {p}", (self.sync_name,))))
            self.conn.execute(
                f"insert into {self.table} (sync_name, run_id, host, pid, acquired_at, expires_at) values "
                f"({p}, {p}, {p}, {p}, cast({p} as timestamp), cast({p} as timestamp))",
                [self.sync_name, self.run_id, self.host, self.pid, _text(now), _text(self._expiry())])
        return None

    def _holders(self) -> list[Holder]:
        """The rows of this sync, oldest first."""
        p = self.conn.dialect.placeholder
        for statement in self.conn.dialect.refresh(self.table):  # other runs' rows, not a cached listing
            self.conn.execute(statement)
        rows = self.conn.query(f"select run_id, host, pid, acquired_at, expires_at from {self.table} "
                               f"where sync_name = {p} order by acquired_at, run_id", [self.sync_name])
        return _current([Holder(str(r[0]), str(r[1]), int(r[2] or 0), _naive(r[3]), _naive(r[4])) for r in rows])

    def _append(self, acquired_at: datetime, expires_at: datetime) -> None:
        p = self.conn.dialect.placeholder
        with self.conn.transaction():  # committed before the read back, so a concurrent acquirer sees it
            self.conn.execute(
                f"insert into {self.table} (sync_name, run_id, host, pid, acquired_at, expires_at) values "
                f"({p}, {p}, {p}, {p}, cast({p} as timestamp), cast({p} as timestamp))",
                [self.sync_name, self.run_id, self.host, self.pid, _text(acquired_at), _text(expires_at)])

    def _try_claim(self) -> Holder | None:
        """The lock with INSERT only: claim, read back, give way to any other live claim."""
        now = _utcnow()
        with self._io:
            live = self._live_others(self._holders(), now)
            self.conn.end_read()
            if live:
                return live[0]
            self._claimed_at = now
            try:
                self._append(now, self._expiry())
            except WarehouseError:
                # Refused (on Spark a concurrent write to the table can fail a job): the claim may
                # have landed anyway, so it is released, and the run tries again as if it gave way.
                with contextlib.suppress(WarehouseError):
                    self._append(_utcnow(), datetime(1970, 1, 1))
                return Holder("unknown", "unknown", 0, now, now)
            live = self._live_others(self._holders(), now)
            self.conn.end_read()
        if not live:
            return None
        self._delete_own_row()  # another claim is there too: this run gives way
        return live[0]

    def _try_merge(self) -> Holder | None:
        """The lock without LOCK TABLE: compare and swap with one conditional MERGE, then read back."""
        p, varchar = self.conn.dialect.placeholder, self.conn.dialect.varchar
        now = _utcnow()
        with self._io:
            current = self._holders()
            live = self._live_others(current, now)
            if live:
                self.conn.end_read()
                return live[0]
            # Replace only the row read above (ours, else a stale holder's): a run that took the lock
            # meanwhile is kept, and its row is read back below.
            stale = next((h.run_id for h in current if h.run_id != self.run_id), "")
            expected = self.run_id if any(h.run_id == self.run_id for h in current) else stale
            self.conn.execute(
                f"merge into {self.table} t using (select cast({p} as {varchar(512)}) as sync_name, "
                f"cast({p} as {varchar(64)}) as run_id, cast({p} as {varchar(256)}) as host, "
                f"cast({p} as integer) as pid, "
                f"cast({p} as timestamp) as acquired_at, cast({p} as timestamp) as expires_at) s "
                f"on t.sync_name = s.sync_name "
                f"when matched and t.run_id = {p} then update set run_id = s.run_id, host = s.host, pid = s.pid, "
                f"acquired_at = s.acquired_at, expires_at = s.expires_at "
                f"when not matched then insert (sync_name, run_id, host, pid, acquired_at, expires_at) "
                f"values (s.sync_name, s.run_id, s.host, s.pid, s.acquired_at, s.expires_at)",
                [self.sync_name, self.run_id, self.host, self.pid, _text(now), _text(self._expiry()), expected])
            self.conn.end_read()  # committed before the read back, so a concurrent acquirer sees it
            after = self._holders()
            self.conn.end_read()
        mine = any(h.run_id == self.run_id for h in after)
        live = self._live_others(after, now)
        if mine and not live:
            return None
        if mine:
            # Another run's row is there too (an engine let two inserts through): this run gives way.
            self._delete_own_row()
        return live[0] if live else Holder("unknown", "unknown", 0, now, now)

    def _live_others(self, holders: list[Holder], now: datetime) -> list[Holder]:
        return [h for h in holders if h.run_id != self.run_id and not h.stale(now, self.host)]

    def _delete_own_row(self) -> None:
        p = self.conn.dialect.placeholder
        if self.conn.dialect.lock_kind == "claim":
            # The release row: its expiry before its acquisition ends this run's claims up to then.
            with self._io:
                self._append(_utcnow(), datetime(1970, 1, 1))
            return
        with self._io, self.conn.transaction():
            self.conn.execute_all(self.conn.dialect.delete_rows(
                self.table, Sql(f"sync_name = {p} and run_id = {p}", (self.sync_name, self.run_id))))

    def acquire(self, timeout: float, *, on_wait: Callable[[str], None] | None = None,
                sleep: Callable[[float], Any] = time.sleep) -> None:
        """Wait up to ``timeout`` seconds for the lock; raise ``SyncLockedError`` naming the holder."""
        deadline = time.monotonic() + max(0.0, timeout)
        announced = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                self._start_heartbeat()
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyncLockedError(
                    f"{holder.describe(self.sync_name)}: nothing was sent by this run. Wait for that run to "
                    f"finish, or give this one more time with --lock-timeout (waited {timeout:g}s); a crashed "
                    f"run's lock expires at {holder.expires_at.strftime(_FORMAT)} UTC")
            if not announced and on_wait is not None:
                on_wait(f"{holder.describe(self.sync_name)}: waiting up to {timeout:g}s for it to finish")
                announced = True
            # Runs that gave way to each other (lock_kind "claim") try again at different times.
            jitter = random.uniform(0.5, 1.5) if self.conn.dialect.lock_kind == "claim" else 1.0
            sleep(min(_POLL_SECONDS * jitter, left))

    # --- holding -----------------------------------------------------------------------------------

    def _expiry(self) -> datetime:
        return _utcnow() + timedelta(seconds=self.ttl)

    def renew(self) -> None:
        p = self.conn.dialect.placeholder
        if self.conn.dialect.lock_kind == "claim":
            with self._io:
                self._append(self._claimed_at, self._expiry())
            return
        with self._io, self.conn.transaction():
            self.conn.execute_all(self.conn.dialect.update_rows(
                self.table, LOCK_COLUMNS, {"expires_at": Sql(f"cast({p} as timestamp)", (_text(self._expiry()),))},
                Sql(f"sync_name = {p} and run_id = {p}", (self.sync_name, self.run_id))))

    def _start_heartbeat(self) -> None:
        def beat() -> None:
            while not self._stop.wait(max(0.05, self.ttl / 3)):
                try:
                    self.renew()
                except ActivateError:
                    continue  # a lost connection: the lock expires, which is the safe side

        self._thread = threading.Thread(target=beat, name=f"lock {self.sync_name}", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._delete_own_row()

    def close(self) -> None:
        """Close the lock's own connection (after ``release``, or when ``acquire`` failed)."""
        self.conn.close()


def _current(rows: list[Holder]) -> list[Holder]:
    """One holder per claim, oldest first. Rows of a lock taken by ``claim`` are appended: a claim's
    heartbeats repeat its ``acquired_at`` (the latest ``expires_at`` counts), and a release row (expiry
    before acquisition) ends the run's claims acquired up to then. Other kinds hold one row a run."""
    released: dict[str, datetime] = {}
    for h in rows:
        if h.expires_at < h.acquired_at:
            released[h.run_id] = max(h.acquired_at, released.get(h.run_id, h.acquired_at))
    claims: dict[tuple[str, datetime], Holder] = {}
    for h in rows:
        if h.expires_at < h.acquired_at or (h.run_id in released and h.acquired_at <= released[h.run_id]):
            continue
        seen = claims.get((h.run_id, h.acquired_at))
        if seen is None or h.expires_at > seen.expires_at:
            claims[(h.run_id, h.acquired_at)] = h
    return sorted(claims.values(), key=lambda h: (h.acquired_at, h.run_id))


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # unknown: only expiry can free it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _naive(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return datetime.fromisoformat(str(value))


def _text(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")
