"""`dbt-activate docs --exposures`: the file it writes is accepted by `dbt parse` and shows in lineage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dbt_activate.commands.exposures import exposure_name, exposures_document
from dbt_activate.dbt.artifacts import parse_manifest
from dbt_activate.errors import ConfigError
from dbt_activate.spec import parse_manifest_syncs
from tests.e2e.project import Project, customer
from tests.factories import manifest, model_node

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

DESTINATIONS = {
    "ops-db": {"type": "postgres", "dsn": "{{ env_var('EXPOSURES_DSN_NOT_SET') }}",
               "owner": {"name": "Data Ops", "email": "ops@example.com"}},
    "crm": {"type": "hubspot", "access_token": "{{ env_var('EXPOSURES_TOKEN_NOT_SET') }}"},
}


def test_exposures_file_is_accepted_by_dbt_parse(duckdb_project: Project) -> None:
    project = duckdb_project
    project.write([customer(i) for i in range(1, 4)], [
        {"destination": "ops-db", "object": "crm.customers", "primary_key": "customer_id", "name": "to_ops"},
        {"destination": "crm", "object": "contacts", "primary_key": "customer_id", "match": {"email": "email"},
         "name": "to_crm"},
        {"destination": "crm", "object": "companies", "primary_key": "customer_id", "mode": "update",
         "name": "to_crm_companies"},
    ], DESTINATIONS)
    (project.root / "models" / "vips.sql").write_text("select * from {{ ref('customers') }} where is_vip")
    schema = yaml.safe_load((project.root / "models" / "schema.yml").read_text())
    schema["models"].append({"name": "vips", "config": {"meta": {"activate": [
        {"destination": "crm", "object": "contacts", "primary_key": "customer_id", "name": "vips_to_crm"}]}}})
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump(schema))
    project.dbt("parse")

    # The destinations' secrets are not set: docs never needs them.
    proc = project.activate("docs", "--exposures", "--project-dir", str(project.root))
    assert proc.returncode == 0, proc.stderr
    written = project.root / "models" / "dbt_activate_exposures.yml"
    assert f"Wrote 2 exposures to {written}" in proc.stdout

    project.dbt("parse")
    parsed = json.loads((project.root / "target" / "manifest.json").read_text())["exposures"]
    by_name = {e["name"]: e for e in parsed.values()}
    assert set(by_name) == {"activate_ops_db", "activate_crm"}
    crm, ops = by_name["activate_crm"], by_name["activate_ops_db"]
    assert crm["type"] == "application"
    assert sorted(crm["depends_on"]["nodes"]) == ["model.e2e.customers", "model.e2e.vips"]
    assert ops["depends_on"]["nodes"] == ["model.e2e.customers"]
    assert ops["owner"] == {"name": "Data Ops", "email": "ops@example.com"}
    assert crm["owner"]["name"] == "dbt-activate"
    assert "`to_crm_companies`: model `customers` -> object `companies` (mode update)" in crm["description"]
    assert crm["config"]["meta"]["dbt_activate"]["type"] == "hubspot"

    # --path writes elsewhere; without --exposures there is nothing to do (usage error).
    other = project.root / "models" / "exposures" / "activate.yml"
    assert project.activate("docs", "--exposures", "--path", str(other), "--project-dir",
                            str(project.root)).returncode == 0
    assert other.exists()
    assert project.activate("docs", "--project-dir", str(project.root)).returncode == 2


def test_document_for_a_model_of_another_package_and_owner_strings(tmp_path: Path) -> None:
    node = model_node("people", [{"destination": "hook", "object": "people", "primary_key": "id"}])
    node["package_name"] = "crm_pkg"
    m = parse_manifest(manifest(("model.crm_pkg.people", node)))
    doc = exposures_document(m, parse_manifest_syncs(m), {"hook": {"type": "webhook", "owner": "me@example.com"}})
    (exposure,) = doc["exposures"]
    assert exposure["depends_on"] == ["ref('crm_pkg', 'people')"]
    assert exposure["owner"] == {"email": "me@example.com"}
    assert exposure_name("my-dest.prod") == "activate_my_dest_prod"


def test_two_destinations_with_one_exposure_name_are_a_config_error(tmp_path: Path) -> None:
    node = model_node("people", [{"destination": "crm-eu", "object": "people", "primary_key": "id"},
                                 {"destination": "crm.eu", "object": "people", "primary_key": "id"}])
    m = parse_manifest(manifest(("model.shop.people", node)))
    with pytest.raises(ConfigError, match=r"'crm-eu' and 'crm.eu' both give the exposure name 'activate_crm_eu'"):
        exposures_document(m, parse_manifest_syncs(m), {"crm-eu": {"type": "webhook"}, "crm.eu": {"type": "webhook"}})
