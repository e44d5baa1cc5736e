"""The stream under a stop request (SIGINT/SIGTERM), in process through its seams: a source of diff
rows, a state store and a destination whose requests hang until released.

First request: no new batch, the batches in flight answered within the grace period, checkpointed.
Grace over, or a second request: the batches in flight are cancelled, left unconfirmed in the
in-flight log (the next run resends them), never acknowledged in the journal or the state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbt_activate.core.changes import ADD
from dbt_activate.core.interruption import Interruption
from dbt_activate.core.types import Batch, BatchResult, SyncTarget
from dbt_activate.destinations.base import Destination
from dbt_activate.stream import Stream
from tests.factories import engine_sync, resolved_sync

ROWS = 100
BATCH = 10


class HangingDestination(Destination):
    """Answers a request only once ``release`` allows it; records what it acknowledged."""

    kind = "hanging"
    batch_size = BATCH
    max_concurrency = 2

    def __init__(self) -> None:
        super().__init__("hanging", {"type": "hanging"})
        self.release = asyncio.Event()
        self.started = 0
        self.acknowledged: list[str] = []

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        self.started += 1
        await self.release.wait()
        self.acknowledged += [r.key for r in batch.records]
        return BatchResult()


def rows(size: int = 25) -> Iterator[list[tuple[Any, ...]]]:
    """The diff rows of a first sync, in chunks, as the warehouse cursor streams them."""
    diff = [(ADD, str(i), f"fp{i}", None, 1, f"user{i}@example.com") for i in range(1, ROWS + 1)]
    for start in range(0, len(diff), size):
        yield diff[start:start + size]


class State:
    def __init__(self) -> None:
        self.applied: list[str] = []

    def apply_segment(self, sync: str, run_id: str, acks: Path | None, rejects: Path | None) -> None:
        if acks is not None and acks.exists():
            self.applied += [line.split(",")[1] for line in acks.read_text().splitlines() if line]


class _Pipeline(Stream):
    """The stream as ``runner.run_sync`` drives it: the rows, then the last checkpoint."""

    async def run_all(self) -> None:
        await self.run(rows())
        await self.checkpoint()


def _pipeline(tmp_path: Path, interruption: Interruption) -> tuple[_Pipeline, HangingDestination, State]:
    destination, state = HangingDestination(), State()
    resolved = resolved_sync("s", columns={"email": "VARCHAR"}, primary_key=("email",))
    sync = engine_sync(resolved, destination, None, state, tmp_path, interruption=interruption)
    return _Pipeline(sync), destination, state


async def _stop_when_started(destination: HangingDestination, interruption: Interruption, *,
                             release: bool, twice: bool = False) -> None:
    while destination.started < 2:  # both slots busy, more batches waiting for one
        await asyncio.sleep(0.001)
    interruption.request(2)
    if twice:
        interruption.request(2)
    if release:
        destination.release.set()


def test_a_stop_sends_no_new_batch_and_saves_the_answered_ones(tmp_path: Path) -> None:
    interruption = Interruption(grace=5)
    pipeline, destination, state = _pipeline(tmp_path, interruption)

    async def run() -> None:
        stopper = asyncio.create_task(_stop_when_started(destination, interruption, release=True))
        await pipeline.run_all()
        await stopper

    asyncio.run(run())
    result = pipeline.result
    assert destination.started == 2 and len(destination.acknowledged) == 2 * BATCH  # none after the stop
    assert (result.interrupted, result.cancelled, result.counts.sent) == (True, 0, 2 * BATCH)
    assert sorted(state.applied) == sorted(destination.acknowledged)  # checkpointed
    assert not pipeline.journal.inflight.unconfirmed()  # everything sent was answered


def test_the_grace_period_ends_with_the_batches_in_flight_cancelled_and_unconfirmed(tmp_path: Path) -> None:
    interruption = Interruption(grace=0.05)
    pipeline, destination, state = _pipeline(tmp_path, interruption)

    async def run() -> None:
        stopper = asyncio.create_task(_stop_when_started(destination, interruption, release=False))
        await asyncio.wait_for(pipeline.run_all(), timeout=10)
        await stopper

    asyncio.run(run())
    assert (pipeline.result.interrupted, pipeline.result.cancelled, pipeline.result.counts.sent) == (True, 2, 0)
    assert destination.acknowledged == [] and state.applied == []
    assert len(pipeline.journal.inflight.unconfirmed()) == 2 * BATCH  # the next run resends exactly these


def test_a_second_stop_cancels_at_once_and_leaves_the_checkpoint_to_the_next_run(tmp_path: Path) -> None:
    interruption = Interruption(grace=60)
    pipeline, destination, state = _pipeline(tmp_path, interruption)

    async def run() -> None:
        stopper = asyncio.create_task(_stop_when_started(destination, interruption, release=False, twice=True))
        await asyncio.wait_for(pipeline.run_all(), timeout=10)  # not the 60 s grace
        await stopper

    asyncio.run(run())
    assert interruption.immediate and pipeline.result.cancelled == 2 and state.applied == []
    assert len(pipeline.journal.inflight.unconfirmed()) == 2 * BATCH


def test_without_a_stop_every_row_is_sent(tmp_path: Path) -> None:
    pipeline, destination, state = _pipeline(tmp_path, Interruption())

    async def run() -> None:
        destination.release.set()
        await pipeline.run_all()

    asyncio.run(run())
    assert not pipeline.result.interrupted and pipeline.result.counts.sent == ROWS
    assert sorted(state.applied, key=int) == [str(i) for i in range(1, ROWS + 1)]
