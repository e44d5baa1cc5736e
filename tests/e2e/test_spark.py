"""The mode end-to-end tests (tests/e2e/test_modes.py) through dbt-spark on Spark's Thrift server:
dbt build -> dbt-activate run -> PostgreSQL destination, first sync, change and delete, rerun exact.

Spark here has no Delta: the state is written with INSERT OVERWRITE and appends (warehouse/spark.py).
The upsert/mirror family runs in the default suite; the other modes are slow (tests/conftest.py):
each dbt command starts dbt-spark and each statement is a Spark job, a few seconds apiece.
"""

from __future__ import annotations

import pytest

from tests.e2e import test_modes
from tests.e2e.project import Project

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


@pytest.mark.parametrize("mode", ["upsert", "mirror"])
def test_upsert_and_mirror_send_only_changes_and_match_the_model(spark_project: Project, mode: str) -> None:
    test_modes.test_upsert_and_mirror_send_only_changes_and_match_the_model(spark_project, mode)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def test_upsert_with_on_delete_ignore_keeps_removed_records(spark_project: Project) -> None:
    test_modes.test_upsert_with_on_delete_ignore_keeps_removed_records(spark_project)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def test_on_delete_clear_empties_fields_and_keeps_the_record(spark_project: Project) -> None:
    test_modes.test_on_delete_clear_empties_fields_and_keeps_the_record(spark_project)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def test_update_only_touches_existing_records_and_skips_others(spark_project: Project) -> None:
    test_modes.test_update_only_touches_existing_records_and_skips_others(spark_project)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def test_create_sends_new_rows_only(spark_project: Project) -> None:
    test_modes.test_create_sends_new_rows_only(spark_project)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def test_append_sends_every_added_or_changed_row_as_a_new_record(spark_project: Project) -> None:
    test_modes.test_append_sends_every_added_or_changed_row_as_a_new_record(spark_project)
    assert _statuses_recorded_in_spark(spark_project) == {"success"}


def _statuses_recorded_in_spark(project: Project) -> set[str]:
    """The statuses of the mode test's runs (each already checked against the model) as the Spark state
    recorded them in its append-only Avro table: {"success"} means at least one run, none failed."""
    rows = project.warehouse_query(f"select status from {project.warehouse_db}_activate.sync_runs")
    return {r[0] for r in rows}
