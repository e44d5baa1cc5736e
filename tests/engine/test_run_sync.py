"""``runner.run_sync``'s own steps through its seams: the lock, and a state store that fails mid-sync."""

from __future__ import annotations

from pathlib import Path

from dbt_activate.errors import WarehouseError
from dbt_activate.state.memory import MemoryStateStore
from tests.engine.world import World


def test_a_sync_another_run_holds_is_not_touched(world: World) -> None:
    world.insert(range(1, 11))
    other = world.store.lock("mirror_people", "run-elsewhere")
    other.acquire(0)
    try:
        outcome = world.run("mirror")
    finally:
        other.release()
        other.close()
    assert outcome.status == "error" and "sync mirror_people is running since" in (outcome.error or "")
    assert world.receiver.requests == [] and world.snapshot("mirror") == {}
    assert world.store.saved_syncs() == {}  # not even its run is recorded: the holder records its own
    assert world.run("mirror").status == "success"
    world.assert_destination_equals_model("mirror")


class FailingStore(MemoryStateStore):
    """The state store of a warehouse that goes away at the first checkpoint."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    def apply_segment(self, sync_name: str, run_id: str, acks: Path | None, rejects: Path | None) -> None:
        if self.failures:
            self.failures -= 1
            raise WarehouseError("the connection to the warehouse was lost")
        super().apply_segment(sync_name, run_id, acks, rejects)


def test_a_checkpoint_that_fails_keeps_the_journal_and_the_next_run_sends_only_the_rest(
        world: World) -> None:
    world.store.close()
    world.store = FailingStore()
    world.model = world.store.connect()
    world.model.execute("create table main.people (id integer, email varchar, name varchar)")
    world.insert(range(1, 31))

    failed = world.run("mirror")
    assert failed.status == "error" and "Nothing the destination acknowledged is lost" in (failed.error or "")
    world.assert_state_not_ahead("mirror", {})  # later segments may be applied; the failed one is not
    assert len(world.snapshot("mirror")) < 30
    assert list(world.journal.rglob("*.csv")), "the acknowledged rows are kept in the journal"
    acknowledged = failed.counts.sent  # how many depends on the batches in flight when the checkpoint failed
    assert acknowledged >= 10

    again = world.run("mirror")
    assert (again.status, again.counts.sent) == ("success", 30 - acknowledged)  # the journal was applied first
    world.assert_destination_equals_model("mirror")
