"""End to end, per mode: dbt build -> dbt-activate run -> PostgreSQL destination, twice.

The first run sends every row of the segment; after rows are updated, deleted and inserted in the
seed and the model rebuilt, the second run sends exactly those, and the destination table equals
the model (segment applied) for the mapped fields.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.project import COLUMNS, Project, customer

# dbt and dbt-activate run in process (tests/e2e/inprocess.py), but for mirror on each warehouse: the
# true end to end test of that warehouse, the installed commands started as subprocesses (slow but on
# DuckDB, tests/conftest.py: upsert with on_delete delete runs the same diff in process in the default
# run). The other modes run on DuckDB and PostgreSQL by default, on the other warehouses in the slow set.
pytestmark = [pytest.mark.in_process]

SEGMENT = "country in ('FR', 'GB')"
IN_SEGMENT = {"FR", "GB"}


def _seed() -> list[dict[str, Any]]:
    return [customer(i) for i in range(1, 61)]


def _mutated(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, set[int]]]:
    """Update 6 rows, delete 4, insert 5, move 2 out of the segment and 1 into it."""
    by_id = {r["customer_id"]: dict(r) for r in rows}
    changed = {3, 4, 6, 7, 9, 10}
    for i in changed:
        by_id[i]["score"] = 999.5
        by_id[i]["full_name"] = f"Renamed {i}"
    deleted = {12, 13, 15, 16}
    for i in deleted:
        del by_id[i]
    inserted = set(range(100, 105))
    for i in inserted:
        by_id[i] = customer(i)
    left_segment = {18, 19}  # FR, GB -> RU
    for i in left_segment:
        by_id[i]["country"] = "RU"
    joined_segment = {20}  # RU -> FR
    by_id[20]["country"] = "FR"
    return list(by_id.values()), {"changed": changed, "deleted": deleted, "inserted": inserted,
                                  "left": left_segment, "joined": joined_segment}


def _in_segment(rows: list[dict[str, Any]], ids: set[int]) -> set[int]:
    return {r["customer_id"] for r in rows if r["customer_id"] in ids and r["country"] in IN_SEGMENT}


def _activate(mode: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"destination": "ops_db", "object": "crm.customers", "mode": mode, "primary_key": "customer_id",
             "where": SEGMENT, "name": "customers_crm", **extra}]


def _assert_destination_equals_model(project: Project) -> None:
    expected = project.model_rows(where=SEGMENT)
    actual = project.destination_rows("crm.customers")
    assert actual == expected


def _sync(project: Project) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == 0, proc.stderr
    return project.result_of("customers_crm")["counts"]


@pytest.mark.redshift_in_default_run
@pytest.mark.snowflake_in_default_run
@pytest.mark.bigquery_in_default_run
@pytest.mark.parametrize("mode", ["upsert", pytest.param("mirror", marks=pytest.mark.subprocess)])
def test_upsert_and_mirror_send_only_changes_and_match_the_model(project: Project, mode: str) -> None:
    rows = _seed()
    project.write(rows, _activate(mode, **({"on_delete": "delete"} if mode == "upsert" else {})))
    project.dbt("build")
    first = _sync(project)
    assert first["added"] == first["sent"] == len(_in_segment(rows, {r["customer_id"] for r in rows}))
    _assert_destination_equals_model(project)

    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    second = _sync(project)
    old_segment = _in_segment(rows, {r["customer_id"] for r in rows})
    assert second["changed"] == len(ids["changed"] & old_segment)
    assert second["removed"] == len((ids["deleted"] | ids["left"]) & old_segment)
    assert second["added"] == len(_in_segment(mutated, ids["inserted"] | ids["joined"]))
    assert second["sent"] == second["added"] + second["changed"] + second["removed"]
    _assert_destination_equals_model(project)

    third = _sync(project)  # nothing changed since: nothing is sent
    assert third["sent"] == 0


@pytest.mark.default_run_on_duckdb
def test_upsert_with_on_delete_ignore_keeps_removed_records(project: Project) -> None:
    rows = _seed()
    project.write(rows, _activate("upsert"))
    project.dbt("build")
    _sync(project)
    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    second = _sync(project)
    assert second["removed"] == 0
    kept = {r[0] for r in project.destination_rows("crm.customers")}
    assert (ids["deleted"] | ids["left"]) & _in_segment(rows, ids["deleted"] | ids["left"]) <= kept


@pytest.mark.default_run_on_duckdb
def test_on_delete_clear_empties_fields_and_keeps_the_record(project: Project) -> None:
    rows = _seed()
    project.write(rows, _activate("upsert", on_delete="clear"))
    project.dbt("build")
    _sync(project)
    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    _sync(project)
    gone = _in_segment(rows, ids["deleted"])
    cleared = project.destination_rows("crm.customers")
    for row in cleared:
        if row[0] in gone:
            assert row[1:] == (None,) * (len(COLUMNS) - 1)


@pytest.mark.default_run_on_duckdb
def test_update_only_touches_existing_records_and_skips_others(project: Project) -> None:
    rows = _seed()
    project.write(rows, _activate("upsert"))
    project.dbt("build")
    _sync(project)  # creates every record through an upsert sync
    project.set_activate(_activate("update"))
    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 0, proc.stderr
    counts = project.result_of("customers_crm")["counts"]
    new_in_segment = _in_segment(mutated, ids["inserted"] | ids["joined"])
    assert counts["skipped"] == len(new_in_segment)
    dest = {r[0]: r for r in project.destination_rows("crm.customers")}
    assert not new_in_segment & set(dest)
    for i in ids["changed"] & set(dest):
        assert dest[i][2] == f"Renamed {i}"


@pytest.mark.default_run_on_duckdb
def test_create_sends_new_rows_only(project: Project) -> None:
    rows = _seed()
    project.write(rows, _activate("create"))
    project.dbt("build")
    first = _sync(project)
    assert first["added"] == len(_in_segment(rows, {r["customer_id"] for r in rows}))
    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    second = _sync(project)
    assert second["changed"] == 0 and second["removed"] == 0
    assert second["added"] == second["sent"] == len(_in_segment(mutated, ids["inserted"] | ids["joined"]))
    dest = {r[0]: r for r in project.destination_rows("crm.customers")}
    for i in ids["changed"] & set(dest):
        assert dest[i][2] == f"Customer {i}"  # create never updates


@pytest.mark.default_run_on_duckdb
def test_append_sends_every_added_or_changed_row_as_a_new_record(project: Project) -> None:
    rows = _seed()
    project.write(rows, _activate("append"))
    project.dbt("build")
    first = _sync(project)
    mutated, ids = _mutated(rows)
    project.write_rows(mutated)
    project.dbt("build")
    second = _sync(project)
    old_segment = _in_segment(rows, {r["customer_id"] for r in rows})
    expected = len(ids["changed"] & old_segment) + len(_in_segment(mutated, ids["inserted"] | ids["joined"]))
    assert second["sent"] == expected
    appended = project.destination_rows("crm.customers", ["customer_id"])
    assert len(appended) == first["sent"] + expected
