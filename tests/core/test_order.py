"""The run order of an invocation's syncs: parents first, otherwise as declared; cycles named."""

from __future__ import annotations

import pytest

from dbt_activate.core.order import Dependency, explain, run_order
from dbt_activate.errors import ConfigError


def _deps(*pairs: str) -> list[Dependency]:
    """"child<parent" strings."""
    return [Dependency(*p.split("<"), why="after") for p in pairs]


@pytest.mark.parametrize(("names", "pairs", "expected"), [
    (["a", "b", "c"], [], ["a", "b", "c"]),  # no dependencies: the declared order
    (["child", "parent"], ["child<parent"], ["parent", "child"]),
    (["deals", "persons", "orgs"], ["deals<persons", "persons<orgs", "deals<orgs"], ["orgs", "persons", "deals"]),
    # Free syncs keep their place: x is declared before the parent and runs first.
    (["child", "x", "parent", "y"], ["child<parent"], ["x", "parent", "child", "y"]),
    # A parent that does not run in this invocation constrains nothing.
    (["child", "other"], ["child<not_selected"], ["child", "other"]),
    # Two parents: the child waits for both.
    (["c", "p1", "p2"], ["c<p1", "c<p2"], ["p1", "p2", "c"]),
])
def test_run_order(names: list[str], pairs: list[str], expected: list[str]) -> None:
    assert run_order(names, _deps(*pairs)) == expected


@pytest.mark.parametrize(("names", "pairs", "cycle"), [
    (["a", "b"], ["a<b", "b<a"], "a -> b -> a"),
    (["free", "x", "y", "z"], ["x<y", "y<z", "z<x"], "x -> y -> z -> x"),
    (["a", "b", "c"], ["c<a", "a<b", "b<a"], "a -> b -> a"),  # c waits behind the cycle; not part of it
])
def test_a_cycle_is_a_config_error_naming_it(names: list[str], pairs: list[str], cycle: str) -> None:
    with pytest.raises(ConfigError, match=f"in a cycle: {cycle};"):
        run_order(names, _deps(*pairs))


def test_explain_names_the_parents_that_run_in_this_invocation() -> None:
    deps = [Dependency("drivers", "fleets", "references[0] org_id"), Dependency("drivers", "gone", "after")]
    assert explain("drivers", deps, ["drivers", "fleets"]) == "runs after fleets (references[0] org_id)"
    assert explain("fleets", deps, ["drivers", "fleets"]) == ""
