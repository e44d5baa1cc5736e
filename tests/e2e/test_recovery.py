"""Nothing lost: the state is never ahead of the destination, whatever stops a run.

A destination that fails mid-sync, a run killed with SIGKILL while a batch is in flight, and a
killed run whose local journal is gone (a fresh CI runner) each end, after one clean run, with the
destination equal to the model, and with no row sent twice unless it was in flight at the kill.
"""

from __future__ import annotations

import signal
import subprocess
import threading
from collections import Counter

import pytest

from dbt_activate.testing.messages import Request, Response
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import BIN, Project, customer

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

ROWS = [customer(i) for i in range(1, 201)]
BATCH = 10


class ScriptedReceiver(WebhookReceiver):
    """Accepts ``ok`` requests, then fails with 401 (``mode='fail'``) or holds the request open
    (``mode='hold'``) until released, so a test can kill the client with a batch in flight."""

    def __init__(self, ok: int, mode: str) -> None:
        super().__init__()
        self.ok, self.mode = ok, mode
        self.held = threading.Event()
        self.release = threading.Event()
        self.sent_keys: Counter[str] = Counter()  # every key the receiver accepted, with repeats

    def arm(self, ok: int, mode: str) -> None:
        self.ok, self.mode = ok, mode
        self.held.clear()
        self.release.clear()

    def _receive(self, request: Request) -> Response:
        accepted = sum(1 for r in self.requests if 200 <= r.status < 300)
        if accepted >= self.ok and self.mode == "fail":
            return Response.text("token revoked", 401)
        if accepted >= self.ok and self.mode == "hold":
            self.held.set()
            self.release.wait(30)
            return Response.text("too late", 503)
        response = super()._receive(request)
        if 200 <= response.status < 300:
            for record in self.requests[-1].payload["records"]:
                self.sent_keys[str(record["key"])] += 1
        return response


def _setup(project: Project, receiver: ScriptedReceiver, **env: str) -> None:
    block = [{"destination": "hook", "object": "customers", "mode": "mirror", "primary_key": "customer_id",
              "name": "customers_hook"}]
    project.write(ROWS, block, {"hook": {"type": "webhook", "url": receiver.url, "batch_size": BATCH,
                                         "max_concurrency": 1}})
    project.env.update(env)
    project.dbt("build")


def _assert_receiver_equals_model(project: Project, receiver: ScriptedReceiver) -> None:
    model = {str(r[0]): r[1] for r in project.model_rows(columns=["customer_id", "email"])}
    assert {k: v["email"] for k, v in receiver.records.items()} == model


def test_destination_failing_mid_sync_keeps_unsent_rows_for_the_next_run(duckdb_project: Project) -> None:
    with ScriptedReceiver(ok=5, mode="fail") as receiver:
        _setup(duckdb_project, receiver, DBT_ACTIVATE_CHECKPOINT_ROWS="20")
        first = duckdb_project.activate("run")
        assert first.returncode == 1
        assert "check the credentials" in first.stderr or "401" in first.stderr
        counts = duckdb_project.result_of("customers_hook")["counts"]
        assert counts["sent"] == 5 * BATCH
        snapshot = duckdb_project.warehouse_query(
            "select count(*) from information_schema.tables where table_schema = 'main_activate' "
            "and table_name like 'snapshot_customers_hook%'")
        assert snapshot == [(1,)]

        receiver.arm(ok=10**6, mode="fail")
        second = duckdb_project.activate("run")
        assert second.returncode == 0, second.stderr
        assert duckdb_project.result_of("customers_hook")["counts"]["sent"] == len(ROWS) - 5 * BATCH
    assert max(receiver.sent_keys.values()) == 1  # nothing was sent twice
    _assert_receiver_equals_model(duckdb_project, receiver)


def _kill_after(project: Project, receiver: ScriptedReceiver) -> None:
    proc = subprocess.Popen([str(BIN / "dbt-activate"), "run"], cwd=project.root, env=project.run_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert receiver.held.wait(600), "the run never reached the held batch"  # dbt-bigquery starts slowly
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        receiver.release.set()
        if proc.poll() is None:
            proc.kill()


def test_sigkill_with_a_batch_in_flight_resends_only_what_was_not_acknowledged(duckdb_project: Project) -> None:
    sent = _sigkill_and_resume(duckdb_project)
    assert len(sent) == len(ROWS) and set(sent.values()) == {1}  # every row arrived, none twice


@pytest.mark.snowflake
def test_sigkill_and_resume_on_snowflake(snowflake_project: Project) -> None:
    """The same through dbt-snowflake (fakesnow): the journal is applied with Snowflake's SQL."""
    sent = _sigkill_and_resume(snowflake_project)
    assert len(sent) == len(ROWS) and set(sent.values()) == {1}


@pytest.mark.bigquery
def test_sigkill_and_resume_on_bigquery(bigquery_project: Project) -> None:
    """The same through dbt-bigquery (crucible): the journal goes in by load job and MERGE, no transaction."""
    sent = _sigkill_and_resume(bigquery_project)
    assert len(sent) == len(ROWS) and set(sent.values()) == {1}


@pytest.mark.spark
def test_sigkill_and_resume_on_spark(spark_project: Project) -> None:
    """The same through dbt-spark (Thrift server, no Delta): the journal reaches the snapshot by INSERT
    OVERWRITE and appends, with no transaction."""
    sent = _sigkill_and_resume(spark_project)
    assert len(sent) == len(ROWS) and set(sent.values()) == {1}


def _sigkill_and_resume(project: Project) -> dict[str, int]:
    """Kill a run with a batch in flight, run again; returns how often the receiver got each key."""
    with ScriptedReceiver(ok=7, mode="hold") as receiver:
        _setup(project, receiver, DBT_ACTIVATE_CHECKPOINT_ROWS="30")
        _kill_after(project, receiver)
        journal = list((project.root / "target" / "activate" / "journal").rglob("*.acks.csv"))
        assert journal, "acknowledged rows since the last checkpoint are in the journal"

        receiver.arm(ok=10**6, mode="hold")
        again = project.activate("run")
        assert again.returncode == 0, again.stderr
        assert project.result_of("customers_hook")["counts"]["sent"] == len(ROWS) - 7 * BATCH
    assert max(receiver.sent_keys.values()) == 1  # the in-flight batch was never applied, so no repeats
    assert sum(receiver.sent_keys.values()) == len(ROWS)
    _assert_receiver_equals_model(project, receiver)
    assert not list((project.root / "target" / "activate" / "journal").rglob("*.csv"))
    return dict(receiver.sent_keys)


def test_killed_run_with_its_journal_lost_resends_at_most_the_unsaved_rows(duckdb_project: Project) -> None:
    checkpoint = 30
    with ScriptedReceiver(ok=7, mode="hold") as receiver:
        _setup(duckdb_project, receiver, DBT_ACTIVATE_CHECKPOINT_ROWS=str(checkpoint))
        _kill_after(duckdb_project, receiver)
        for path in (duckdb_project.root / "target" / "activate" / "journal").rglob("*.csv"):
            path.unlink()  # a fresh CI runner: only the warehouse state survives

        receiver.arm(ok=10**6, mode="hold")
        again = duckdb_project.activate("run")
        assert again.returncode == 0, again.stderr
    repeated = sum(n - 1 for n in receiver.sent_keys.values())
    assert 0 < repeated < checkpoint + BATCH  # mirror is idempotent: repeats are harmless upserts
    _assert_receiver_equals_model(duckdb_project, receiver)
