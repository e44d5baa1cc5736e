"""`-s state:modified --state DIR` and graph operators through the real CLI on a DuckDB project."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

BLOCK = {"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id", "name": "customers_ops"}


def _add_child_model(project: Project) -> None:
    (project.root / "models" / "vips.sql").write_text("select * from {{ ref('customers') }} where is_vip")
    schema = yaml.safe_load((project.root / "models" / "schema.yml").read_text())
    schema["models"].append({"name": "vips", "config": {"meta": {"activate": [
        {**BLOCK, "object": "crm.vips", "name": "vips_ops"}]}}})
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump(schema))


def _planned(project: Project, *args: str) -> list[str]:
    proc = project.activate("plan", "--project-dir", str(project.root), "--profiles-dir", str(project.root),
                            "--all", *args)
    assert proc.returncode == 0, proc.stderr
    return sorted(r["sync"] for r in project.results()["results"])


def test_state_modified_and_graph_operators(duckdb_project: Project) -> None:
    project = duckdb_project
    project.write([customer(i) for i in range(1, 6)], [BLOCK])
    _add_child_model(project)
    project.dbt("build")
    state = project.root / "prod_state"
    shutil.copytree(project.root / "target", state)

    # Nothing changed since the state manifest: nothing selected.
    assert _planned(project, "-s", "state:modified", "--state", str(state)) == []
    # Edit only the child model's SQL.
    (project.root / "models" / "vips.sql").write_text("select * from {{ ref('customers') }} where is_vip and 1=1")
    project.dbt("build")
    assert _planned(project, "-s", "state:modified", "--state", str(state)) == ["vips_ops"]
    assert _planned(project, "-s", "+state:modified", "--state", str(state)) == ["customers_ops", "vips_ops"]
    # An activate block change makes its model modified too.
    schema = yaml.safe_load((project.root / "models" / "schema.yml").read_text())
    schema["models"][0]["config"]["meta"]["activate"][0]["where"] = "country = 'FR'"
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump(schema))
    project.dbt("parse")
    assert _planned(project, "-s", "state:modified", "--state", str(state)) == ["customers_ops", "vips_ops"]
    # Graph operators without state.
    assert _planned(project, "-s", "customers+") == ["customers_ops", "vips_ops"]
    # state:modified without --state is exit 2 with the reason.
    proc = project.activate("plan", "--project-dir", str(project.root), "--profiles-dir", str(project.root),
                            "--all", "-s", "state:modified")
    assert proc.returncode == 2 and "needs --state DIR" in proc.stderr
