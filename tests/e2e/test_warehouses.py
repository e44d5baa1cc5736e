"""Warehouses dbt-activate has no dialect for are refused before any SQL runs, with exit 2 naming the
adapter and the supported ones (SQL written for another warehouse fails there at best, and at worst
gives wrong answers: on BigQuery a double-quoted name is a string literal)."""

from __future__ import annotations

import pytest
import yaml

from dbt_activate.warehouse.registry import supported
from tests.e2e.project import Project, customer

# dbt and dbt-activate in this process (tests/e2e/inprocess.py): dbt-trino is installed in neither case,
# so a refusal that tried to load the adapter would fail here as it would in a new process.
pytestmark = pytest.mark.in_process


def test_a_profile_on_an_adapter_without_a_dialect_exits_2_naming_it_and_the_supported_ones(
        duckdb_project: Project) -> None:
    p = duckdb_project
    p.write([customer(i) for i in range(1, 6)], [{"destination": "ops_db", "object": "crm.customers",
                                                   "primary_key": "customer_id", "name": "customers_crm"}])
    p.dbt("build")
    # dbt-trino is not even installed: the refusal must not depend on dbt loading the adapter.
    (p.root / "profiles.yml").write_text(yaml.safe_dump({"e2e": {"target": "dev", "outputs": {"dev": {
        "type": "trino", "host": "127.0.0.1", "port": 1, "user": "x", "database": "d", "schema": "s"}}}}))
    for command in ("run", "plan"):
        proc = p.activate(command)
        assert proc.returncode == 2, (proc.returncode, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "dbt adapter 'trino'" in proc.stderr, proc.stderr
        assert f"supported: {', '.join(supported())}" in proc.stderr, proc.stderr
    assert not (p.root / "target" / "activate_results.json").exists()  # nothing ran, nothing recorded
