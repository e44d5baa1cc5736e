"""Steps of the end-to-end tests of an API destination (test_intercom.py, test_zendesk.py,
test_pipedrive.py): a sync run as a user runs it, and the model rebuilt from new rows."""

from __future__ import annotations

from typing import Any

from tests.e2e.project import Project


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
