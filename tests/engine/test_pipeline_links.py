"""The pipeline with references, in process through its seams (diff rows, state store, a recording
destination): parents resolved, new children held back, existing children unlinked and rejected, NULL
references passed on so the link is cleared, acknowledged children indexed under their parent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dbt_activate.core.changes import ADD, CHANGE, RowLayout
from dbt_activate.core.types import Batch, BatchResult, FieldSpec, MemoryIdStore, Mode, SyncTarget
from dbt_activate.destinations.base import Destination
from dbt_activate.links import Link, Links
from dbt_activate.stream import Stream
from tests.factories import engine_sync, resolved_sync

TARGET = SyncTarget(sync_name="people", object="persons", mode=Mode.UPSERT,
                    fields=(FieldSpec("name", "name", "varchar"), FieldSpec("org_key", "org_id", "varchar")),
                    identity=("name",))


class Recording(Destination):
    kind = "recording"
    batch_size = 10

    def __init__(self) -> None:
        super().__init__("recording", {"type": "recording"})
        self.sent: dict[str, dict[str, Any]] = {}

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        self.sent.update({r.key: dict(r.values) for r in batch.records})
        return BatchResult(ids={r.key: f"p{r.key}" for r in batch.records})


def rows() -> Iterator[list[tuple[Any, ...]]]:
    yield [(ADD, "a", "fa", None, 1, "A", 1),      # its parent is there: linked
           (ADD, "b", "fb", None, 1, "B", 2),      # new, parent missing: held back, not sent
           (CHANGE, "c", "fc", '{"name":"C"}', 1, "C", 2),  # in the destination, parent missing: unlinked
           (CHANGE, "d", "fd", '{"name":"D"}', 1, "D", None)]  # NULL reference: the link is cleared


class State:
    def __init__(self) -> None:
        self.acked: list[str] = []
        self.rejected: dict[str, str] = {}

    def apply_segment(self, sync: str, run_id: str, acks: Path | None, rejects: Path | None) -> None:
        if acks is not None and acks.exists():
            self.acked += [line.split(",")[1] for line in acks.read_text().splitlines() if line]
        if rejects is not None and rejects.exists():
            for line in rejects.read_text().splitlines():
                key, _, reason = line.partition(",")
                self.rejected[key] = reason.strip('"')


def test_children_are_linked_held_back_unlinked_or_cleared_as_their_parent_and_row_say(tmp_path: Path) -> None:
    store = MemoryIdStore({"sync|orgs|1": "901"})
    destination, state = Recording(), State()
    resolved = resolved_sync("people", columns={"id": "INTEGER", "name": "VARCHAR", "org_key": "VARCHAR"})
    sync = engine_sync(resolved, destination, None, state, tmp_path, target=TARGET,
                       layout=RowLayout(("name", "org_id"), ("name",), drop_nulls=True,
                                        keep_nulls=frozenset({"org_id"})),
                       links=Links("people", [Link("org_id", "orgs")], store, keep_ids=False))
    pipeline = Stream(sync)

    async def run_and_checkpoint() -> None:
        await pipeline.run(rows())
        await pipeline.checkpoint()  # the runner's last checkpoint (runner.run_sync)
    asyncio.run(run_and_checkpoint())

    assert destination.sent == {"a": {"name": "A", "org_id": "901"}, "c": {"name": "C", "org_id": None},
                                "d": {"name": "D", "org_id": None}}
    assert sorted(state.acked) == ["a", "d"]
    assert state.rejected == {"b": "waiting for orgs 2", "c": "waiting for orgs 2"}
    assert (pipeline.result.counts.sent, pipeline.result.counts.rejected) == (2, 2)
    assert store.scan(["under|orgs|"]) == {"under|orgs|1|people|a": "people"}
    assert store.scan(["link|people|"]) == {"link|people|orgs|a": "1"}
