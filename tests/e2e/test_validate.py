"""`dbt-activate validate` on a real dbt project (DuckDB): every problem listed, with file and key path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dbt_activate.commands.validate import validate
from dbt_activate.core.types import Batch, BatchResult, Mode, SyncTarget
from dbt_activate.destinations.base import Destination
from dbt_activate.errors import ConfigError
from dbt_activate.project import resolve_paths
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

COLUMNS = ["customer_id", "email", "full_name", "country", "score", "is_vip", "signup_date", "updated_at"]
DESTINATIONS = {
    "ops_db": {"type": "postgres", "dsn": "host=127.0.0.1 dbname=unused", "create_table": True},
    "crm": {"type": "hubspot", "access_token": "{{ env_var('VALIDATE_HS_TOKEN', 'pat-test') }}"},
    "secretless": {"type": "hubspot", "access_token": "{{ env_var('VALIDATE_NOT_SET_ANYWHERE') }}"},
    "untyped": {"type": "no_such_type"},
}


def _write(project: Project, declared: list[dict[str, Any]], raw: list[dict[str, Any]]) -> None:
    """Two models: `customers` declares its columns; `customers_raw` declares none."""
    project.write([customer(i) for i in range(1, 4)], [], DESTINATIONS)
    (project.root / "models" / "customers_raw.sql").write_text("select * from {{ ref('seed_customers') }}")
    (project.root / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "models": [
        {"name": "customers", "columns": [{"name": c} for c in COLUMNS],
         "config": {"meta": {"activate": declared}}},
        {"name": "customers_raw", "config": {"meta": {"activate": raw}}},
    ]}))


def _validate(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    proc = project.activate("validate", "--project-dir", str(project.root), "--output", "json", *args)
    assert proc.stdout, proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_clean_project_exits_0(duckdb_project: Project) -> None:
    good = {"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id",
            "fields": ["email", "full_name"]}
    _write(duckdb_project, [good], [{**good, "object": "crm.raw", "fields": "auto"}])
    DESTINATIONS_OK = {k: v for k, v in DESTINATIONS.items() if k in ("ops_db", "crm")}
    (duckdb_project.root / "destinations.yml").write_text(yaml.safe_dump(DESTINATIONS_OK))
    duckdb_project.dbt("parse")
    code, doc = _validate(duckdb_project)
    assert (code, doc["problems"], doc["syncs"]) == (0, [], 2), doc
    # customers_raw declares no columns and there is no catalog.json: said, not an error.
    assert any("customers_raw" in w and "columns not checked" in w for w in doc["warnings"])


def test_every_problem_is_listed_with_its_yaml_path(duckdb_project: Project) -> None:
    declared: list[dict[str, Any]] = [
        # 0: fine
        {"destination": "ops_db", "object": "crm.customers", "primary_key": "customer_id"},
        # 1: unknown destination AND a misspelt column: both reported
        {"destination": "nowhere", "object": "x.y", "primary_key": "customer_id", "fields": ["emial"]},
        # 2: no primary key
        {"destination": "ops_db", "object": "crm.nokey"},
        # 3: HubSpot finds a record by one property; a two-column key without `match` cannot work
        {"destination": "crm", "object": "contacts", "primary_key": ["customer_id", "email"]},
        # 4: match names a column the model does not declare
        {"destination": "crm", "object": "contacts", "primary_key": "customer_id", "match": {"mail": "email"},
         "name": "by_mail"},
        # 5: destination whose secret does not resolve / whose type is unknown
        {"destination": "secretless", "object": "contacts", "primary_key": "customer_id", "name": "s1"},
        {"destination": "untyped", "object": "contacts", "primary_key": "customer_id", "name": "s2"},
    ]
    raw = [{"destination": "ops_db", "object": "crm.raw", "primary_key": "id", "fields": ["email"]}]
    _write(duckdb_project, declared, raw)
    # catalog.json needs the relations: build, then docs generate.
    duckdb_project.dbt("build")
    duckdb_project.dbt("docs", "generate")
    code, doc = _validate(duckdb_project)
    problems = doc["problems"]
    assert code == 2
    base = "models/schema.yml: customers.config.meta.activate"

    def has(fragment: str, text: str) -> bool:
        return any(p.startswith(fragment) and text in p for p in problems)

    assert has(f"{base}[1].destination", "'nowhere' is not defined"), problems
    assert has(f"{base}[1].fields.emial", "column 'emial' is not in model customers's catalog.json"), problems
    assert has(f"{base}[2].primary_key", "is required"), problems
    assert has(f"{base}[3]", "HubSpot finds a record by one unique property"), problems
    assert has(f"{base}[4].match.mail", "column 'mail'"), problems
    destinations_file = str((duckdb_project.root / "destinations.yml").resolve())
    assert has(f"{destinations_file}: secretless.access_token", "VALIDATE_NOT_SET_ANYWHERE"), problems
    assert has(f"{destinations_file}: untyped.type", "unknown destination type 'no_such_type'"), problems
    # No column declared: checked against catalog.json, which knows customers_raw has no `id`.
    assert has("models/schema.yml: customers_raw.config.meta.activate[0].primary_key", "catalog.json"), problems
    assert not any("[0]" in p and "customers.config" in p for p in problems), problems
    assert len(problems) == 8, problems
    # Text output: the same problems, one per line, and the exit code.
    proc = duckdb_project.activate("validate", "--project-dir", str(duckdb_project.root))
    assert proc.returncode == 2
    assert "8 problems in 8 syncs" in proc.stdout
    assert f"{base}[1].fields.emial" in proc.stdout


@pytest.mark.slow
def test_missing_manifest_is_exit_2(tmp_path: Path) -> None:
    (tmp_path / "dbt_project.yml").write_text("name: x\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    with pytest.raises(ConfigError, match=r"manifest.json not found"):
        validate(resolve_paths(str(tmp_path)))


class _AppendOnly(Destination):
    kind = "append_only"
    modes = frozenset({Mode.APPEND})

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        raise AssertionError("validate never writes")


@pytest.mark.slow
def test_mode_not_supported_by_the_destination_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import manifest, model_node

    monkeypatch.setattr("dbt_activate.project.load_destination_type", lambda kind: _AppendOnly)
    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    (tmp_path / "target").mkdir()
    blocks = [{"destination": "events", "object": "e", "primary_key": "id", "mode": "upsert"},
              {"destination": "events", "object": "e", "primary_key": "id", "mode": "append", "name": "ok"}]
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest(
        ("model.shop.people", model_node("people", blocks, columns={"id": "integer"})))))
    (tmp_path / "destinations.yml").write_text("events:\n  type: append_only\n")
    report = validate(resolve_paths(str(tmp_path)))
    assert report.problems == [
        "models/schema.yml: people.config.meta.activate[0].mode: destination type 'append_only' does not "
        "support mode 'upsert' (supported: append)"]


@pytest.mark.slow
def test_activate_defaults_are_merged_like_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.factories import manifest, model_node

    monkeypatch.setattr("dbt_activate.project.load_destination_type", lambda kind: _AppendOnly)
    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    (tmp_path / "target").mkdir()
    inherits = model_node("people", [{"object": "e", "primary_key": "id"}], columns={"id": "integer"})
    inherits["config"]["meta"]["activate_defaults"] = {"destination": "events", "mode": "append"}
    broken = model_node("deals", [{"destination": "events", "object": "e", "primary_key": "id", "mode": "append"}],
                        columns={"id": "integer"})
    broken["config"]["meta"]["activate_defaults"] = {"name": "shared"}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest(
        ("model.shop.people", inherits), ("model.shop.deals", broken))))
    (tmp_path / "destinations.yml").write_text("events:\n  type: append_only\n")
    report = validate(resolve_paths(str(tmp_path)))
    assert len(report.problems) == 1, report.problems
    assert "deals.config.meta.activate_defaults" in report.problems[0]
    assert "is set per sync, not as a default" in report.problems[0]


@pytest.mark.slow
def test_destination_target_checks_see_on_delete(tmp_path: Path) -> None:
    # Zendesk cannot delete or clear users found by email: validate must say so, as run does.
    from tests.factories import manifest, model_node

    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    (tmp_path / "target").mkdir()
    block = {"destination": "support", "object": "users", "primary_key": "id", "match": {"email": "email"},
             "fields": ["email"], "on_delete": "clear"}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest(
        ("model.shop.people", model_node("people", [block], columns={"id": "integer", "email": "text"})))))
    (tmp_path / "destinations.yml").write_text(
        "support:\n  type: zendesk\n  subdomain: acme\n  oauth_token: tok-123456\n")
    report = validate(resolve_paths(str(tmp_path)))
    assert len(report.problems) == 1, report.problems
    assert "people.config.meta.activate[0]" in report.problems[0]
    assert "on_delete clear needs Zendesk users found by external_id" in report.problems[0]


@pytest.mark.parametrize("catalog", ["[1, 2]", '"catalog"', '{"nodes": [1]}', "{not json"])
@pytest.mark.slow
def test_a_catalog_that_is_not_a_dbt_catalog_is_a_warning(tmp_path: Path, catalog: str) -> None:
    from tests.factories import manifest, model_node

    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    (tmp_path / "target").mkdir()
    block = {"destination": "ops_db", "object": "crm.people", "primary_key": "id"}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest(
        ("model.shop.people", model_node("people", [block])))))
    (tmp_path / "target" / "catalog.json").write_text(catalog)
    (tmp_path / "destinations.yml").write_text(yaml.safe_dump({"ops_db": DESTINATIONS["ops_db"]}))
    report = validate(resolve_paths(str(tmp_path)))
    assert report.problems == []
    assert any("catalog.json" in w and "ignored" in w for w in report.warnings), report.warnings


def test_columns_by_what_exists_and_a_bad_where_is_a_config_error_of_its_sync(duckdb_project: Project) -> None:
    # Issue 18 §3, as on jaffle-shop: the model documents a column that does not exist (`ghost`) and
    # leaves out ones that do (`email`, `full_name`); one segment has a typo (`contry`).
    from dbt_activate.testing.webhook.emulator import WebhookReceiver

    p = duckdb_project
    with WebhookReceiver() as hook:
        good = {"destination": "hook", "object": "fr", "primary_key": "customer_id", "mode": "mirror",
                "fields": ["email", "full_name"], "where": "country = 'FR'", "name": "good"}
        bad = {**good, "object": "ru", "where": "contry = 'RU'", "name": "bad"}
        p.write([customer(i) for i in range(1, 10)], [], {"hook": {"type": "webhook", "url": hook.url}})
        (p.root / "models" / "schema.yml").write_text(yaml.safe_dump({"version": 2, "models": [
            {"name": "customers", "columns": [{"name": "customer_id"}, {"name": "ghost"}],
             "config": {"meta": {"activate": [good, bad]}}}]}))
        p.dbt("parse")
        code, doc = _validate(p)
        assert (code, doc["problems"]) == (0, []), doc
        undocumented = [w for w in doc["warnings"] if "is not documented" in w]
        assert any("activate[0].fields.email" in w and "model customers" in w for w in undocumented), doc
        assert len(undocumented) == 4, doc  # email and full_name, in both syncs

        p.dbt("build")
        code, doc = _validate(p, "--warehouse")
        where = "models/schema.yml: customers.config.meta.activate[1].where"
        assert code == 2, doc
        [problem] = doc["problems"]  # the columns exist in the relation: only the segment is wrong
        assert problem.startswith(where) and "contry" in problem and "model customers" in problem, problem
        assert not [w for w in doc["warnings"] if "is not documented" in w], doc

        for command in ("plan", "run"):
            proc = p.activate(command, "--output", "json")
            assert proc.returncode == 2, proc.stderr[-2000:]
            results = {r["sync"]: r for r in json.loads(proc.stdout)["results"]}
            assert results["bad"]["status"] == "error", results
            assert results["bad"]["error"].startswith(where) and "contry" in results["bad"]["error"]
            assert results["good"]["status"] == ("planned" if command == "plan" else "success"), results
            assert results["good"]["counts"]["added"] == 3
        assert sorted(r["key"] for payload in hook.payloads() for r in payload["records"]) == ["3", "6", "9"]


def test_an_older_key_name_is_a_warning_and_set_with_the_new_one_a_problem(tmp_path: Path) -> None:
    # Klaviyo's poll_timeout is now job_timeout, the knob every vendor whose batches become jobs takes.
    from tests.factories import manifest, model_node

    (tmp_path / "dbt_project.yml").write_text("name: shop\nversion: '1'\nconfig-version: 2\nprofile: x\n")
    (tmp_path / "target").mkdir()
    block = {"destination": "kl", "object": "profiles", "primary_key": "id", "match": {"email": "email"},
             "fields": ["email"]}
    (tmp_path / "target" / "manifest.json").write_text(json.dumps(manifest(
        ("model.shop.people", model_node("people", [block], columns={"id": "integer", "email": "text"})))))
    path = tmp_path / "destinations.yml"
    path.write_text("kl:\n  type: klaviyo\n  api_key: pk_test\n  poll_timeout: 60\n")
    report = validate(resolve_paths(str(tmp_path)))
    assert (report.exit_code, report.problems) == (0, [])
    assert f"{path}: kl.poll_timeout is deprecated: rename it to job_timeout (until then it is read as " \
           "job_timeout)" in report.warnings
    path.write_text("kl:\n  type: klaviyo\n  api_key: pk_test\n  poll_timeout: 60\n  job_timeout: 90\n")
    report = validate(resolve_paths(str(tmp_path)))
    assert report.exit_code == 2
    assert report.problems == [f"{path}: kl.poll_timeout: poll_timeout is the deprecated name of job_timeout, and "
                               "both are set: keep job_timeout only"]
