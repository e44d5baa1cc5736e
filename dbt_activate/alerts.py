"""Alerts: announce sync outcomes to a webhook or Slack destination named under ``alerts:``.

```yaml
alerts:
  - destination: ops_hook           # a destination of type webhook or slack
    when: failure                   # failure | recovered | "rejected_rows > 1%"
```

``failure``: the sync stopped with an error. ``recovered``: the sync's previous run (in the state
schema) ended in error and this one did not. ``rejected_rows > N%``: more than N percent of the rows
the sync handled were rejected. Each triggered rule POSTs one JSON message per sync, naming the sync,
its counts and the first rejection reasons. The body follows the webhook destination's own contract
(an ``append`` of one record to object ``alerts``), so an endpoint built for that destination accepts
it, with a top-level ``text`` line for humans. To a ``slack`` destination the alert is one message
(``{"text": …}`` to its incoming webhook; its ``text``/``blocks`` templates are for rows, not
alerts): the sync, what happened, its counts and the first rejection reasons, escaped for mrkdwn.
An alert that cannot be delivered never changes the outcome of the run: it becomes a notice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_activate.core.outcomes import SyncOutcome
from dbt_activate.delivery import HttpSession, TlsSettings, body_snippet
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.slack.destination import SlackDestination
from dbt_activate.destinations.slack.message import escape
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.errors import ActivateError, ConfigError
from dbt_activate.project import DestinationsFile

_THRESHOLD = re.compile(r"^rejected_rows\s*>\s*(\d+(?:\.\d+)?)\s*%$")
_FIRST_REASONS = 5
WHEN_HELP = "failure, recovered or rejected_rows > N% (e.g. 'rejected_rows > 1%')"


@dataclass(frozen=True)
class AlertRule:
    destination: str
    when: str  # as written, e.g. "rejected_rows > 1%"
    kind: str  # failure | recovered | rejected_rows
    threshold: float = 0.0  # percent, for rejected_rows


def parse_rules(destinations: DestinationsFile) -> list[AlertRule]:
    """The ``alerts:`` list, validated: every destination defined and of type webhook or slack."""
    where = f"{destinations.path}: alerts"
    if not isinstance(destinations.alerts, Sequence) or isinstance(destinations.alerts, str):
        raise ConfigError("must be a list of {destination: ..., when: ...}", location=where)
    rules = []
    for i, entry in enumerate(destinations.alerts):
        at = f"{where}[{i}]"
        if not isinstance(entry, Mapping):
            raise ConfigError("must be a mapping with `destination` and `when`", location=at)
        keys: list[Any] = list(entry)
        if True in keys or "on" in keys:  # YAML 1.1 reads a bare `on:` key as the boolean true
            raise ConfigError("use `when:` (YAML reads `on:` as true)", location=at)
        unknown = sorted(str(k) for k in keys if k not in ("destination", "when"))
        if unknown:
            raise ConfigError(f"unknown key(s) {', '.join(unknown)}: only destination and when", location=at)
        name, when = entry.get("destination"), entry.get("when")
        if not isinstance(name, str) or not name:
            raise ConfigError("`destination` is required: a webhook or slack destination defined above",
                              location=at)
        destination = destinations.build(name, used_at=f"{at}.destination")
        if not isinstance(destination, (WebhookDestination, SlackDestination)):
            raise ConfigError(f"destination {name!r} is of type {destination.kind!r}; alerts go to a webhook "
                              "or slack destination", location=f"{at}.destination")
        rules.append(_rule(name, when, f"{at}.when"))
    return rules


def _rule(destination: str, when: Any, location: str) -> AlertRule:
    text = str(when).strip() if isinstance(when, str) else ""
    if text in ("failure", "recovered"):
        return AlertRule(destination, text, text)
    match = _THRESHOLD.match(text)
    if match is None:
        raise ConfigError(f"{when!r} is not one of {WHEN_HELP}", location=location)
    return AlertRule(destination, text, "rejected_rows", float(match.group(1)))


def rejected_percent(outcome: SyncOutcome) -> float:
    c = outcome.counts
    handled = max(c.added + c.changed + c.removed, c.rejected)
    return 100.0 * c.rejected / handled if handled else 0.0


def triggered(rule: AlertRule, outcome: SyncOutcome, previous_status: str | None) -> bool:
    if outcome.status not in ("success", "partial", "error"):
        return False  # skipped or planned: nothing happened to announce
    if rule.kind == "failure":
        return outcome.status == "error"
    if rule.kind == "recovered":
        return previous_status == "error" and outcome.status != "error"
    return rejected_percent(outcome) > rule.threshold


def message(rule: AlertRule, outcome: SyncOutcome, run_id: str) -> dict[str, Any]:
    c = outcome.counts
    what = f"{outcome.name} ({outcome.model} -> {outcome.destination}.{outcome.object})"
    if rule.kind == "failure":
        text = f"dbt-activate: sync {what} failed: {outcome.error}"
    elif rule.kind == "recovered":
        text = f"dbt-activate: sync {what} recovered: {outcome.status}, {c.sent} record(s) sent"
    else:
        text = (f"dbt-activate: sync {what} rejected {c.rejected} row(s) ({rejected_percent(outcome):.1f}%, "
                f"alert when {rule.when})")
    return {
        "text": text, "alert": rule.when, "run_id": run_id, "sync": outcome.name, "model": outcome.model,
        "destination": outcome.destination, "object": outcome.object, "mode": outcome.mode,
        "status": outcome.status, "rejected_percent": round(rejected_percent(outcome), 2),
        "counts": {"added": c.added, "changed": c.changed, "removed": c.removed, "rejected": c.rejected,
                   "skipped": c.skipped, "sent": c.sent},
        "first_reasons": [{"key": k, "reason": r} for k, r in outcome.rejected_samples[:_FIRST_REASONS]],
        "error": outcome.error,
    }


def body(rule: AlertRule, outcome: SyncOutcome, run_id: str) -> dict[str, Any]:
    """What is POSTed: the webhook contract's envelope around ``message()``."""
    alert = message(rule, outcome, run_id)
    return {"sync": outcome.name, "object": "alerts", "operation": "append", "run_id": run_id,
            "text": alert["text"],
            "records": [{"key": f"{run_id}:{outcome.name}:{rule.when}", "operation": "append", "record": alert}]}


def slack_text(rule: AlertRule, outcome: SyncOutcome, run_id: str) -> str:
    """The Slack message of an alert: what happened, the counts, the first reasons (mrkdwn-escaped)."""
    alert = message(rule, outcome, run_id)
    c = alert["counts"]
    lines = [escape(alert["text"]),
             f"added {c['added']} · changed {c['changed']} · removed {c['removed']} · sent {c['sent']} · "
             f"rejected {c['rejected']} · skipped {c['skipped']}"]
    if alert["first_reasons"]:
        lines.append("first rejections:")
        lines.extend(f"• `{escape(str(r['key']))}`: {escape(str(r['reason']))}" for r in alert["first_reasons"])
    lines.append(f"run {escape(run_id)}")
    return "\n".join(lines)


def _request(hook: Destination, rule: AlertRule, outcome: SyncOutcome, run_id: str) -> tuple[str, str, Any]:
    """Method, URL and JSON body of one alert for ``hook``."""
    if isinstance(hook, SlackDestination):
        return "POST", hook.url, {"text": slack_text(rule, outcome, run_id)}
    assert isinstance(hook, WebhookDestination)  # checked by parse_rules
    return hook.method, hook.url, body(rule, outcome, run_id)


async def announce(destinations: DestinationsFile, rules: Sequence[AlertRule], outcomes: Sequence[SyncOutcome],
                   previous: Mapping[str, str], run_id: str) -> list[str]:
    """Send every triggered alert; returns what could not be delivered (never raises for that)."""
    failures: list[str] = []
    for rule in rules:
        due = [o for o in outcomes if triggered(rule, o, previous.get(o.name))]
        if not due:
            continue
        hook = destinations.build(rule.destination)
        timeout = hook.config.get("timeout")
        headers = hook.headers if isinstance(hook, WebhookDestination) else {}
        tls = TlsSettings.of_config(hook.config)
        async with HttpSession(f"alert {rule.destination}", headers=headers, secrets=hook.secrets(),
                               timeout=float(timeout) if timeout else 30.0,
                               verify=tls.verify, ca_bundle=tls.ca_bundle) as session:
            for outcome in due:
                what = f"alert '{rule.when}' for {outcome.name} was not delivered"
                method, url, payload = _request(hook, rule, outcome, run_id)
                try:
                    response = await session.request(method, url, json=payload)
                except ActivateError as exc:
                    failures.append(f"{what}: {exc}")
                    continue
                if not 200 <= response.status_code < 300:
                    # Slack names its error in a plain-text body (no_text, channel_not_found, ...).
                    detail = session.redact(body_snippet(response)) if isinstance(hook, SlackDestination) else ""
                    failures.append(f"{what}: {rule.destination} answered HTTP {response.status_code}"
                                    f"{': ' + detail if detail else ''}")
    return failures
