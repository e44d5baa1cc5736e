"""Alerts end to end on DuckDB: a sync fails, then comes back with rejected rows, then runs clean;
a local HTTP receiver checks the failure, threshold and recovery messages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

ALERT_TOKEN = "alert-token-3e9b77d1c4"
ROWS = [customer(i) for i in range(1, 21)]


@pytest.fixture
def crm() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as hook:
        yield hook


@pytest.fixture
def ops() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(path="/alerts", token=ALERT_TOKEN) as hook:
        yield hook


def _alerts(ops: WebhookReceiver) -> list[dict[str, Any]]:
    """The alert messages the receiver accepted (one record each, in the webhook contract)."""
    alerts = []
    for request in ops.requests:
        assert request.status == 200, request
        [record] = request.payload["records"]
        assert request.payload["text"] == record["record"]["text"]
        alerts.append(record["record"])
    return alerts


def test_failure_threshold_and_recovery_alerts(duckdb_project: Project, crm: WebhookReceiver,
                                               ops: WebhookReceiver) -> None:
    p = duckdb_project
    p.write(ROWS, [{"destination": "crm", "object": "contacts", "primary_key": "customer_id", "name": "to_crm",
                    "fields": ["email"]}], destinations={
        "crm": {"type": "webhook", "url": crm.url},
        "ops": {"type": "webhook", "url": ops.url, "headers": {"Authorization": f"Bearer {ALERT_TOKEN}"}},
        "alerts": [{"destination": "ops", "when": "failure"}, {"destination": "ops", "when": "recovered"},
                   {"destination": "ops", "when": "rejected_rows > 5%"}],
    })
    p.dbt("build")

    crm.fail_next(401)  # refused credentials: the sync stops with an error
    first = p.activate("run")
    assert first.returncode == 1, first.stderr
    [failure] = _alerts(ops)
    assert failure["alert"] == "failure" and failure["sync"] == "to_crm" and failure["status"] == "error"
    assert "HTTP 401" in failure["error"] and failure["text"].startswith("dbt-activate: sync to_crm (customers -> ")
    assert failure["run_id"] == p.results()["metadata"]["run_id"]

    crm.reject_keys = {"3": "email is not valid", "7": "email is not valid"}  # 2 of 20 rows: 10% > 5%
    second = p.activate("run")
    assert second.returncode == 1, second.stderr
    later = _alerts(ops)[1:]
    assert sorted(a["alert"] for a in later) == ["recovered", "rejected_rows > 5%"]
    threshold = next(a for a in later if a["alert"] == "rejected_rows > 5%")
    assert threshold["counts"] == {"added": 20, "changed": 0, "removed": 0, "rejected": 2, "skipped": 0, "sent": 18}
    assert threshold["rejected_percent"] == 10.0
    assert threshold["first_reasons"] == [{"key": "3", "reason": "email is not valid"},
                                          {"key": "7", "reason": "email is not valid"}]
    recovered = next(a for a in later if a["alert"] == "recovered")
    assert recovered["status"] == "partial" and recovered["error"] is None

    crm.reject_keys = {}
    third = p.activate("run")
    assert third.returncode == 0, third.stderr
    assert len(_alerts(ops)) == 3  # a clean run after a partial one announces nothing
    assert ALERT_TOKEN not in third.stderr + first.stderr + second.stderr


def test_an_alert_that_cannot_be_delivered_is_a_notice_not_a_failure(duckdb_project: Project,
                                                                      crm: WebhookReceiver,
                                                                      ops: WebhookReceiver) -> None:
    p = duckdb_project
    p.write(ROWS, [{"destination": "crm", "object": "contacts", "primary_key": "customer_id", "name": "to_crm"}],
            destinations={
                "crm": {"type": "webhook", "url": crm.url},
                "ops": {"type": "webhook", "url": ops.url, "headers": {"Authorization": "Bearer wrong-token-x"}},
                "alerts": [{"destination": "ops", "when": "rejected_rows > 0%"}],
            })
    p.dbt("build")
    crm.reject_keys = {"1": "nope"}
    proc = p.activate("run")
    assert proc.returncode == 1, proc.stderr  # the rejected row, not the alert
    assert "alert 'rejected_rows > 0%' for to_crm was not delivered" in proc.stderr
    assert "wrong-token-x" not in proc.stderr
    assert "HTTP 401" in proc.stderr and ops.requests == []  # refused before it was read
    assert "was not delivered" in (p.results()["notice"] or "")
