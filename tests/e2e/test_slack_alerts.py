"""Alerts to a ``slack`` destination: accepted by ``alerts:``, one message naming the sync, its
counts and the first reasons; end to end against the SlackEmulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_activate.alerts import AlertRule, parse_rules, slack_text
from dbt_activate.core.outcomes import SyncOutcome
from dbt_activate.core.types import Counts
from dbt_activate.project import DestinationsFile
from dbt_activate.testing.slack.emulator import SlackEmulator
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

HOOK_TOKEN = "alertsXoXo9876543210fedcbaSECRET"


def test_slack_destinations_are_alert_targets() -> None:
    configs = {"ops": {"type": "slack", "webhook_url": "https://hooks.slack.com/services/T/B/abcdefgh12345678"}}
    rules = parse_rules(DestinationsFile(Path("destinations.yml"), configs,
                                         alerts=({"destination": "ops", "when": "failure"},)))
    assert rules == [AlertRule("ops", "failure", "failure")]


def test_the_slack_text_names_the_sync_counts_and_first_reasons_escaped() -> None:
    outcome = SyncOutcome("to_crm", "customers", "crm", "contacts", "upsert", "partial", "rebuilt",
                          counts=Counts(added=20, rejected=2, sent=18))
    outcome.rejected_samples = [("3", "email <x> is not valid"), ("7", "email & name")]
    text = slack_text(AlertRule("ops", "rejected_rows > 5%", "rejected_rows", 5.0), outcome, "run-1")
    assert text.splitlines() == [
        "dbt-activate: sync to_crm (customers -&gt; crm.contacts) rejected 2 row(s) (10.0%, alert when "
        "rejected_rows &gt; 5%)",
        "added 20 · changed 0 · removed 0 · sent 18 · rejected 2 · skipped 0",
        "first rejections:", "• `3`: email &lt;x&gt; is not valid", "• `7`: email &amp; name", "run run-1"]


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    with SlackEmulator(token=HOOK_TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


def test_failure_and_threshold_alerts_reach_slack(tmp_path: Path, slack: SlackEmulator) -> None:
    p = Project(tmp_path, "duckdb")
    with WebhookReceiver() as crm:
        p.write([customer(i) for i in range(1, 21)],
                [{"destination": "crm", "object": "contacts", "primary_key": "customer_id", "name": "to_crm"}],
                destinations={"crm": {"type": "webhook", "url": crm.url},
                              "ops": {"type": "slack", "webhook_url": slack.url},
                              "alerts": [{"destination": "ops", "when": "failure"},
                                         {"destination": "ops", "when": "rejected_rows > 5%"}]})
        p.dbt("build")
        crm.fail_next(401)
        first = p.activate("run")
        assert first.returncode == 1, first.stderr
        [failure] = slack.texts()
        assert failure.startswith("dbt-activate: sync to_crm (customers -&gt; crm.contacts) failed: ")
        assert "HTTP 401" in failure
        crm.reject_keys = {"3": "email is not valid", "7": "email is not valid"}
        second = p.activate("run")
        assert second.returncode == 1, second.stderr
        threshold = slack.texts()[1]
        assert "rejected 2 row(s) (10.0%" in threshold and "sent 18 · rejected 2" in threshold
        assert "• `3`: email is not valid" in threshold
        assert HOOK_TOKEN not in first.stderr + second.stderr


def test_a_slack_alert_that_is_refused_is_a_notice(tmp_path: Path, slack: SlackEmulator) -> None:
    p = Project(tmp_path, "duckdb")
    with WebhookReceiver() as crm:
        p.write([customer(1)], [{"destination": "crm", "object": "contacts", "primary_key": "customer_id",
                                 "name": "to_crm"}],
                destinations={"crm": {"type": "webhook", "url": crm.url},
                              "ops": {"type": "slack", "webhook_url": slack.url},
                              "alerts": [{"destination": "ops", "when": "failure"}]})
        p.dbt("build")
        crm.fail_next(401)
        slack.archive(slack.url)
        proc = p.activate("run")
    assert proc.returncode == 1, proc.stderr  # the sync's failure, not the alert's
    assert "alert 'failure' for to_crm was not delivered" in proc.stderr and "channel_is_archived" in proc.stderr
    assert HOOK_TOKEN not in proc.stderr
