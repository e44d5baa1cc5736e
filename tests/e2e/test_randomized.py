"""A seeded random walk of model mutations, API faults and SIGKILLs, ending in one clean run.

One DuckDB model (a table, changed in place between runs) feeds two ``mirror`` syncs with a segment:
HubSpot contacts (matched by email) and a webhook receiver. Each step mutates the model at random
(renames, deletions, insertions, rows moving in and out of the segment, in random amounts), then
runs ``dbt-activate run`` in one of three ways, also at random: clean; into faults armed on both
endpoints (429s, 5xx, dropped connections, timeouts applied late, 207 partial failures); or killed
with SIGKILL at a random pass through a random crash point (``dbt_activate/crashpoints.py``).

After every run the state must never be ahead of the destinations: every snapshot entry the run
changed stands for a record the destination holds with the model's values, and every key a run
dropped from a snapshot is gone from its destination. After the walk one clean run must leave both
destinations equal to the model's segment, with no rejection left.

``RANDOM_STEPS`` (default 6, what CI runs) and ``RANDOM_SEED`` choose a longer or another walk:

    RANDOM_STEPS=60 RANDOM_SEED=7 python -m pytest -n 0 -s tests/e2e/test_randomized.py
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.crashpoints import ENV
from dbt_activate.destinations.hubspot.payload import format_value
from dbt_activate.testing import HubSpotEmulator, HubSpotProperty
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.warehouse.dialect import snapshot_table_name
from tests.e2e.project import BIN, Project, customer

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

SEED = int(os.environ.get("RANDOM_SEED", "20261122"))
STEPS = int(os.environ.get("RANDOM_STEPS", "6"))
TOKEN = "pat-na1-random-0a1b2c3d4e5f60718293a4b5"
ROWS = 120
BATCH = 10
SEGMENT = "country in ('FR', 'GB')"
STATE = "main_activate"
FIELDS = ("customer_id", "email", "full_name", "country")
PROPERTIES = (HubSpotProperty("customer_id", "number"), HubSpotProperty("full_name"), HubSpotProperty("country"))
SYNCS = ("walk_crm", "walk_hook")
# Crash points and the highest pass worth drawing: a run sends at most a few hundred rows in
# batches of BATCH with a checkpoint every 20 rows.
CRASH_POINTS = {"extract.row": 150, "deliver.acked": 12, "journal.flushed": 12, "checkpoint.apply": 6,
                "checkpoint.applied": 6, "sync.replayed": 2, "state.finish": 2, "state.finished": 2}


def _arm_429(crm: HubSpotEmulator, hook: WebhookReceiver, rng: random.Random) -> None:
    crm.inject("throttle", count=rng.randint(1, 4))
    hook.fail_next(429, rng.randint(1, 4), retry_after=0.1)


def _arm_5xx(crm: HubSpotEmulator, hook: WebhookReceiver, rng: random.Random) -> None:
    for emu in (crm, hook):
        emu.inject("status_5xx", count=rng.randint(1, 3), status=rng.choice([500, 502, 503]))


def _arm_drops(crm: HubSpotEmulator, hook: WebhookReceiver, rng: random.Random) -> None:
    for emu in (crm, hook):
        emu.inject("drop", count=rng.randint(1, 3))


def _arm_timeouts(crm: HubSpotEmulator, hook: WebhookReceiver, rng: random.Random) -> None:
    for emu in (crm, hook):  # applied 3 s late; the client gives up after 2 s and retries
        emu.inject("timeout", count=rng.randint(1, 2), seconds=3.0)


def _arm_partial(crm: HubSpotEmulator, hook: WebhookReceiver, rng: random.Random) -> None:
    crm.inject("partial", count=rng.randint(1, 2), path=r"/batch/upsert$")
    keys = [str(i) for i in rng.sample(range(1, ROWS + 1), 3)]
    hook.reject_keys.update(dict.fromkeys(keys, "refused by the receiver: random walk"))


FAULTS: dict[str, Callable[[HubSpotEmulator, WebhookReceiver, random.Random], None]] = {
    "429": _arm_429, "5xx": _arm_5xx, "drops": _arm_drops, "timeouts": _arm_timeouts, "partial": _arm_partial}


def _mutate(project: Project, rng: random.Random, step: int) -> str:
    """Random amounts of every kind of change; returns a summary for the failure message."""
    import duckdb

    con = duckdb.connect(str(project.root / "wh.duckdb"))
    try:
        ids = [r[0] for r in con.execute("select customer_id from main.customers order by 1").fetchall()]
        renamed = rng.sample(ids, rng.randint(0, len(ids) // 3))
        if renamed:
            con.execute(f"update main.customers set full_name = 'Step {step} ' || customer_id "
                        f"where customer_id in ({', '.join(map(str, renamed))})")
        moved = rng.sample(ids, rng.randint(0, 6))
        for customer_id in moved:
            con.execute("update main.customers set country = ? where customer_id = ?",
                        [rng.choice(["FR", "GB", "RU"]), customer_id])
        deleted = rng.sample(ids, rng.randint(0, 6))
        if deleted:
            con.execute(f"delete from main.customers where customer_id in ({', '.join(map(str, deleted))})")
        added = [1000 * step + i for i in range(rng.randint(0, 12))]
        for new in added:
            con.execute("insert into main.customers select ?, ?, ?, ?, score, is_vip, signup_date, updated_at "
                        "from main.customers limit 1",
                        [new, f"user{new}@example.com", f"New {new}", rng.choice(["FR", "GB", "RU"])])
    finally:
        con.close()
    return f"renamed {len(renamed)}, moved {len(moved)}, deleted {len(deleted)}, added {len(added)}"


def _model(project: Project) -> dict[str, dict[str, str]]:
    rows = project.model_rows(where=SEGMENT, columns=list(FIELDS))
    return {str(r[0]): {f: str(format_value(v)) for f, v in zip(FIELDS, r, strict=True)} for r in rows}


def _held(sync: str, crm: HubSpotEmulator, hook: WebhookReceiver) -> dict[str, dict[str, str]]:
    if sync == "walk_hook":
        return {k: {f: str(format_value(v.get(f))) for f in FIELDS} for k, v in hook.records.items()}
    return {r["properties"]["customer_id"]: {f: str(r["properties"].get(f)) for f in FIELDS}
            for r in crm.records("contacts")}


def _snapshot(project: Project, sync: str) -> dict[str, str]:
    table = f"{STATE}.{snapshot_table_name(sync)}"
    try:
        rows = project.warehouse_query(f"select sync_key, fingerprint from {table}")
    except Exception:  # the first run was killed before it created the snapshot
        return {}
    return {str(k): str(f) for k, f in rows}


def _settle(endpoints: tuple[Emulator, ...]) -> None:
    """Wait until every request read has been answered: a timed-out request is applied late."""
    deadline = time.monotonic() + 30
    for emu in endpoints:
        while sum(emu.counters.by_status.values()) < emu.counters.requests:
            assert time.monotonic() < deadline, f"{emu.vendor} emulator kept a request open"
            time.sleep(0.05)


def _run(project: Project, crash_at: str | None = None) -> tuple[int, str]:
    env = {**project.run_env(), "DBT_ACTIVATE_CHECKPOINT_ROWS": "20"}
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    proc = subprocess.run([str(BIN / "dbt-activate"), "run", "--all"], cwd=project.root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.returncode, proc.stdout + proc.stderr


def _check_state_never_ahead(project: Project, before: dict[str, dict[str, str]], crm: HubSpotEmulator,
                             hook: WebhookReceiver, what: str) -> None:
    model = _model(project)
    for sync in SYNCS:
        after, held = _snapshot(project, sync), _held(sync, crm, hook)
        for key in (k for k, f in after.items() if before[sync].get(k) != f):
            assert held.get(key) == model.get(key), (what, sync, key, "marked synced but not in the destination")
        for key in set(before[sync]) - set(after):
            assert key not in held, (what, sync, key, "dropped from the state but still in the destination")


def _project(tmp_path: Path, crm: HubSpotEmulator, hook: WebhookReceiver) -> Project:
    common: dict[str, Any] = {"primary_key": "customer_id", "where": SEGMENT, "mode": "mirror",
                              "fields": list(FIELDS)}
    blocks: list[dict[str, Any]] = [
        {"name": "walk_crm", "destination": "crm", "object": "contacts", "match": {"email": "email"}, **common},
        {"name": "walk_hook", "destination": "hook", "object": "customers", **common}]
    limits = {"batch_size": BATCH, "max_concurrency": 2, "timeout": 2.0}
    destinations: dict[str, Any] = {
        "crm": {"type": "hubspot", "access_token": TOKEN, "base_url": crm.base_url,
                "rate_limit": {"requests": 100, "per_seconds": 1}, **limits},
        "hook": {"type": "webhook", "url": hook.url, **limits}}
    project = Project(tmp_path, "duckdb")
    project.write([customer(i) for i in range(1, ROWS + 1)], blocks, destinations,
                  model_sql="{{ config(materialized='table') }} select * from {{ ref('seed_customers') }}")
    project.dbt("build")
    return project


@pytest.mark.slow  # the guarantees it mixes are table tests in tests/engine (crash replay, faults, mirror equality)
def test_a_random_walk_of_mutations_faults_and_kills_ends_equal_to_the_model(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    with HubSpotEmulator(token=TOKEN, properties={"contacts": PROPERTIES}) as crm, WebhookReceiver() as hook:
        project = _project(tmp_path, crm, hook)
        walk: list[str] = []
        for step in range(1, STEPS + 1):
            changes = _mutate(project, rng, step)
            before = {sync: _snapshot(project, sync) for sync in SYNCS}
            action = rng.choice(["clean", "fault", "kill"])
            if action == "fault":
                fault = rng.choice(sorted(FAULTS))
                for emu in (crm, hook):
                    emu.reset_counters()
                FAULTS[fault](crm, hook, rng)
                code, out = _run(project)
                if fault == "timeouts":
                    _settle((crm, hook))
                allowed = {0, 1}
                action = f"fault {fault}"
            elif action == "kill":
                point = rng.choice(sorted(CRASH_POINTS))
                crash_at = f"{point}:{rng.randint(1, CRASH_POINTS[point])}"
                code, out = _run(project, crash_at)
                allowed = {0, -signal.SIGKILL}
                action = f"kill at {crash_at}" + ("" if code else " (not reached)")
            else:
                code, out = _run(project)
                allowed = {0}
            what = f"seed {SEED} step {step}: {changes}; {action} -> exit {code}"
            walk.append(what)
            assert code in allowed, (walk, out[-3000:])
            _check_state_never_ahead(project, before, crm, hook, what)
            for emu in (crm, hook):
                emu.clear_faults()
            hook.reject_keys.clear()

        code, out = _run(project)
        assert code == 0, (walk, out[-3000:])
        print("\n".join(walk))
        model = _model(project)
        for sync in SYNCS:
            assert _held(sync, crm, hook) == model, (walk, sync)
        assert project.warehouse_query(f"select count(*) from {STATE}.sync_rejections") == [(0,)]
    assert crm.errors == hook.errors == []
