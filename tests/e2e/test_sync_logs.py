"""The run logs in the warehouse, queried as a user's dbt model would: `sync_runs` and `sync_rejections`
after a run with a rejected row, a run whose request failed once and was retried, and the run in which
the rejected row finally goes through (DuckDB, PostgreSQL and dbt-redshift)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer
from tests.e2e.state_schema import state_schema

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ROWS = [customer(i) for i in range(1, 9)]
REASON = "email is not valid"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(reject_keys={"3": REASON}) as hook:
        yield hook


def _runs(project: Project, schema: str) -> list[tuple[object, ...]]:
    return project.warehouse_query(
        f"select status, rows_added, rows_rejected, records_sent, dbt_invocation_id, error "
        f"from {schema}.sync_runs where sync_name = 'to_hook' order by started_at")


def test_sync_runs_and_rejections_through_a_rejection_a_retried_request_and_a_recovery(
        project: Project, receiver: WebhookReceiver) -> None:
    project.write(ROWS, [{"destination": "hook", "object": "customers", "primary_key": "customer_id",
                          "name": "to_hook", "fields": ["email", "full_name"]}],
                  destinations={"hook": {"type": "webhook", "url": receiver.url}})
    project.dbt("build")
    invocation = json.loads((project.root / "target" / "run_results.json").read_text())["metadata"]["invocation_id"]
    schema = state_schema(project)
    rejections = (f"select sync_key, reason, attempts, first_seen_at, last_seen_at from {schema}.sync_rejections "
                  "where sync_name = 'to_hook'")

    assert project.activate("run").returncode == 1
    [(key, reason, attempts, first_seen, last_seen)] = project.warehouse_query(rejections)
    assert (key, reason, attempts) == ("3", REASON, 1) and first_seen == last_seen
    assert _runs(project, schema) == [("partial", 8, 1, 7, invocation, None)]

    # The next run retries the rejected row; its first request fails with a 503 and is retried.
    receiver.fail_next(503)
    assert project.activate("run").returncode == 1
    [(key, reason, attempts, first_seen_again, last_seen_again)] = project.warehouse_query(rejections)
    assert (key, attempts, first_seen_again) == ("3", 2, first_seen) and last_seen_again > last_seen
    assert [r.status for r in receiver.requests][-2:] == [503, 200]
    # The row was never acknowledged, so it is still an add to the destination.
    assert _runs(project, schema)[1][:4] == ("partial", 1, 1, 0)

    # The destination accepts the row now: the rejection is gone and the run is a success.
    receiver.reject_keys.clear()
    assert project.activate("run").returncode == 0
    assert project.warehouse_query(rejections) == []
    assert [r[:4] for r in _runs(project, schema)] == [("partial", 8, 1, 7), ("partial", 1, 1, 0),
                                                        ("success", 1, 0, 1)]
    assert receiver.records["3"]["email"] == "user3@example.com"
