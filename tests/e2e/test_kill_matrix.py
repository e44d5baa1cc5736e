"""SIGKILL at >= 20 seeded points across extract, delivery, journal and state writes: nothing lost.

One project with two syncs of the same model: ``mirror`` (idempotent) and ``append`` (cannot be).
Before each run the model changes (every row renamed, rows added and removed), and the run is
killed at a point picked deterministically: the n-th pass through a named crash point
(``DBT_ACTIVATE_CRASH_AT``, see ``dbt_activate/crashpoints.py``) or the n-th request arriving at
the receiver (a batch in flight). Kill points cycle over every phase; n comes from a seeded RNG.
After the last kill one clean run must leave the mirror receiver equal to the model, the newest
append event of every key equal to the model, and append duplicates no more than the records the
runs reported as in flight at a kill.

``KILL_POINTS`` (default 20) and ``KILL_SEED`` choose a longer or different sequence.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
from collections import Counter
from dataclasses import dataclass, field

import pytest

from dbt_activate.crashpoints import ENV
from dbt_activate.testing.messages import Request, Response
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import BIN, Project, customer

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

SEED = int(os.environ.get("KILL_SEED", "20261122"))
KILLS = int(os.environ.get("KILL_POINTS", "20"))
ROWS = 40
BATCH = 10
# (point, highest n): every run sends ~2 x ROWS records in batches of BATCH with checkpoints
# every 20 rows, so each n below is reached in a run that has that much to do.
CATALOGUE = [("extract.row", 70), ("deliver.acked", 7), ("receiver", 7), ("journal.flushed", 7),
             ("checkpoint.apply", 3), ("checkpoint.applied", 3), ("sync.replayed", 2),
             ("state.finish", 2), ("state.finished", 2)]


@dataclass
class Killer:
    """Kills the running ``dbt-activate`` when the n-th request reaches either receiver."""

    at: int | None = None
    proc: subprocess.Popen[str] | None = None
    seen: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def arm(self, at: int | None) -> None:
        self.at, self.seen, self.proc = at, 0, None
        self.ready.clear()

    def request_arrived(self) -> bool:
        if self.at is None:
            return False
        with self.lock:
            self.seen += 1
            hit = self.seen == self.at
        if hit:
            assert self.ready.wait(60)
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(60)
        return hit


class KillingReceiver(WebhookReceiver):
    def __init__(self, killer: Killer) -> None:
        super().__init__()
        self.killer = killer

    def _receive(self, request: Request) -> Response:
        if self.killer.request_arrived():
            return Response.text("the client is gone", 503)  # never read: nothing was applied
        return super()._receive(request)


def _mutate(project: Project, step: int, rng: random.Random) -> None:
    """A new value for every row, two rows gone, two new rows: every run has work in every phase."""
    import duckdb

    con = duckdb.connect(str(project.root / "wh.duckdb"))
    try:
        con.execute(f"update main.customers set full_name = 'step{step}-' || customer_id")
        ids = [r[0] for r in con.execute("select customer_id from main.customers order by 1").fetchall()]
        gone = rng.sample(ids, 2)
        con.execute(f"delete from main.customers where customer_id in ({gone[0]}, {gone[1]})")
        for new in (1000 + 2 * step, 1001 + 2 * step):
            con.execute(f"insert into main.customers select {new}, 'user{new}@example.com', 'step{step}-{new}', "
                        "country, score, is_vip, signup_date, updated_at from main.customers limit 1")
    finally:
        con.close()


def _run(project: Project, crash_at: str | None, killer: Killer, receiver_at: int | None,
         *args: str) -> tuple[int, str]:
    env = {**project.run_env(), "DBT_ACTIVATE_CHECKPOINT_ROWS": "20"}
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    killer.arm(receiver_at)
    proc = subprocess.Popen([str(BIN / "dbt-activate"), "run", "--all", *args], cwd=project.root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer.proc = proc
    killer.ready.set()
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def _reported_unconfirmed(stderr: str, sync: str) -> int:
    found = re.findall(rf"{sync}: the previous run stopped with (\d+) records sent but not confirmed", stderr)
    return sum(int(n) for n in found)


# Covered in process, at every named crash point and in both mode families, by
# tests/engine/test_crash_replay.py::test_a_crash_then_one_run_leaves_the_destination_equal_to_the_model;
# the SIGKILL smoke tests below and tests/e2e/test_recovery.py keep the real kill in the default run.
@pytest.mark.slow
def test_sigkill_at_seeded_points_loses_nothing_and_duplicates_only_what_was_in_flight(
        duckdb_project: Project) -> None:
    rng = random.Random(SEED)
    killer = Killer()
    with KillingReceiver(killer) as mirror, KillingReceiver(killer) as append:
        blocks = [
            {"destination": "mirror_hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
             "name": "kill_mirror"},
            {"destination": "append_hook", "object": "customers", "mode": "append", "primary_key": "customer_id",
             "name": "kill_append"},
        ]
        hooks = {name: {"type": "webhook", "url": r.url, "batch_size": BATCH, "max_concurrency": 2}
                 for name, r in (("mirror_hook", mirror), ("append_hook", append))}
        duckdb_project.write([customer(i) for i in range(1, ROWS + 1)], blocks, hooks,
                             model_sql="{{ config(materialized='table') }} select * from {{ ref('seed_customers') }}")
        duckdb_project.dbt("build")

        kills: list[str] = []
        reported = 0
        step = 0
        while len(kills) < KILLS:
            step += 1
            assert step <= 3 * KILLS, f"only {len(kills)} of {KILLS} kill points were reached"
            _mutate(duckdb_project, step, rng)
            point, highest = CATALOGUE[step % len(CATALOGUE)]
            n = rng.randint(1, highest)
            # Every other run syncs only the append sync, so the early kill points reach it too.
            only = ("--select", "kill_append") if step % 2 else ()
            code, err = _run(duckdb_project, None if point == "receiver" else f"{point}:{n}", killer,
                             n if point == "receiver" else None, *only)
            reported += _reported_unconfirmed(err, "kill_append")
            assert "Traceback" not in err, err
            if code == -signal.SIGKILL:
                kills.append(f"{point}:{n}")
            else:
                assert code == 0, err

        code, err = _run(duckdb_project, None, killer, None)
        reported += _reported_unconfirmed(err, "kill_append")
        assert code == 0, err

    print(f"kill matrix seed {SEED}: {len(kills)} kills in {step} runs: {kills}")
    model = {str(r[0]): r[1] for r in duckdb_project.model_rows(columns=["customer_id", "full_name"])}
    mirrored = {k: v["full_name"] for k, v in mirror.records.items()}
    assert mirrored == model, (kills, {k: v for k, v in mirrored.items() if model.get(k) != v})

    newest: dict[str, str] = {}
    for event in append.events:
        newest[str(event["customer_id"])] = event["full_name"]
    assert {k: newest.get(k) for k in model} == model  # every change of every live row was appended
    # Each step gives every row a new name, so a repeated (key, name) event is a duplicate.
    repeats = Counter((str(e["customer_id"]), e["full_name"]) for e in append.events)
    duplicates = sum(n - 1 for n in repeats.values())
    print(f"append duplicates {duplicates} <= reported in flight {reported}")
    assert duplicates <= reported, (duplicates, reported, kills)
    assert reported > 0, "no append batch was in flight at any kill: the sequence does not test append"
    phases = {k.split(":")[0] for k in kills}
    assert {"extract.row", "receiver", "deliver.acked", "checkpoint.apply", "state.finish"} <= phases, kills
    assert not list((duckdb_project.root / "target" / "activate" / "journal").rglob("*.csv"))


@pytest.mark.slow  # SIGKILL; in process: tests/engine/test_crash_replay.py (every crash point, mirror and append)
def test_a_record_sent_without_an_answer_is_deleted_when_its_row_left_the_model(duckdb_project: Project) -> None:
    """Killed right after the first batch was acknowledged, before the journal knew: the destination
    has 10 records the state never heard of. Their rows then leave the model: mirror must delete them."""
    killer = Killer()
    with KillingReceiver(killer) as receiver:
        block = [{"destination": "hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
                  "name": "kill_mirror"}]
        duckdb_project.write([customer(i) for i in range(1, 31)], block,
                             {"hook": {"type": "webhook", "url": receiver.url, "batch_size": BATCH}},
                             model_sql="{{ config(materialized='table') }} select * from {{ ref('seed_customers') }}")
        duckdb_project.dbt("build")
        code, _ = _run(duckdb_project, "deliver.acked:1", killer, None)
        assert code == -signal.SIGKILL
        first = {str(r["key"]) for r in receiver.payloads()[0]["records"]}
        assert set(receiver.records) == first

        import duckdb

        con = duckdb.connect(str(duckdb_project.root / "wh.duckdb"))
        try:
            con.execute(f"delete from main.customers where customer_id in ({', '.join(first)})")
        finally:
            con.close()
        code, err = _run(duckdb_project, None, killer, None)
        assert code == 0, err
        assert "the previous run stopped with 10 records sent but not confirmed" in err
        assert "harmless: mode mirror" in err
    model = {str(r[0]) for r in duckdb_project.model_rows(columns=["customer_id"])}
    assert set(receiver.records) == model  # the 10 unconfirmed records whose rows left were deleted


@pytest.mark.slow  # SIGKILL; in process: tests/engine/test_crash_replay.py (every crash point, mirror and append)
def test_append_duplicates_exactly_the_batch_in_flight_and_says_so(duckdb_project: Project) -> None:
    killer = Killer()
    with KillingReceiver(killer) as receiver:
        block = [{"destination": "hook", "object": "customers", "mode": "append", "primary_key": "customer_id",
                  "name": "kill_append"}]
        duckdb_project.write([customer(i) for i in range(1, 31)], block,
                             {"hook": {"type": "webhook", "url": receiver.url, "batch_size": BATCH}})
        duckdb_project.dbt("build")
        code, _ = _run(duckdb_project, "deliver.acked:2", killer, None)  # batch 2 delivered, never journaled
        assert code == -signal.SIGKILL
        code, err = _run(duckdb_project, None, killer, None)
        assert code == 0, err
    assert _reported_unconfirmed(err, "kill_append") == BATCH
    assert "may now hold up to 10 of them twice" in err
    assert f"up to {BATCH} of them twice" in duckdb_project.result_of("kill_append")["reason"]
    repeats = Counter(str(e["customer_id"]) for e in receiver.events)
    assert sorted(repeats.values()).count(2) == BATCH and set(repeats.values()) == {1, 2}
    assert set(repeats) == {str(i) for i in range(1, 31)}
