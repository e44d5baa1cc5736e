"""Sequences of inserts, updates and deletes, one run after each step: the destination follows the model.

``mirror``: the destination equals the model after every run, and the snapshot holds exactly the
model's keys. ``upsert``: every row of the model is there with its values (rows that left stay).
``append``: the newest event of every row equals the row. A step that changes nothing sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.engine.world import World

Step = Callable[[World], None]


def insert(first: int, last: int, name: str = "first") -> Step:
    return lambda w: w.insert(range(first, last + 1), name)


def rename(first: int, last: int, name: str) -> Step:
    return lambda w: w.rename(range(first, last + 1), name)


def delete(*ids: int) -> Step:
    return lambda w: w.delete(ids)


def nothing(w: World) -> None:
    return None


# Each inner list is one step: its changes, then one run.
SEQUENCES: dict[str, list[list[Step]]] = {
    "inserts": [[insert(1, 12)], [insert(13, 14)], [insert(15, 31)]],
    "updates": [[insert(1, 12)], [rename(1, 12, "second")], [rename(3, 4, "third")], [nothing]],
    "deletes": [[insert(1, 12)], [delete(1, 2, 3)], [delete(*range(4, 13))], [insert(1, 2, "back")]],
    "delete and reinsert a key in one step": [[insert(1, 8)], [delete(4), insert(4, 4, "reborn")]],
    "everything at once": [[insert(1, 20)], [rename(1, 10, "b"), delete(11, 12), insert(21, 25)],
                           [rename(5, 15, "c"), delete(1, 21), insert(30, 33)], [nothing]],
}
MODES = ("mirror", "upsert", "append")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("steps", SEQUENCES.values(), ids=SEQUENCES.keys())
def test_after_every_run_the_destination_follows_the_model(world: World, mode: str, steps: list[list[Step]]) -> None:
    for number, step in enumerate(steps, start=1):
        for change in step:
            change(world)
        outcome = world.run(mode)
        assert (outcome.status, outcome.error) == ("success", None), number
        world.assert_destination_equals_model(mode)
        if mode == "mirror":
            assert set(world.snapshot(mode)) == set(world.rows()), number
        if step == [nothing]:
            assert outcome.counts.sent == 0, number
