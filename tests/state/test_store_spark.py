"""The state store where the state writes are not plain DELETE and UPDATE (Dialect's state-write
hooks): Spark without Delta (INSERT OVERWRITE and appends, warehouse/spark.py) on the Thrift server,
and BigQuery (MERGE, warehouse/bigquery.py) on crucible. Acknowledged rows reach the snapshot (added,
changed, removed), rejected rows are counted once per run and leave when acknowledged, and a sync's
latest run is the one that counts. The mode end-to-end tests (tests/e2e/test_spark.py, test_modes.py)
reject no row: this is where the rejections' statements run."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_activate.state.journal import MAYBE_FINGERPRINT
from dbt_activate.state.runs import last_runs
from dbt_activate.state.store import RunRow, WarehouseStateStore
from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.spark import SparkDialect
from tests.support import bigquery, spark

SYNC = "people_crm"


@pytest.fixture(params=[
    pytest.param("spark", marks=pytest.mark.spark),
    pytest.param("bigquery", marks=[pytest.mark.bigquery, pytest.mark.bigquery_in_default_run]),
])
def store(request: pytest.FixtureRequest) -> Iterator[WarehouseStateStore]:
    schema = f"act_state_{uuid.uuid4().hex[:8]}"
    if request.param == "bigquery":  # crucible's server through the real Client
        conn = WarehouseConnection(bigquery.client(request.getfixturevalue("crucible_port")), BigQueryDialect())
    else:
        conn = WarehouseConnection(spark.connect(request.getfixturevalue("spark_port")), SparkDialect())
    state = WarehouseStateStore(conn, schema)
    state.ensure()
    try:
        yield state
    finally:
        if request.param == "spark":  # crucible's datasets go with its server
            conn.execute(f"drop schema if exists {schema} cascade")
        conn.close()


def _csv(path: Path, rows: list[tuple[str | None, ...]]) -> Path:
    with path.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(["" if v is None else v for v in row] for row in rows)
    return path


def _run(run_id: str, status: str) -> RunRow:
    return RunRow(run_id, "inv", SYNC, "people", "crm", "contacts", "upsert", status, "2026-01-01 00:00:00",
                  "2026-01-01 00:00:0" + run_id[-1], 1.0, {"rows_added": 1}, None)


def test_segments_rejections_and_runs_without_plain_delete_or_update(store: WarehouseStateStore,
                                                                     tmp_path: Path) -> None:
    snapshot = store.snapshot(SYNC)
    acks = _csv(tmp_path / "1.acks.csv", [("add", "k1", "F1", None), ("add", "k2", "F2", "{\"id\": 2}")])
    rejects = _csv(tmp_path / "1.rejects.csv", [("k3", "bad email"), ("k4", "it's \\ odd")])
    store.apply_segment(SYNC, "run-1", acks, rejects)
    store.apply_segment(SYNC, "run-1", None, _csv(tmp_path / "2.rejects.csv", [("k3", "bad email")]))
    rejections = store.table("sync_rejections")
    assert sorted(store.conn.query(f"select sync_key, reason, attempts from {rejections}")) == [
        ("k3", "bad email", 1), ("k4", "it's \\ odd", 1)]  # counted once in one run

    acks = _csv(tmp_path / "3.acks.csv", [("change", "k1", "F1b", None), ("remove", "k2", "F2", None),
                                          ("add", "k3", "F3", None)])
    store.apply_segment(SYNC, "run-2", acks, _csv(tmp_path / "3.rejects.csv", [("k4", "still odd")]))
    assert sorted(store.conn.query(f"select sync_key, fingerprint from {snapshot}")) == [("k1", "F1b"), ("k3", "F3")]
    assert store.conn.query(f"select sync_key, reason, attempts from {rejections}") == [("k4", "still odd", 2)]

    assert store.finish(_run("run-1", "success"), config_hash="h1", fields_signature="s1", complete=False) == 1
    assert store.finish(_run("run-2", "failed"), config_hash="h2", fields_signature="s2", complete=True) == 1
    saved = store.saved_syncs()
    assert saved[SYNC].saved.config_hash == "h2" and saved[SYNC].fields_signature == "s2"  # the latest row
    assert last_runs(store.conn, store.schema)[SYNC].status == "failed"

    store.resend(SYNC, ["k3"])  # an UPDATE: a MERGE on BigQuery, a rewrite of the table on Spark
    assert sorted(store.conn.query(f"select sync_key, fingerprint, record_identity from {snapshot}")) == [
        ("k1", "F1b", None), ("k3", MAYBE_FINGERPRINT, None)]

    store.reset_snapshot(SYNC)
    assert store.is_empty(snapshot)
