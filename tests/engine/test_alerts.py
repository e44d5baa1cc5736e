"""Alert rules: parsing `alerts:` from destinations.yml, and when each condition fires."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dbt_activate.alerts import AlertRule, body, message, parse_rules, triggered
from dbt_activate.core.outcomes import SyncOutcome
from dbt_activate.core.types import Counts
from dbt_activate.errors import ConfigError
from dbt_activate.project import DestinationsFile

PATH = Path("destinations.yml")
CONFIGS = {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/alerts"},
           "files": {"type": "file", "path": "out"}}


def _file(*alerts: Any) -> DestinationsFile:
    return DestinationsFile(path=PATH, raw=CONFIGS, alerts=tuple(alerts))


def test_rules_parse_the_three_conditions() -> None:
    rules = parse_rules(_file({"destination": "hook", "when": "failure"}, {"destination": "hook", "when": "recovered"},
                              {"destination": "hook", "when": "rejected_rows > 1.5%"}))
    assert rules == [AlertRule("hook", "failure", "failure"), AlertRule("hook", "recovered", "recovered"),
                     AlertRule("hook", "rejected_rows > 1.5%", "rejected_rows", 1.5)]


@pytest.mark.parametrize(("entry", "fragment"), [
    ({"destination": "hook", "when": "sometimes"}, "destinations.yml: alerts[0].when: 'sometimes' is not one of"),
    ({"destination": "hook", True: "failure"}, "destinations.yml: alerts[0]: use `when:`"),
    ({"destination": "nowhere", "when": "failure"}, "destination 'nowhere' is not defined"),
    ({"destination": "files", "when": "failure"}, "alerts[0].destination: destination 'files' is of type 'file'"),
    ({"when": "failure"}, "alerts[0]: `destination` is required"),
    ({"destination": "hook", "when": "failure", "channel": "#ops"}, "unknown key(s) channel"),
    ("failure", "alerts[0]: must be a mapping"),
])
def test_bad_rules_are_configuration_errors_that_say_where(entry: Any, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_rules(_file(entry))
    assert fragment in str(info.value)


def _outcome(status: str, **counts: int) -> SyncOutcome:
    return SyncOutcome("people_hook", "people", "crm", "contacts", "upsert", status, "rebuilt", counts=Counts(**counts))


FAILURE = AlertRule("hook", "failure", "failure")
RECOVERED = AlertRule("hook", "recovered", "recovered")
OVER_5 = AlertRule("hook", "rejected_rows > 5%", "rejected_rows", 5.0)


@pytest.mark.parametrize(("rule", "outcome", "previous", "fires"), [
    (FAILURE, _outcome("error"), None, True),
    (FAILURE, _outcome("partial", added=10, rejected=9), None, False),
    (FAILURE, _outcome("skipped"), "error", False),
    (RECOVERED, _outcome("success", added=3, sent=3), "error", True),
    (RECOVERED, _outcome("partial", added=3, rejected=1, sent=2), "error", True),
    (RECOVERED, _outcome("success"), "success", False),
    (RECOVERED, _outcome("success"), None, False),  # first run ever: nothing to recover from
    (RECOVERED, _outcome("error"), "error", False),
    (OVER_5, _outcome("partial", added=100, rejected=6), None, True),
    (OVER_5, _outcome("partial", added=100, rejected=5), None, False),  # exactly 5% is not more than 5%
    (OVER_5, _outcome("partial", added=20, changed=80, rejected=6), None, True),
    (OVER_5, _outcome("success"), None, False),  # nothing handled: 0%
    (OVER_5, _outcome("planned", added=10, rejected=10), None, False),
])
def test_when_each_condition_fires(rule: AlertRule, outcome: SyncOutcome, previous: str | None, fires: bool) -> None:
    assert triggered(rule, outcome, previous) is fires


def test_message_names_the_sync_counts_and_first_reasons() -> None:
    outcome = _outcome("partial", added=10, rejected=7, sent=3)
    outcome.rejected_samples = [(str(k), f"bad email {k}") for k in range(7)]
    body = message(OVER_5, outcome, "run-1")
    assert body["text"] == ("dbt-activate: sync people_hook (people -> crm.contacts) rejected 7 row(s) (70.0%, "
                            "alert when rejected_rows > 5%)")
    assert body["counts"] == {"added": 10, "changed": 0, "removed": 0, "rejected": 7, "skipped": 0, "sent": 3}
    assert body["first_reasons"] == [{"key": str(k), "reason": f"bad email {k}"} for k in range(5)]
    assert (body["sync"], body["alert"], body["run_id"], body["rejected_percent"]) == (
        "people_hook", "rejected_rows > 5%", "run-1", 70.0)


def test_body_follows_the_webhook_destination_contract() -> None:
    outcome = _outcome("error")
    outcome.error = "crm: POST /hook was refused: HTTP 401"
    sent = body(FAILURE, outcome, "run-2")
    assert {k: sent[k] for k in ("sync", "object", "operation", "run_id")} == {
        "sync": "people_hook", "object": "alerts", "operation": "append", "run_id": "run-2"}
    assert sent["text"] == "dbt-activate: sync people_hook (people -> crm.contacts) failed: crm: POST /hook was " \
                           "refused: HTTP 401"
    assert sent["records"] == [{"key": "run-2:people_hook:failure", "operation": "append",
                                "record": message(FAILURE, outcome, "run-2")}]
