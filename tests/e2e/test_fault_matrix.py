"""Fault matrix: every fault an API meets in production, then one clean run; nothing lost, nothing faked.

Each scenario builds one throwaway dbt DuckDB project whose ``customers`` model (a table, so the
test can change it without another ``dbt build``) feeds four syncs: HubSpot contacts in ``upsert``
mode, HubSpot contacts in ``mirror`` mode (a second account), a HubSpot custom object in ``append``
mode and a webhook receiver in ``mirror`` mode. Then:

1. a clean first run;
2. the model changes (renames, deletions, new rows, rows leaving the ``where`` segment), the
   scenario's faults are armed on every endpoint (``dbt_activate/testing/faults.py`` and the
   emulators' rate-limit, quota and latency knobs), and ``dbt-activate run`` runs into them;
3. the state is checked against what the endpoints hold: every row the run marked synced (a new
   fingerprint in the snapshot) is in the destination with the model's values, every key it
   dropped from a mirror snapshot is gone from the destination, and rows a destination refused
   are in ``sync_rejections`` with the vendor's reason;
4. the faults are cleared and one more run goes through: the upsert and mirror destinations equal
   the model (segment applied), the newest append event of every key equals the model, appended
   records number what the runs counted as sent (plus, only where a timed-out request was applied
   after the client gave up, at most the records of those requests), and no rejection is left.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from dbt_activate.destinations.hubspot.payload import format_value
from dbt_activate.testing import HubSpotEmulator, HubSpotObject, HubSpotProperty
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.warehouse.dialect import snapshot_table_name
from tests.e2e.project import COLUMNS, Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN = "pat-na1-fault-0a1b2c3d4e5f60718293a4b5"
ROWS = 300
BATCH = 25
SEGMENT = "country in ('FR', 'GB')"
STATE = "main_activate"
PROPERTIES = [HubSpotProperty("customer_id", "number"), HubSpotProperty("full_name"), HubSpotProperty("country"),
              HubSpotProperty("score", "number"), HubSpotProperty("is_vip", "bool"),
              HubSpotProperty("signup_date", "date"), HubSpotProperty("updated_at", "datetime")]
SIGNUPS = HubSpotObject("signups", "2-7654321", (HubSpotProperty("email"), *PROPERTIES))
HOOK_FIELDS = ("email", "full_name", "country")
SYNCS = ("fm_upsert", "fm_mirror", "fm_append", "fm_hook")


@dataclass
class Endpoints:
    """HubSpot account A (upsert + append), account B (mirror) and the webhook receiver."""

    a: HubSpotEmulator
    b: HubSpotEmulator
    hook: WebhookReceiver

    @property
    def hubspots(self) -> tuple[HubSpotEmulator, HubSpotEmulator]:
        return self.a, self.b

    @property
    def all(self) -> tuple[Emulator, ...]:
        return self.a, self.b, self.hook

    def clear(self) -> None:
        for emu in self.all:
            emu.clear_faults()
            emu.latency = 0.0
            emu.rate_limit = None
            emu.daily_limit = None
            emu.reset_daily()
        self.hook.reject_keys.clear()

    def settle(self) -> None:
        """Wait until every request read has been answered: a timed-out request is applied late."""
        deadline = time.monotonic() + 30
        for emu in self.all:
            while sum(emu.counters.by_status.values()) < emu.counters.requests:
                assert time.monotonic() < deadline, f"{emu.vendor} emulator kept a request open"
                time.sleep(0.05)


@dataclass(frozen=True)
class Scenario:
    name: str
    arm: Callable[[Endpoints, list[str]], None]  # gets the keys this step renamed
    exits: frozenset[int]  # what the faulted run may exit with
    fired: Callable[[Endpoints], bool]  # proof that the faults happened
    timeout: float = 10.0  # the destinations' per-request timeout in this scenario
    late_writes: int = 0  # requests the endpoints may apply after the client gave up on them
    rejects: bool = False  # the faulted run leaves rows in sync_rejections


def _faults(e: Endpoints) -> int:
    return sum(emu.counters.faults for emu in e.all)


def _storm(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.hubspots:
        emu.rate_limit = (6, 1.0)  # tighter than destinations.yml claims: real 429s with HubSpot's headers
        emu.inject("throttle", count=3)
    e.hook.fail_next(429, 3, retry_after=0.2)


def _burst(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.all:
        for status in (500, 502, 503):
            emu.inject("status_5xx", status=status)


def _timeouts(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.all:
        emu.inject("timeout", count=2, seconds=2.0)  # applied 2 s late; the client gives up after 1 s


def _drops(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.all:
        emu.inject("drop", count=3)


def _partial(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.hubspots:  # 207 multi-status: every odd record of two batches refused
        emu.inject("partial", count=2, path=r"/batch/(upsert|create)$")
    e.hook.reject_keys.update(dict.fromkeys(renamed[:4], "refused by the receiver: bad email domain"))


def _quota(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.hubspots:
        emu.daily_limit = emu.daily_used + 4  # four more calls today, then HubSpot's DAILY 429


def _slow(e: Endpoints, renamed: list[str]) -> None:
    for emu in e.all:
        emu.latency = 0.05


SCENARIOS = [
    Scenario("429_storm", _storm, frozenset({0}),
             lambda e: all(emu.counters.throttled >= 3 for emu in e.hubspots) and _faults(e) >= 6),
    Scenario("5xx_burst", _burst, frozenset({0}), lambda e: _faults(e) == 9),
    Scenario("timeouts", _timeouts, frozenset({0}), lambda e: _faults(e) == 6, timeout=1.0, late_writes=6),
    Scenario("dropped_connections", _drops, frozenset({0}), lambda e: _faults(e) == 9),
    Scenario("partial_batch_207", _partial, frozenset({1}), lambda e: _faults(e) == 4, rejects=True),
    Scenario("daily_quota_mid_sync", _quota, frozenset({1}),
             lambda e: all(emu.counters.throttled >= 1 for emu in e.hubspots)),
    Scenario("slow_responses", _slow, frozenset({0}), lambda e: all(emu.counters.requests for emu in e.all)),
]


@dataclass
class World:
    """One project, built once, whose four syncs every scenario continues from a clean state."""

    project: Project
    endpoints: Endpoints
    sent: Counter[str]  # records each sync reported as sent, over every run
    late: int = 0  # records the endpoints may have applied after the client gave up on them
    step: int = 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with HubSpotEmulator(token=TOKEN, properties={"contacts": PROPERTIES}, custom_objects=[SIGNUPS]) as a, \
            HubSpotEmulator(token=TOKEN, properties={"contacts": PROPERTIES}) as b, WebhookReceiver() as hook:
        e = Endpoints(a, b, hook)
        project = Project(tmp_path_factory.mktemp("fault_matrix"), "duckdb")
        project.write([customer(i) for i in range(1, ROWS + 1)], _blocks(), _destinations(e, 10.0),
                      model_sql="{{ config(materialized='table') }} select * from {{ ref('seed_customers') }}")
        project.dbt("build")
        code, out, first = _run(project)
        assert code == 0, out[-3000:]
        yield World(project, e, Counter({name: r["counts"]["sent"] for name, r in first.items()}))
    assert a.errors == b.errors == hook.errors == []


def _blocks() -> list[dict[str, Any]]:
    common = {"primary_key": "customer_id", "where": SEGMENT}
    return [
        {"name": "fm_upsert", "destination": "crm_a", "object": "contacts", "mode": "upsert",
         "match": {"email": "email"}, **common},
        {"name": "fm_mirror", "destination": "crm_b", "object": "contacts", "mode": "mirror",
         "match": {"email": "email"}, **common},
        {"name": "fm_append", "destination": "crm_a", "object": "2-7654321", "mode": "append", **common},
        {"name": "fm_hook", "destination": "hook", "object": "customers", "mode": "mirror", **common},
    ]


def _destinations(e: Endpoints, timeout: float) -> dict[str, Any]:
    limits = {"batch_size": BATCH, "max_concurrency": 2, "timeout": timeout}
    crm = {"type": "hubspot", "access_token": TOKEN, "rate_limit": {"requests": 50, "per_seconds": 1}, **limits}
    return {"crm_a": {**crm, "base_url": e.a.base_url}, "crm_b": {**crm, "base_url": e.b.base_url},
            "hook": {"type": "webhook", "url": e.hook.url, **limits}}


def _mutate(project: Project, step: int) -> None:
    """Rename a quarter, delete and add rows, move rows out of the segment and back in."""
    import duckdb

    con = duckdb.connect(str(project.root / "wh.duckdb"))
    try:
        con.execute(f"update main.customers set full_name = 'Step {step} ' || customer_id "
                    f"where customer_id % 4 = {step % 4}")
        con.execute(f"delete from main.customers where customer_id % 23 = {step}")
        con.execute(f"update main.customers set country = 'FR' where country = 'RU' and customer_id % 13 = {step - 1}")
        con.execute(f"update main.customers set country = 'RU' where customer_id % 13 = {step}")
        con.execute(f"insert into main.customers select customer_id + {1000 * step}, 'user' || "
                    f"(customer_id + {1000 * step}) || '@example.com', 'New ' || customer_id, country, score, "
                    "is_vip, signup_date, updated_at from main.customers where customer_id between 1 and 12")
    finally:
        con.close()


# --- what the model, the endpoints and the state hold, keyed by customer_id ----------------------------------


def _model(project: Project) -> dict[str, dict[str, str]]:
    out = {}
    for row in project.model_rows(where=SEGMENT):
        props = {c: format_value(v) for c, v in zip(COLUMNS, row, strict=True)}
        out[str(row[0])] = {c: str(v) for c, v in props.items() if v is not None}
    return out


def _hook_view(values: dict[str, Any]) -> dict[str, str]:
    return {f: str(values.get(f)) for f in HOOK_FIELDS}


def _held(e: Endpoints, sync: str) -> dict[str, dict[str, str]]:
    """Upsert/mirror destinations: what each key's record holds now."""
    if sync == "fm_hook":
        return {k: _hook_view(v) for k, v in e.hook.records.items()}
    emu = e.a if sync == "fm_upsert" else e.b
    return {r["properties"]["customer_id"]: dict(r["properties"]) for r in emu.records("contacts")}


def _expected(model: dict[str, dict[str, str]], sync: str) -> dict[str, dict[str, str]]:
    return {k: _hook_view(v) for k, v in model.items()} if sync == "fm_hook" else model


def _events(e: Endpoints) -> list[dict[str, str]]:
    return [dict(r["properties"]) for r in e.a.records("signups")]


def _snapshot(project: Project, sync: str) -> dict[str, str]:
    table = f"{STATE}.{snapshot_table_name(sync)}"
    return {str(k): str(f) for k, f in project.warehouse_query(f"select sync_key, fingerprint from {table}")}


def _rejections(project: Project) -> dict[tuple[str, str], str]:
    rows = project.warehouse_query(f"select sync_name, sync_key, reason from {STATE}.sync_rejections")
    return {(str(s), str(k)): str(r) for s, k, r in rows}


def _run(project: Project) -> tuple[int, str, dict[str, dict[str, Any]]]:
    proc = project.activate("run", "--all")
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    results = {r["sync"]: r for r in project.results()["results"]}
    return proc.returncode, proc.stdout + proc.stderr, results


def _check_state_never_ahead(project: Project, e: Endpoints, before: dict[str, dict[str, str]]) -> None:
    """Every snapshot entry the faulted run wrote stands for a record the destination holds."""
    model = _model(project)
    for sync in ("fm_upsert", "fm_mirror", "fm_hook"):
        after = _snapshot(project, sync)
        held, expected = _held(e, sync), _expected(model, sync)
        marked = {k for k, f in after.items() if before[sync].get(k) != f}
        for key in marked:
            assert held.get(key) == expected[key], (sync, key, "marked synced but not in the destination")
        if sync != "fm_upsert":  # mirror: a key dropped from the snapshot was deleted at the destination
            for key in set(before[sync]) - set(after):
                assert key not in held, (sync, key, "dropped from the state but still in the destination")
    appended = {(ev["customer_id"], ev.get("full_name")) for ev in _events(e)}
    after = _snapshot(project, "fm_append")
    for key in (k for k, f in after.items() if before["fm_append"].get(k) != f):
        assert (key, model[key]["full_name"]) in appended, ("fm_append", key, "marked synced but never appended")


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_after_faults_and_one_clean_run_every_destination_equals_the_model(world: World, scenario: Scenario) -> None:
    project, e = world.project, world.endpoints
    world.step += 1
    _mutate(project, world.step)
    if scenario.timeout != 10.0:
        (project.root / "destinations.yml").write_text(yaml.safe_dump(_destinations(e, scenario.timeout)))
    before = {sync: _snapshot(project, sync) for sync in SYNCS}
    for emu in e.all:
        emu.reset_counters()
    renamed = sorted(k for k, v in _model(project).items() if v["full_name"].startswith(f"Step {world.step} "))
    scenario.arm(e, renamed)
    try:
        code, out, faulted = _run(project)
        if scenario.late_writes:
            e.settle()
    finally:
        (project.root / "destinations.yml").write_text(yaml.safe_dump(_destinations(e, 10.0)))
    assert code in scenario.exits, out[-3000:]
    assert scenario.fired(e), [emu.counters for emu in e.all]
    if code:  # a sync that did not fully go through says so, and what to do
        assert "run again" in out or "retried by the next run" in out, out[-3000:]
    world.sent.update({name: r["counts"]["sent"] for name, r in faulted.items()})
    world.late += scenario.late_writes * BATCH
    _check_state_never_ahead(project, e, before)
    rejections = _rejections(project)
    if scenario.rejects:
        assert {"fm_upsert", "fm_mirror", "fm_hook"} <= {sync for sync, _ in rejections}, rejections
        for (sync, key), reason in rejections.items():
            assert ("refused by the receiver" if sync == "fm_hook" else "Injected partial failure") in reason
            assert _snapshot(project, sync).get(key) == before[sync].get(key), (sync, key, "rejected yet marked")
    if scenario.name == "daily_quota_mid_sync":
        stopped = [r for r in faulted.values() if "daily API limit" in (r["error"] or "")]
        assert stopped and any(r["counts"]["sent"] for r in stopped), faulted  # it stopped mid-sync

    e.clear()
    code, out, clean = _run(project)
    assert code == 0, out[-3000:]
    world.sent.update({name: r["counts"]["sent"] for name, r in clean.items()})
    model = _model(project)
    for sync in ("fm_mirror", "fm_hook"):
        assert _held(e, sync) == _expected(model, sync), sync
    upserted = _held(e, "fm_upsert")
    assert {k: upserted.get(k) for k in model} == model  # upsert keeps what left the segment
    assert _rejections(project) == {}

    events = _events(e)
    newest: dict[str, str | None] = {}
    for event in events:
        newest[event["customer_id"]] = event.get("full_name")
    assert {k: newest.get(k) for k in model} == {k: v["full_name"] for k, v in model.items()}
    duplicates = len(events) - world.sent["fm_append"]
    assert 0 <= duplicates <= world.late, (len(events), world.sent["fm_append"], world.late)
