"""Bad row values end to end (issue 7): each is rejected with a reason or delivered in one documented form.

One DuckDB model holds, one row per case, NaN, +Infinity and -Infinity in a float column, a string
over HubSpot's 65,536-character property limit and one exactly at it, non-UTF-8 bytes in a blob, two
rows sharing a primary key, and on every row the same instant as a timestamp with a time zone
(``12:00+02``) and as a naive one (``10:00``, read as UTC). One ``dbt-activate run`` sends the model to
three destinations over real components: a PostgreSQL table, the HubSpot emulator and the webhook
receiver. The file proves, for every case and destination:

- what is delivered and in which form (timestamps as the destination documents its UTC form);
- what is rejected, with a reason that names the problem, while the rest of the batch goes through;
- that a rejected row is not marked synced: the next run rejects it again, and once the model is
  fixed it is delivered;
- that the output does not depend on the machine's time zone (each run uses a different ``TZ``)
  and that a second run over an unchanged model sends nothing.

NULLs are covered by test_nulls.py.
"""

from __future__ import annotations

import datetime as dt
import math
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from dbt_activate.testing.hubspot.emulator import HubSpotEmulator
from dbt_activate.testing.hubspot.schema import HubSpotProperty
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import PG_DSN, Project, fresh_database

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

HUBSPOT_TOKEN = "hubspot-row-values-token"
FIELDS = ["customer_id", "email", "full_name", "score", "seen_tz", "seen_naive", "raw"]
TABLE_COLUMNS = ["customer_id", "full_name", "score", "seen_tz", "seen_naive", "raw"]
HUBSPOT_PROPERTIES = (HubSpotProperty("customer_id", "number"), HubSpotProperty("full_name"),
                      HubSpotProperty("score", "number"), HubSpotProperty("seen_tz", "datetime"),
                      HubSpotProperty("seen_naive", "datetime"), HubSpotProperty("raw"))
# The instant every row carries, twice: with a zone (12:00 at +02) and naive (10:00, UTC by convention).
INSTANT = dt.datetime(2025, 6, 1, 10, 0, tzinfo=dt.timezone.utc)
NON_UTF8 = b"\xff\xfe"
# HubSpot's documented limit for a property value, in characters (not taken from the emulator under test).
HUBSPOT_LIMIT = 65_536
TOO_LONG_LENGTH = 70_000  # over HubSpot's limit; PostgreSQL text and JSON have none
# A different machine time zone for each run: DuckDB hands timestamptz values over in it.
RUN_ZONES = ("America/New_York", "Asia/Tokyo", "Europe/Paris")
SYNCS = ("pg", "hubspot", "hook")


@dataclass(frozen=True)
class Row:
    """One model row; ``full_name``, ``score`` and ``raw`` are DuckDB SQL expressions."""

    customer_id: int
    full_name: str
    score: str
    raw: str = "'ok'::blob"
    email: str = ""

    def sql(self) -> str:
        email = self.email or f"user{self.customer_id}@example.com"
        return (f"select {self.customer_id} as customer_id, '{email}' as email, {self.full_name} as full_name, "
                f"({self.score})::double as score, timestamptz '2025-06-01 12:00:00+02' as seen_tz, "
                f"timestamp '2025-06-01 10:00:00' as seen_naive, {self.raw} as raw")


PLAIN, NAN, INF, MINUS_INF, TOO_LONG, AT_LIMIT, BYTES, TWINS = 1, 2, 3, 4, 5, 6, 7, 8
BAD_ROWS = [
    Row(PLAIN, "'plain'", "1.5"),
    Row(NAN, "'not a number'", "'nan'"),
    Row(INF, "'infinite'", "'infinity'"),
    Row(MINUS_INF, "'minus infinite'", "'-infinity'"),
    Row(TOO_LONG, f"repeat('x', {TOO_LONG_LENGTH})", "5"),
    Row(AT_LIMIT, f"repeat('y', {HUBSPOT_LIMIT})", "6"),
    Row(BYTES, "'bytes'", "7", raw="'\\xFF\\xFE'::blob"),  # DuckDB reads \xFF as one byte
    Row(TWINS, "'twin a'", "8", email="twin-a@example.com"),
    Row(TWINS, "'twin b'", "8", email="twin-b@example.com"),
]
# The same model with every bad value corrected: what was rejected must now arrive.
FIXED = {NAN: Row(NAN, "'not a number'", "2"), INF: Row(INF, "'infinite'", "3"),
         MINUS_INF: Row(MINUS_INF, "'minus infinite'", "-4"), TOO_LONG: Row(TOO_LONG, "'short now'", "5"),
         TWINS: Row(TWINS, "'twin a'", "8", email="twin-a@example.com")}
FIXED_ROWS = [FIXED.get(r.customer_id, r) for r in BAD_ROWS if r.email != "twin-b@example.com"]
DUPLICATE_REASON = "duplicate primary key (customer_id): 2 rows share this value"


def model_sql(rows: Sequence[Row]) -> str:
    return "\nunion all\n".join(r.sql() for r in rows)


@dataclass(frozen=True)
class Run:
    """One ``dbt-activate run`` and what each destination held right after it."""

    proc: subprocess.CompletedProcess[str]
    results: dict[str, dict[str, Any]]  # sync -> its entry in activate_results.json
    table: dict[int, tuple[Any, ...]]  # customer_id -> PostgreSQL row (TABLE_COLUMNS)
    contacts: dict[str, dict[str, Any]]  # customer_id -> HubSpot properties
    hooked: dict[str, dict[str, Any]]  # key -> the webhook receiver's record
    hook_requests: int

    def rejected(self, sync: str) -> dict[str, str]:
        return {s["key"]: s["reason"] for s in self.results[sync]["rejected_samples"]}

    def counts(self, sync: str) -> dict[str, int]:
        counts: dict[str, int] = self.results[sync]["counts"]
        return counts


@dataclass(frozen=True)
class Runs:
    first: Run  # the bad model
    again: Run  # the same model, another machine time zone
    fixed: Run  # the model with every bad value corrected


def _sync(destination: str, obj: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"destination": destination, "object": obj, "primary_key": "customer_id", "fields": FIELDS,
            "name": name, **extra}


def _activate() -> list[dict[str, Any]]:
    return [_sync("ops_db", "crm.row_values", "pg"),
            _sync("crm", "contacts", "hubspot", match={"email": "email"}),
            _sync("hook", "customers", "hook")]


def _destinations(database: str, hubspot: HubSpotEmulator, hook: WebhookReceiver) -> dict[str, Any]:
    return {"ops_db": {"type": "postgres", "dsn": f"{PG_DSN} dbname={database}", "create_table": True},
            "crm": {"type": "hubspot", "access_token": HUBSPOT_TOKEN, "base_url": hubspot.base_url, "timeout": 10},
            "hook": {"type": "webhook", "url": hook.url, "timeout": 10}}


def _run(project: Project, zone: str, hubspot: HubSpotEmulator, hook: WebhookReceiver) -> Run:
    project.env["TZ"] = zone
    proc = project.activate("run")
    table = project.destination_rows("crm.row_values", TABLE_COLUMNS)
    return Run(
        proc=proc,
        results={r["sync"]: r for r in project.results()["results"]},
        table={int(r[0]): r for r in table},
        contacts={r["properties"]["customer_id"]: dict(r["properties"]) for r in hubspot.records("contacts")},
        hooked={k: dict(v) for k, v in hook.records.items()},
        hook_requests=len(hook.requests),
    )


@pytest.fixture
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runs]:
    """Three runs, shared by every test here: each ``dbt-activate`` invocation costs seconds."""
    with fresh_database("act_values") as database, \
            HubSpotEmulator(token=HUBSPOT_TOKEN, properties={"contacts": HUBSPOT_PROPERTIES}) as hubspot, \
            WebhookReceiver() as hook:
        project = Project(tmp_path_factory.mktemp("row_values"), "duckdb", destination_db=database)
        project.write([], _activate(), _destinations(database, hubspot, hook), model_sql=model_sql(BAD_ROWS))
        project.dbt("build")
        first = _run(project, RUN_ZONES[0], hubspot, hook)
        again = _run(project, RUN_ZONES[1], hubspot, hook)
        (project.root / "models" / "customers.sql").write_text(model_sql(FIXED_ROWS))
        project.dbt("build")
        fixed = _run(project, RUN_ZONES[2], hubspot, hook)
        yield Runs(first, again, fixed)
        assert hubspot.errors == [] and hook.errors == []  # no emulator bug answered as a 500


# --- every run ends cleanly -----------------------------------------------------------------------


def _rejections_end_a_run_with_exit_1_and_no_traceback(runs: Runs) -> None:
    for run in (runs.first, runs.again):
        assert run.proc.returncode == 1, run.proc.stderr[-3000:]  # 1: some rows were rejected
        assert "Traceback" not in run.proc.stderr
        assert {s: run.results[s]["status"] for s in SYNCS} == dict.fromkeys(SYNCS, "partial")
    assert runs.fixed.proc.returncode == 0, runs.fixed.proc.stderr[-3000:]
    assert {s: runs.fixed.results[s]["status"] for s in SYNCS} == dict.fromkeys(SYNCS, "success")


# --- PostgreSQL: keeps every value its column can hold -------------------------------------------


def _postgres_rejects_only_the_duplicate_key(runs: Runs) -> None:
    assert runs.first.rejected("pg") == {str(TWINS): DUPLICATE_REASON}
    assert runs.first.counts("pg")["rejected"] == 2  # both rows of the key
    assert runs.first.counts("pg")["sent"] == len(BAD_ROWS) - 2
    assert sorted(runs.first.table) == [PLAIN, NAN, INF, MINUS_INF, TOO_LONG, AT_LIMIT, BYTES]


def _postgres_stores_nan_and_infinities_in_a_float_column(runs: Runs) -> None:
    # Documented: NaN and infinities are kept for float columns (refused for integer and numeric).
    score = TABLE_COLUMNS.index("score")
    assert math.isnan(runs.first.table[NAN][score])
    assert runs.first.table[INF][score] == math.inf
    assert runs.first.table[MINUS_INF][score] == -math.inf


def _postgres_stores_long_strings_bytes_and_both_timestamps_exactly(runs: Runs) -> None:
    name, raw = TABLE_COLUMNS.index("full_name"), TABLE_COLUMNS.index("raw")
    assert runs.first.table[TOO_LONG][name] == "x" * TOO_LONG_LENGTH
    assert bytes(runs.first.table[BYTES][raw]) == NON_UTF8
    for row in runs.first.table.values():
        # timestamptz holds the instant; timestamp holds the naive wall time, unshifted.
        assert row[TABLE_COLUMNS.index("seen_tz")] == INSTANT
        assert row[TABLE_COLUMNS.index("seen_naive")] == INSTANT.replace(tzinfo=None)


# --- HubSpot: strings only, finite numbers, at most 65,536 characters ----------------------------


def _hubspot_rejects_nan_infinities_the_over_long_string_and_the_duplicate(runs: Runs) -> None:
    rejected = runs.first.rejected("hubspot")
    too_long = rejected.pop(str(TOO_LONG))
    # Refused by us before sending: a HubSpot number property has no NaN or infinity.
    assert rejected == {
        str(NAN): "field 'score': nan is not a number HubSpot can store",
        str(INF): "field 'score': inf is not a number HubSpot can store",
        str(MINUS_INF): "field 'score': -inf is not a number HubSpot can store",
        str(TWINS): DUPLICATE_REASON,
    }
    # Refused by HubSpot (its whole batch refused; the row isolated), passed on with the property named.
    assert too_long.startswith("VALIDATION_ERROR: full_name:")
    assert f"{TOO_LONG_LENGTH} characters long" in too_long
    assert f"maximum length of {HUBSPOT_LIMIT}" in too_long
    assert sorted(runs.first.contacts, key=int) == [str(PLAIN), str(AT_LIMIT), str(BYTES)]


def _hubspot_gets_one_epoch_ms_for_both_timestamps_base64_bytes_and_the_string_at_the_limit(
        runs: Runs) -> None:
    epoch_ms = str(int(INSTANT.timestamp() * 1000))
    for properties in runs.first.contacts.values():
        assert properties["seen_tz"] == properties["seen_naive"] == epoch_ms
    assert runs.first.contacts[str(BYTES)]["raw"] == "//4="  # base64 of FF FE
    assert runs.first.contacts[str(AT_LIMIT)]["full_name"] == "y" * HUBSPOT_LIMIT
    assert runs.first.contacts[str(PLAIN)]["score"] == "1.5"


# --- webhook: JSON, so no NaN or infinity --------------------------------------------------------


def _webhook_rejects_nan_infinities_and_the_duplicate_before_sending(runs: Runs) -> None:
    assert runs.first.rejected("hook") == {
        str(NAN): "field 'score': nan is not a JSON number",
        str(INF): "field 'score': inf is not a JSON number",
        str(MINUS_INF): "field 'score': -inf is not a JSON number",
        str(TWINS): DUPLICATE_REASON,
    }
    assert sorted(runs.first.hooked, key=int) == [str(PLAIN), str(TOO_LONG), str(AT_LIMIT), str(BYTES)]


def _webhook_sends_utc_timestamps_whatever_the_machine_zone(runs: Runs) -> None:
    # Run 1 ran with TZ=America/New_York: the zoned value still arrives in UTC, the naive one as is.
    for record in runs.first.hooked.values():
        assert record["seen_tz"] == "2025-06-01T10:00:00+00:00"
        assert record["seen_naive"] == "2025-06-01T10:00:00"
    assert runs.first.hooked[str(BYTES)]["raw"] == "//4="
    assert runs.first.hooked[str(TOO_LONG)]["full_name"] == "x" * TOO_LONG_LENGTH


# --- rejected rows stay pending; nothing else is resent -------------------------------------------


def _a_second_run_sends_nothing_and_rejects_the_same_rows_again(runs: Runs) -> None:
    first, again = runs.first, runs.again
    for sync in SYNCS:
        assert again.counts(sync)["sent"] == 0, sync
        assert again.counts(sync)["changed"] == 0, sync  # another TZ changed no fingerprint
        assert again.rejected(sync) == first.rejected(sync), sync  # not marked synced: still pending
        assert again.counts(sync)["rejected"] == first.counts(sync)["rejected"], sync
    assert again.hook_requests == first.hook_requests  # every hook rejection is on our side
    assert (again.contacts, again.hooked) == (first.contacts, first.hooked)
    assert _nan_as_text(again.table) == _nan_as_text(first.table)


def _nan_as_text(table: dict[int, tuple[Any, ...]]) -> dict[int, tuple[Any, ...]]:
    """NaN as a string: NaN != NaN would fail the comparison of two equal tables."""
    return {k: tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
            for k, row in table.items()}


def _once_the_model_is_fixed_every_rejected_row_arrives(runs: Runs) -> None:
    fixed = runs.fixed
    for sync in SYNCS:
        assert fixed.counts(sync)["rejected"] == 0, sync
        assert fixed.results[sync]["rejected_samples"] == [], sync
    expected = sorted(r.customer_id for r in FIXED_ROWS)
    assert sorted(fixed.table) == expected
    assert sorted(int(k) for k in fixed.contacts) == expected
    assert sorted(int(k) for k in fixed.hooked) == expected
    assert fixed.contacts[str(TOO_LONG)]["full_name"] == "short now"
    assert fixed.contacts[str(NAN)]["score"] == "2.0"
    assert fixed.hooked[str(INF)]["score"] == 3.0
    assert fixed.table[TWINS][TABLE_COLUMNS.index("full_name")] == "twin a"
    # Only the corrected rows were sent (pending, or changed where they had gone through), no other.
    for sync in SYNCS:
        assert fixed.counts(sync)["sent"] == len(FIXED), sync


CHECKS = (
    _rejections_end_a_run_with_exit_1_and_no_traceback,
    _postgres_rejects_only_the_duplicate_key,
    _postgres_stores_nan_and_infinities_in_a_float_column,
    _postgres_stores_long_strings_bytes_and_both_timestamps_exactly,
    _hubspot_rejects_nan_infinities_the_over_long_string_and_the_duplicate,
    _hubspot_gets_one_epoch_ms_for_both_timestamps_base64_bytes_and_the_string_at_the_limit,
    _webhook_rejects_nan_infinities_and_the_duplicate_before_sending,
    _webhook_sends_utc_timestamps_whatever_the_machine_zone,
    _a_second_run_sends_nothing_and_rejects_the_same_rows_again,
    _once_the_model_is_fixed_every_rejected_row_arrives,
)


def test_bad_row_values_are_rejected_or_formatted_deterministically(runs: Runs) -> None:
    # One set of runs serves every check: split into tests sharing a module fixture, xdist would
    # repeat the three dbt-activate invocations on every worker that took one of them.
    failed = []
    for check in CHECKS:  # every check runs, and the test names each one that failed
        try:
            check(runs)
        except AssertionError as exc:
            failed.append(f"{check.__name__}: {exc}")
    assert failed == []
