"""A run that dies at any named crash point, then one more run: nothing lost, the state never ahead.

In process (``crashpoints.crashing_at`` raises where ``DBT_ACTIVATE_CRASH_AT`` sends SIGKILL), for every
point of ``dbt_activate/crashpoints.py`` and both mode families: idempotent (``mirror``) and not
(``append``). What tests/e2e/test_kill_matrix.py proves with a subprocess per kill, here in
milliseconds per case:

- right after the crash, every snapshot entry the dead run wrote stands for a record the destination
  holds with the model's values, and a key a mirror dropped is gone from the destination;
- after one clean run the destination equals the model, no journal segment is left behind, and
  ``append`` holds no more duplicates than the records the replaying run reported as unconfirmed,
  through the ``Reporter`` (the console's warning).
"""

from __future__ import annotations

import re

import pytest

from dbt_activate import crashpoints
from tests.engine.world import World

# (point, n): the n-th pass crashes. The crashing run has 30 changes, 2 new rows and (mirror) 2
# removed rows to send in batches of 5, two in flight, with a checkpoint every 10 acknowledgements.
CRASHES = [("extract.row", 1), ("extract.row", 17), ("deliver.acked", 1), ("deliver.acked", 4),
           ("journal.flushed", 1), ("journal.flushed", 3), ("checkpoint.apply", 1), ("checkpoint.apply", 2),
           ("checkpoint.applied", 1), ("checkpoint.applied", 2), ("sync.replayed", 1), ("state.finish", 1),
           ("state.finished", 1)]
MODES = ("mirror", "append")  # upsert writes as mirror does, minus deletes: test_mirror_equality.py


def _unconfirmed(world: World) -> int:
    found = [re.search(r"stopped with (\d+) records sent but not confirmed", w) for w in world.reporter.warnings]
    return sum(int(m.group(1)) for m in found if m)


def test_every_crash_point_is_in_the_table() -> None:
    assert {point for point, _ in CRASHES} == set(crashpoints.POINTS)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("point", "n"), CRASHES, ids=[f"{p}:{n}" for p, n in CRASHES])
def test_a_crash_then_one_run_leaves_the_destination_equal_to_the_model(world: World, mode: str, point: str,
                                                                        n: int) -> None:
    world.insert(range(1, 31))
    assert world.run(mode).status == "success"
    world.rename(range(1, 31), "second")
    world.delete([5, 6])
    world.insert([31, 32], "new")
    before = world.snapshot(mode)

    with crashpoints.crashing_at(point, n), pytest.raises(crashpoints.Crash):
        world.run(mode)
    world.assert_state_not_ahead(mode, before)

    outcome = world.run(mode)
    assert (outcome.status, outcome.error) == ("success", None)
    world.assert_destination_equals_model(mode)
    assert set(world.snapshot(mode)) == set(world.rows()) | (set() if mode == "mirror" else {"5", "6"})
    if mode == "append":
        assert world.duplicate_events() <= _unconfirmed(world)


def test_a_batch_answered_but_never_journaled_is_resent_and_reported(world: World) -> None:
    """Killed between the destination's answer and the journal: the next run says so, once, through the
    Reporter, and appends the batch again (append cannot tell it was there)."""
    world.insert(range(1, 21))
    with crashpoints.crashing_at("deliver.acked", 2), pytest.raises(crashpoints.Crash):
        world.run("append")
    outcome = world.run("append")
    assert outcome.status == "success"
    assert _unconfirmed(world) >= 5 and "may now hold up to" in outcome.reason
    assert [w for w in world.reporter.warnings if "not confirmed" in w] == [
        f"append_people: {outcome.reason.split('; ', 1)[1]}"]
    world.assert_destination_equals_model("append")
    assert 0 < world.duplicate_events() <= _unconfirmed(world)


def test_a_crash_in_process_stops_every_later_point_like_a_kill() -> None:
    with crashpoints.crashing_at("deliver.acked", 2):
        crashpoints.reached("deliver.acked")
        crashpoints.reached("extract.row")  # other points pass until the crash
        with pytest.raises(crashpoints.Crash):
            crashpoints.reached("deliver.acked")
        with pytest.raises(crashpoints.Crash):  # a dead run reaches nothing more
            crashpoints.reached("journal.flushed")
    crashpoints.reached("journal.flushed")  # outside the block nothing is armed


def test_an_unknown_crash_point_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown crash point 'deliver\.sent'"), \
            crashpoints.crashing_at("deliver.sent"):
        pass  # pragma: no cover
