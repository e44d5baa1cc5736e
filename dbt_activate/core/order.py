"""The order syncs run in within one invocation: parents before the children that reference them.

A sync depends on the syncs its ``references`` point at (their records must exist before a child can
link to them) and on the syncs it lists in ``after`` (an explicit chain, what hosted tools call a
"sequence"). The order is a topological sort that otherwise keeps the declared order, so syncs without
dependencies run as they always did. A cycle is a configuration error that names the syncs in it.
Pure: no IO.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dbt_activate.errors import ConfigError


class CycleError(ConfigError):
    """Syncs that wait for each other; ``cycle`` lists them, the first one again at the end."""

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(f"syncs depend on each other in a cycle: {' -> '.join(cycle)}; a sync can only "
                         "reference (or run after) syncs that do not depend on it")


@dataclass(frozen=True)
class Dependency:
    """``child`` runs after ``parent``, because of ``why`` (e.g. "references[0] org_id", "after")."""

    child: str
    parent: str
    why: str


def run_order(names: Sequence[str], dependencies: Sequence[Dependency]) -> list[str]:
    """``names`` sorted parents first; among syncs free to run, the one declared first goes first.

    Dependencies on syncs not in ``names`` (not selected, not running) are ignored: they constrain
    nothing in this invocation. Raises ``CycleError`` naming the cycle when there is one.
    """
    position = {name: i for i, name in enumerate(names)}
    parents: dict[str, set[str]] = {name: set() for name in names}
    children: dict[str, set[str]] = {name: set() for name in names}
    for dep in dependencies:
        if dep.child in position and dep.parent in position:
            parents[dep.child].add(dep.parent)
            children[dep.parent].add(dep.child)
    waiting = {name: len(p) for name, p in parents.items()}
    ready = [(position[n], n) for n, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        ordered.append(name)
        for child in children[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(ordered) < len(names):
        raise CycleError(_cycle(names, parents, set(ordered)))
    return ordered


def _cycle(names: Sequence[str], parents: Mapping[str, set[str]], done: set[str]) -> list[str]:
    """One cycle among the syncs left unsorted: [a, b, a] (a runs after b, which runs after a)."""
    start = next(n for n in names if n not in done)
    path: list[str] = []
    seen: dict[str, int] = {}
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        # Every unsorted sync has an unsorted parent, so this walk always finds one and closes a loop.
        node = min((p for p in parents[node] if p not in done), key=names.index)
    return [*path[seen[node]:], node]


def explain(name: str, dependencies: Sequence[Dependency], running: Sequence[str]) -> str:
    """Why ``name`` waits for other syncs of this invocation, for ``plan``: "" when it waits for none."""
    reasons = [f"{d.parent} ({d.why})" for d in dependencies if d.child == name and d.parent in running]
    return f"runs after {', '.join(reasons)}" if reasons else ""
