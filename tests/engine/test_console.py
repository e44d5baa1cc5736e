"""The console, rendered into a string: per-sync lines, the summary table, errors with the fix, -v."""

from __future__ import annotations

import io
import json
import re

from rich.console import Console as RichConsole

from dbt_activate.console import Console, Reporter
from dbt_activate.core.outcomes import InvocationResult, SyncOutcome
from dbt_activate.core.types import Counts
from dbt_activate.delivery import RequestLog


def _outcome(name: str, status: str, counts: Counts, **extra: object) -> SyncOutcome:
    outcome = SyncOutcome(name, "customers", "hubspot", "contacts", "upsert", status, "model customers was rebuilt",
                          counts=counts)
    for key, value in extra.items():
        setattr(outcome, key, value)
    return outcome


def sample_result() -> InvocationResult:
    return InvocationResult("20260101T000000-abcd1234", "run", None, [
        _outcome("people_hs", "success", Counts(added=40, changed=2, sent=42), duration=1.25),
        _outcome("people_pd", "partial", Counts(added=10, rejected=7, sent=3), duration=0.5,
                 rejected_samples=[(str(k), "invalid email") for k in range(1, 7)]),
        _outcome("people_sf", "error", Counts(added=5), duration=2.0,
                 error="salesforce: POST /services/oauth2/token was refused: HTTP 401 Unauthorized; check "
                       "the credentials of this destination in destinations.yml"),
        _outcome("people_wh", "skipped", Counts(), reason="model customers failed to build"),
    ])


def _render(quiet: bool = False, verbose: bool = False, width: int = 140) -> str:
    err = io.StringIO()
    console = Console(stderr=err, stdout=io.StringIO(), quiet=quiet, verbose=verbose, live=False, width=width)
    reporter = console.reporter()
    result = sample_result()
    for outcome in result.outcomes:
        if outcome.status == "skipped":
            continue
        reporter.sync_started(outcome)
        reporter.request(RequestLog("POST", "/crm/v3/objects/contacts/batch/upsert", 200, 0.0421))
        reporter.sync_finished(outcome)
    console.result(result)
    return err.getvalue()


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


SUMMARY = """\
sync       model      destination       mode    added  changed  removed  rejected  skipped  duration  status
─────────────────────────────────────────────────────────────────────────────────────────────────────────────
people_hs  customers  hubspot.contacts  upsert     40        2        0         0        0      1.2s  success
people_pd  customers  hubspot.contacts  upsert     10        0        0         7        0      0.5s  partial
people_sf  customers  hubspot.contacts  upsert      5        0        0         0        0      2.0s  error
people_wh  customers  hubspot.contacts  upsert                                                        skipped
people_pd: rejected 1: invalid email
people_pd: rejected 2: invalid email
people_pd: rejected 3: invalid email
people_pd: rejected 4: invalid email
people_pd: rejected 5: invalid email
people_pd: ... 2 more rejected rows: see target/activate_results.json and the sync_rejections table
people_pd: rejected rows keep their previous state and are retried by the next run; see the reasons \
above and the sync_rejections table in the state schema
error in people_sf: salesforce: POST /services/oauth2/token was refused: HTTP 401 Unauthorized; check the \
credentials of this destination in destinations.yml
people_sf: fix the cause above and run again: rows that were not acknowledged are sent by the next run
people_wh: skipped: model customers failed to build
run: 3 syncs run, 1 skipped; added 55, changed 2, removed 0, rejected 7, skipped 0, sent 45; exit 1
"""

PER_SYNC = """\
people_hs: syncing (model customers was rebuilt)
people_hs: success in 1.2s, sent 42, rejected 0, skipped 0
people_pd: syncing (model customers was rebuilt)
people_pd: partial in 0.5s, sent 3, rejected 7, skipped 0
people_sf: syncing (model customers was rebuilt)
people_sf: error in 2.0s, sent 0, rejected 0, skipped 0
"""


def test_plain_output_for_success_rejections_and_failure() -> None:
    assert _lines(_render()) == _lines(PER_SYNC + SUMMARY)


def test_quiet_prints_only_the_summary() -> None:
    assert _lines(_render(quiet=True)) == _lines(SUMMARY)


def test_debug_adds_one_line_per_http_request_without_bodies() -> None:
    lines = _lines(_render(verbose=True))
    requests = [line for line in lines if line.startswith("  http ")]
    assert requests == ["  http POST /crm/v3/objects/contacts/batch/upsert 200 42ms"] * 3
    assert [line for line in lines if not line.startswith("  http ")] == _lines(PER_SYNC + SUMMARY)


def test_json_output_goes_to_stdout_and_the_summary_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    Console("json", stderr=err, stdout=out, live=False, width=140).result(sample_result())
    document = json.loads(out.getvalue())
    assert [r["status"] for r in document["results"]] == ["success", "partial", "error", "skipped"]
    assert document["exit_code"] == 1
    assert "people_sf: fix the cause above" in err.getvalue()


def test_progress_bar_per_running_sync_shows_rows_rate_rejected_and_eta() -> None:
    console = RichConsole(file=io.StringIO(), width=120, force_terminal=False)
    reporter = Reporter(console, live=True)
    assert reporter.progress is not None
    first, second = sample_result().outcomes[:2]
    reporter.sync_started(first)
    reporter.sync_started(second)
    reporter.sync_total(first.name, 100)  # a first sync: the runner counted the rows
    reporter.sync_progress(first.name, Counts(sent=40, rejected=2))
    reporter.sync_progress(second.name, Counts(sent=7, rejected=1))
    snapshot = RichConsole(file=io.StringIO(), width=120)
    snapshot.print(reporter.progress.get_renderable())
    bars = _lines(snapshot.file.getvalue())  # type: ignore[attr-defined]
    assert len(bars) == 2
    assert bars[0].startswith("people_hs") and "40 sent" in bars[0] and "2 rejected" in bars[0]
    eta = re.compile(r"(\d+|-):(\d\d|--):(\d\d|--)$")  # -:--:-- until rich has measured a speed
    assert "rows/s" in bars[0] and eta.search(bars[0])  # the total is known: an ETA column
    assert "7 sent" in bars[1] and "1 rejected" in bars[1] and not eta.search(bars[1])
    reporter.sync_finished(first)
    reporter.sync_finished(second)
    assert not reporter.progress.tasks  # finished syncs leave the live display


def test_progress_bars_are_never_drawn_off_a_terminal_or_with_quiet() -> None:
    console = RichConsole(file=io.StringIO(), width=120)
    assert Reporter(console, live=False).progress is None
    assert Reporter(console, live=True, quiet=True).progress is None


def test_narrow_terminal_gets_one_line_per_sync_instead_of_a_folded_table() -> None:
    lines = _lines(_render(quiet=True, width=80))
    assert lines[:4] == [
        "people_hs (customers -> hubspot.contacts, upsert): success in 1.2s: added 40, changed 2, removed 0, "
        "rejected 0, skipped 0",
        "people_pd (customers -> hubspot.contacts, upsert): partial in 0.5s: added 10, changed 0, removed 0, "
        "rejected 7, skipped 0",
        "people_sf (customers -> hubspot.contacts, upsert): error in 2.0s: added 5, changed 0, removed 0, "
        "rejected 0, skipped 0",
        "people_wh (customers -> hubspot.contacts, upsert): skipped in 0.0s: added 0, changed 0, removed 0, "
        "rejected 0, skipped 0",
    ]
    assert lines[4:] == _lines(SUMMARY)[6:]  # the same rejections, errors, fixes and totals


PLAN = """\
Would send
sync       model      destination       mode    added  changed  removed  rejected  skipped  API calls  status
──────────────────────────────────────────────────────────────────────────────────────────────────────────────
people_hs  customers  hubspot.contacts  upsert    250        1        0         0        0          3  planned
people_wh  customers  hubspot.contacts  upsert                                                         skipped
people_hs: sample upsert request (1 record):
  {
    "method": "POST",
    "body": {
      "inputs": [
        {
          "id": "ada@example.com"
        }
      ]
    }
  }
people_wh: skipped: model customers failed to build
plan: 1 sync planned, 1 skipped; added 250, changed 1, removed 0, rejected 0, skipped 0; exit 0
"""


def test_plan_shows_api_calls_and_each_sample_request_as_json() -> None:
    sample = {"operation": "upsert", "records": 1,
              "request": {"method": "POST", "body": {"inputs": [{"id": "ada@example.com"}]}}}
    result = InvocationResult("20260101T000000-abcd1234", "plan", None, [
        _outcome("people_hs", "planned", Counts(added=250, changed=1), api_calls=3, samples=[sample]),
        _outcome("people_wh", "skipped", Counts(), reason="model customers failed to build"),
    ])
    err = io.StringIO()
    Console(stderr=err, stdout=io.StringIO(), live=False, width=140).result(result)
    assert _lines(err.getvalue()) == _lines(PLAN)


def test_a_long_sample_request_is_cut_on_the_terminal() -> None:
    sample = {"operation": "append", "records": 60, "request": {"lines": [f"line {i}" for i in range(60)]}}
    result = InvocationResult("r", "plan", None, [
        _outcome("events", "planned", Counts(added=60), api_calls=1, samples=[sample])])
    err = io.StringIO()
    Console(stderr=err, stdout=io.StringIO(), live=False, width=140).result(result)
    lines = _lines(err.getvalue())
    assert "  ... 24 more line(s): see target/activate_results.json" in lines
    assert '      "line 37",' in lines and '      "line 38",' not in lines
