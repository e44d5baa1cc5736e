"""Route diff rows -> batches -> the destination, under the rate limiter; journal what was acknowledged.

Rows stream out of the sync's ``Source`` in chunks and are grouped into batches per operation; at
most ``max_concurrency`` batches are in flight. A batch's rows reach the local journal only after the
destination acknowledged them, and the journal reaches the state store at checkpoints, so the saved
state is never ahead of the destination and a crash loses no change.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_activate import crashpoints
from dbt_activate.core.changes import (
    ADD,
    CHANGE,
    DUPLICATE_KEY,
    NULL_KEY_LABEL,
    REMOVE,
    identity_json,
    operation_for,
    rejection_reason,
)
from dbt_activate.core.types import Batch, BatchResult, Counts, Operation, Record
from dbt_activate.delivery import deliver
from dbt_activate.errors import ActivateError, DestinationError
from dbt_activate.state.journal import JournalSegment
from dbt_activate.sync import Chunks, Sync


@dataclass
class StreamResult:
    counts: Counts = field(default_factory=Counts)
    rejected_samples: list[tuple[str, str]] = field(default_factory=list)
    error: ActivateError | None = None
    # Records a killed earlier run had sent without an answer: sent again by this run, so a
    # create/append destination may hold them twice (journal.InflightLog).
    unconfirmed: int = 0
    cancelled: int = 0  # batches cancelled unanswered by a stop request (SIGINT/SIGTERM)
    interrupted: bool = False  # a stop request left rows unsent: the next run sends them

    @property
    def complete(self) -> bool:
        return self.error is None and not self.interrupted


class _InFlight:
    """A batch being filled, then sent, with what the journal needs of each of its records."""

    def __init__(self, operation: Operation) -> None:
        self.records: list[Record] = []
        self.batch = Batch(operation, self.records)
        # key -> (op, fingerprint, identity json); Stream.run fills both inline, without a call per row
        self.meta: dict[str, tuple[str, str | None, str]] = {}


def _unsettled(flight: _InFlight) -> Iterator[tuple[str, str, str]]:
    """(op, key, identity) of a batch about to be sent, for the in-flight log.

    A record whose identity changes is logged with the identity it was last sent with: if the run
    dies unanswered, the next run still carries that one as ``Record.previous``, and a destination
    that no longer finds it (the change went through) writes by the new identity instead. One case
    is left: a row whose unanswered move did go through and that leaves the model before the next
    run is deleted by the old identity, which finds nothing, so the record stays under the new one.
    """
    meta = flight.meta
    for record in flight.records:
        op, _, identity = meta[record.key]
        yield op, record.key, identity if record.previous is None else identity_json(record.previous)


class Stream:
    """One sync's rows on their way to its destination (``Sync``), and their journal."""

    def __init__(self, sync: Sync) -> None:
        self.sync = sync
        self.sync_name, self.run_id, self.target = sync.name, sync.run_id, sync.target
        self.destination, self.state, self.journal = sync.destination, sync.state, sync.journal
        self.layout, self.on_delete = sync.layout, sync.spec.on_delete
        # A rejection names the key as the activate block does, not as the warehouse reports it
        # (Snowflake says CUSTOMER_ID for the model's customer_id).
        self.key_names = sync.spec.primary_key
        self.limiter, self.policy = sync.limiter, sync.policy
        self.checkpoint_rows = sync.tunables.checkpoint_rows
        self.checkpoint_seconds = sync.tunables.checkpoint_seconds
        self.reporter = sync.reporter
        self.duplicate_keys: Mapping[str, int] = {}
        self.interruption = sync.interruption  # SIGINT/SIGTERM: stop taking batches
        self._unsent = False  # a batch was left unsent because of a stop request
        self.links = sync.links  # references resolved before a batch is sent; record ids kept after (links.py)
        self.result = StreamResult()
        self._segment: JournalSegment | None = None
        self._segment_started = time.monotonic()
        self._checkpoint_lock = asyncio.Lock()
        self._rejected_keys: set[str] = set()  # null/duplicate keys already journaled this run
        self._batch_ids = itertools.count(1)
        self._crash: BaseException | None = None  # an in-process crash point fired in a batch's task
        # operation_for is pure: its answer per diff op, once, rather than for every row.
        self._operations = {op: operation_for(self.target.mode, op, self.on_delete) for op in (ADD, CHANGE, REMOVE)}

    # --- journal and checkpoints ------------------------------------------------------------------

    def replay_leftovers(self) -> int:
        """Apply segments a killed run left behind; returns how many were applied."""
        pending = self.journal.inflight.unconfirmed()
        self.result.unconfirmed = len(pending)
        resends_changes = self._operations[CHANGE] is not None
        if pending and (resends_changes or self._operations[REMOVE] is not None):
            # They may be in the destination, with the values they were sent with or not at all. Their
            # snapshot row is marked so that it matches no fingerprint: the diff sends each again (its
            # row is "changed"), even when the snapshot already held these values, as after an
            # interrupted --full-resync; and if its row left the model, a sync that deletes deletes it.
            # `create` sends no changes: there a record that never arrived stays out of the snapshot
            # and is created again as new.
            self.journal.write_maybe_present([r for r in pending if r[0] != REMOVE])
        applied = 0
        for acks, rejects in self.journal.leftovers():
            self.state.apply_segment(self.sync_name, self.run_id, acks, rejects)
            for path in (acks, rejects):
                if path is not None:
                    path.unlink(missing_ok=True)
            applied += 1
        self.journal.inflight.remove()
        return applied

    def _current_segment(self) -> JournalSegment:
        if self._segment is None:
            self._segment = self.journal.new_segment()
            self._segment_started = time.monotonic()
        return self._segment

    async def _checkpoint(self, *, force: bool = False) -> None:
        segment = self._segment
        if segment is None or segment.rows == 0:
            return
        due = (segment.rows >= self.checkpoint_rows
               or time.monotonic() - self._segment_started >= self.checkpoint_seconds)
        if not (force or due):
            return
        self._segment = None  # new acknowledgements go to a fresh segment meanwhile
        segment.close()
        async with self._checkpoint_lock:
            crashpoints.reached("checkpoint.apply")
            try:
                await asyncio.to_thread(self.state.apply_segment, self.sync_name, self.run_id,
                                        segment.acks.path, segment.rejects.path)
            except ActivateError as exc:
                # The segment stays on disk and is applied by the next run of this sync.
                self.result.error = self.result.error or exc
                return
            crashpoints.reached("checkpoint.applied")
        segment.remove()

    def _reject(self, key: str, reason: str) -> None:
        self.result.counts.rejected += 1
        self._current_segment().rejects.append((key, reason))
        if len(self.result.rejected_samples) < 20:
            self.result.rejected_samples.append((key, reason))

    def _reject_invalid(self, key: str, reason: str, rows: int) -> None:
        """Null and duplicate keys: every row counts, one rejection row per key value is kept."""
        if key in self._rejected_keys:
            self.result.counts.rejected += rows
            return
        self._rejected_keys.add(key)
        self._reject(key, reason)
        self.result.counts.rejected += rows - 1

    # --- delivery ------------------------------------------------------------------------------

    def _hold_back_unlinked(self, flight: _InFlight) -> dict[str, str]:
        """Swap references for parent record ids; reject the new rows whose parent is not there yet.
        Returns the rows sent with a link cleared for want of their parent: rejected once sent (links.py)."""
        if self.links is None or flight.batch.operation in (Operation.DELETE, Operation.CLEAR):
            return {}
        existing = {key for key, (op, _, _) in flight.meta.items() if op == CHANGE}
        ready, held, unlinked = self.links.resolve(flight.records, existing)
        for key, reason in held.items():
            self._reject(key, reason)
            del flight.meta[key]
        flight.records[:] = ready
        return unlinked

    async def _send(self, flight: _InFlight) -> None:
        try:
            await self._send_batch(flight)
        except crashpoints.Crash as crash:
            self._crash = crash  # the run "died" in this batch's task: the loop sends nothing more
            raise

    async def _send_batch(self, flight: _InFlight) -> None:
        unlinked = self._hold_back_unlinked(flight)
        if not flight.records:
            return
        batch_id = next(self._batch_ids)
        self.journal.inflight.started(batch_id, _unsettled(flight))
        try:
            outcome: BatchResult = await deliver(self.destination, self.target, flight.batch,
                                                 limiter=self.limiter, policy=self.policy)
        except DestinationError as exc:
            if self.result.error is None:
                self.result.error = exc
            self.journal.inflight.settled(batch_id)
            return
        crashpoints.reached("deliver.acked")
        segment = self._current_segment()
        counts = self.result.counts
        rejected, skipped, meta = outcome.rejected, outcome.skipped, flight.meta
        keys = [record.key for record in flight.batch.records]
        if not (rejected or skipped or unlinked):  # the usual answer: every record acknowledged
            acks = [(op, key, fingerprint, identity)
                    for key, (op, fingerprint, identity) in zip(keys, map(meta.__getitem__, keys), strict=True)]
        else:
            acks = []
            for key in keys:
                if key in rejected:
                    self._reject(key, rejected[key])
                elif key in skipped:
                    counts.skipped += 1
                elif key in unlinked:
                    self._reject(key, unlinked[key])
                else:
                    op, fingerprint, identity = meta[key]
                    acks.append((op, key, fingerprint, identity))
        if self.links is not None:
            acked = [a[1] for a in acks]
            self.links.settled(keys, acked,
                               {k: v for k, v in outcome.ids.items() if k not in rejected and k not in skipped},
                               acked if flight.batch.operation is Operation.DELETE else ())
        segment.acks.extend(acks)
        counts.sent += len(acks)
        segment.flush()  # durable before anything else is sent on its strength
        self.journal.inflight.settled(batch_id)
        crashpoints.reached("journal.flushed")
        self.reporter.sync_progress(self.sync_name, counts)
        await self._checkpoint()

    def _stopping(self) -> bool:
        return self.result.error is not None or self.interruption.requested or self._crash is not None

    async def _dispatch(self, flight: _InFlight, slots: asyncio.Semaphore, tasks: set[asyncio.Task[None]]) -> None:
        if not await self._slot(slots):
            self._unsent = True
            return
        if self._stopping():  # a batch or checkpoint failed, or a stop came, while this one waited
            slots.release()
            self._unsent = True
            return
        task = asyncio.create_task(self._send(flight))
        tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            tasks.discard(t)
            slots.release()

        task.add_done_callback(done)

    async def _slot(self, slots: asyncio.Semaphore) -> bool:
        """Wait for a free slot, or for a stop request (then False: the batch is not sent)."""
        if not slots.locked():
            await slots.acquire()
            return True
        acquire = asyncio.ensure_future(slots.acquire())
        stop = asyncio.ensure_future(self.interruption.stopped())
        await asyncio.wait((acquire, stop), return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if acquire.done():
            return True
        acquire.cancel()
        return False

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Wait for the batches in flight; after a stop request only ``grace`` seconds (at once after a
        second one), then cancel them: unanswered, they stay unconfirmed and the next run resends them."""
        pending = set(tasks)
        deadline: float | None = None
        stop_now = asyncio.ensure_future(self.interruption.stopped_now())
        try:
            while pending:
                if self.interruption.requested and deadline is None:
                    deadline = time.monotonic() + self.interruption.grace
                if self.interruption.immediate or (deadline is not None and time.monotonic() >= deadline):
                    break
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                # Until a stop is requested, its request also ends the wait (to start the grace period).
                wakers = {stop_now} if deadline is not None else {stop_now, asyncio.ensure_future(
                    self.interruption.stopped())}
                await asyncio.wait({*pending, *wakers}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for waker in wakers - {stop_now}:
                    waker.cancel()
                pending = {t for t in pending if not t.done()}
        finally:
            stop_now.cancel()
        for task in pending:
            task.cancel()
        if pending:
            # Their records stay in the in-flight log: the next run reports and resends them.
            self.result.cancelled += len(pending)
            await asyncio.gather(*pending, return_exceptions=True)

    def _route(self, row: tuple[Any, ...]) -> tuple[Operation, Record, tuple[str, str | None, str]] | None:
        """Count a diff row; reject it when its key is null or duplicated; else what to send."""
        op, counts = row[0], self.result.counts
        if op == ADD and row[1] in self.duplicate_keys:
            # First sync: the plain scan cannot see duplicates, the key query did (one row each).
            self._reject_invalid(str(row[1]), rejection_reason(DUPLICATE_KEY, self.key_names,
                                                               self.duplicate_keys[row[1]]) or "", 1)
            return None
        if op == ADD:
            counts.added += 1
        elif op == CHANGE:
            counts.changed += 1
        elif op == REMOVE:
            counts.removed += 1
        operation = self._operations.get(op)
        if operation is None:
            reason = rejection_reason(op, self.key_names, row[4])
            if reason is not None:  # the diff yields one row per bad key, with how many rows share it
                self._reject_invalid(NULL_KEY_LABEL if row[1] is None else str(row[1]), reason, int(row[4] or 1))
            return None
        record, fingerprint, identity = self.layout.record(row)
        return operation, record, (op, fingerprint, identity)

    async def run(self, rows: Chunks, duplicate_keys: Mapping[str, int] | None = None) -> StreamResult:
        """Send the diff ``rows``; ``duplicate_keys`` (a first sync's) are rejected, one row each."""
        self.duplicate_keys = duplicate_keys or {}
        batch_size = self.destination.effective_batch_size
        slots = asyncio.Semaphore(max(1, self.destination.effective_concurrency))
        tasks: set[asyncio.Task[None]] = set()
        buffers: dict[Operation, _InFlight] = {}
        exhausted = False
        try:
            while not self._stopping():
                try:
                    chunk = await asyncio.to_thread(next, rows, None)
                except ActivateError as exc:
                    self.result.error = exc
                    break
                if chunk is None:
                    exhausted = True
                    break
                # Stop at the failure or signal, not at the end of the chunk: the rest goes next run. Only
                # the event loop changes what _stopping() reads (a batch's task, a signal handler, a
                # checkpoint), so it is asked after each await rather than before every row.
                if self._stopping():
                    break
                for row in chunk:
                    crashpoints.reached("extract.row")
                    routed = self._route(row)
                    if routed is None:
                        continue
                    operation, record, meta = routed
                    flight = buffers.get(operation)
                    if flight is None:  # not setdefault: that would build a batch for every row
                        flight = buffers[operation] = _InFlight(operation)
                    flight.records.append(record)
                    flight.meta[record.key] = meta
                    if len(flight.meta) >= batch_size:
                        del buffers[operation]
                        await self._dispatch(flight, slots, tasks)
                        if self._stopping():
                            break
            if not self._stopping():
                for flight in buffers.values():
                    await self._dispatch(flight, slots, tasks)
            elif any(f.records for f in buffers.values()):
                self._unsent = True
            await self._drain(tasks)
        finally:
            # The stream is a generator: closing it closes the server-side cursor.
            await asyncio.to_thread(getattr(rows, "close", lambda: None))
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        if self._crash is not None:
            raise self._crash
        # A stop that came after the last batch was answered interrupted nothing.
        self.result.interrupted = self.interruption.requested and (
            not exhausted or self._unsent or self.result.cancelled > 0)
        return self.result

    async def checkpoint(self) -> None:
        """The last checkpoint of the run: what is acknowledged and not yet saved goes to the state."""
        if self.interruption.immediate:
            # Stop at once: the journal on disk is applied by the next run, before it diffs.
            return
        await self._checkpoint(force=True)
        if not self.result.cancelled:
            self.journal.inflight.remove()  # every batch was settled in run()
