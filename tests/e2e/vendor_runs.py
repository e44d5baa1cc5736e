"""Steps of the end-to-end tests of an API destination (test_intercom.py, test_braze.py, ...): a sync
run as a user runs it, the model's rows changed, and the model rebuilt from them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tests.e2e.project import Project, customer


def run_sync(project: Project, name: str, *, secret: str, expect_exit: int = 0) -> dict[str, Any]:
    """``dbt-activate run``: its exit code is ``expect_exit`` and its output never shows ``secret``
    (the destination's credential); the result of sync ``name``."""
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stdout + proc.stderr
    assert secret not in proc.stdout + proc.stderr
    return project.result_of(name)


def rebuild(project: Project, rows: list[dict[str, Any]]) -> None:
    """The model's seed rows replaced by ``rows`` and ``dbt build`` run again."""
    project.write_rows(rows)
    project.dbt("build")


def changed(rows: list[dict[str, Any]], *, renamed: Iterable[int], deleted: Iterable[int], added: Iterable[int],
            moved_out: Iterable[int] = ()) -> list[dict[str, Any]]:
    """A copy of the model's ``rows`` (``customer(i)``) with these customer ids renamed, deleted, added
    and moved out of the FR/GB segment (to RU), in that order."""
    by_id = {r["customer_id"]: dict(r) for r in rows}
    for i in renamed:
        by_id[i]["full_name"] = f"Renamed {i}"
    for i in deleted:
        del by_id[i]
    for i in added:
        by_id[i] = customer(i)
    for i in moved_out:
        by_id[i]["country"] = "RU"
    return list(by_id.values())
