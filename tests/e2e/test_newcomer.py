"""What a new user trips on, through the real console script (issue 19): a selection that matches
nothing, secrets of destinations the selected syncs do not use, bad --vars, the dbt flags on every
command, `dbt parse` for validate, undefined destinations in exposures, a missing extra, --help.

One dbt project is built once for the module: every test below only runs `dbt-activate`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

TOKEN_VAR = "NEWCOMER_HUBSPOT_TOKEN"  # never set: only the HubSpot sync needs it
FILES = {"destination": "crm_files", "object": "customers", "primary_key": "customer_id", "name": "people_files"}
HUBSPOT = {"destination": "crm_hubspot", "object": "contacts", "primary_key": "customer_id",
           "match": {"email": "email"}, "fields": ["email"], "name": "people_hubspot"}
DESTINATIONS = {
    "crm_files": {"type": "file", "path": "out", "format": "jsonl"},
    "crm_hubspot": {"type": "hubspot", "access_token": "{{ env_var('" + TOKEN_VAR + "') }}",
                    "base_url": "http://127.0.0.1:9"},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    os.environ.pop(TOKEN_VAR, None)
    project = Project(tmp_path_factory.mktemp("newcomer"), "duckdb")
    project.write([customer(i) for i in range(1, 7)], [FILES, HUBSPOT], DESTINATIONS)
    project.dbt("build")
    yield project


def _ok(proc: subprocess.CompletedProcess[str]) -> None:
    code, err = proc.returncode, proc.stderr
    assert code == 0, err
    assert "Traceback" not in err


def _usage_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2 with a message and no traceback; returns stderr."""
    code, err = proc.returncode, proc.stderr
    assert code == 2, (code, err)
    assert "Traceback" not in err and "unexpected error" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    return err


def test_a_selection_matching_nothing_warns_and_is_an_error_with_warn_error(built: Project) -> None:
    proc = built.activate("run", "-s", "people_files nosuchmodel")
    _ok(proc)
    assert "the selection criterion 'nosuchmodel' does not match any sync" in proc.stderr
    assert "people_files" not in proc.stderr.split("nosuchmodel")[0]  # only the term that matched nothing
    assert "--warn-error" in proc.stderr  # says how to make it an error
    listed = built.activate("ls", "-s", "nosuchmodel")
    _ok(listed)
    assert "'nosuchmodel' does not match any sync" in listed.stderr
    _usage_error(built.activate("run", "-s", "nosuchmodel", "--warn-error"),
                 "the selection criterion 'nosuchmodel' does not match any sync (--warn-error)")
    built.env["DBT_WARN_ERROR"] = "true"  # dbt's own variable, as a CI job sets it for dbt
    try:
        _usage_error(built.activate("plan", "-s", "nosuchmodel"), "'nosuchmodel' does not match any sync")
    finally:
        del built.env["DBT_WARN_ERROR"]


def test_only_the_destinations_of_selected_syncs_need_their_secrets(built: Project) -> None:
    _ok(built.activate("run", "-s", "people_files"))  # a file sync: no HubSpot token needed
    assert list((built.root / "out" / "people_files").glob("*.jsonl"))
    listed = built.activate("ls")
    _ok(listed)
    assert "people_hubspot" in listed.stdout and "people_files" in listed.stdout
    _usage_error(built.activate("run", "-s", "people_hubspot"),
                 f"crm_hubspot.access_token: environment variable '{TOKEN_VAR}' is not set")


def test_invalid_vars_are_a_usage_error(built: Project) -> None:
    assert "Invalid value for '--vars': not valid YAML" in _usage_error(built.activate("run", "--vars", "{a: ["))
    assert "must be a YAML mapping" in _usage_error(built.activate("plan", "--vars", "[1, 2]"))


def test_every_command_takes_the_dbt_flags_of_run(built: Project) -> None:
    flags = ["--project-dir", str(built.root), "--profiles-dir", str(built.root), "--target", "dev",
             "--vars", "{x: 1}", "-s", "people_files", "-d", "-q"]
    validated = built.activate("validate", *flags)
    _ok(validated)
    assert "OK: 1 sync valid" in validated.stdout  # the selected one: the HubSpot token is not needed
    _ok(built.activate("docs", "--exposures", *flags))
    _ok(built.activate("ls", *flags))
    _ok(built.activate("run", *flags[:-1], "-v"))  # -v is still --debug


def test_validate_without_artifacts_says_dbt_parse(built: Project) -> None:
    err = _usage_error(built.activate("validate", "--target-path", "no_target"))
    assert "manifest.json not found" in err and "Run `dbt parse` first" in err


def test_exposures_check_destinations_as_run_does(built: Project, tmp_path: Path) -> None:
    (tmp_path / "destinations.yml").write_text(yaml.safe_dump({"crm_files": DESTINATIONS["crm_files"]}))
    out = tmp_path / "exposures.yml"
    _usage_error(built.activate("docs", "--exposures", "--destinations-dir", str(tmp_path), "--path", str(out)),
                 "activate[1].destination: destination 'crm_hubspot' is not defined in")
    assert not out.exists()


def test_destinations_names_the_extra_of_a_missing_module(built: Project, tmp_path: Path) -> None:
    # A `google.auth` that cannot be imported, ahead of the installed one: as without the extra.
    shim = tmp_path / "shim" / "google" / "auth"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'google.auth'\", name='google.auth')\n")
    built.env["PYTHONPATH"] = str(tmp_path / "shim")
    try:
        proc = built.activate("destinations", "--output", "json")
    finally:
        del built.env["PYTHONPATH"]
    _ok(proc)
    import json

    by_type = {d["type"]: d for d in json.loads(proc.stdout)["destinations"]}
    assert "No module named 'google.auth'" in by_type["google_sheets"]["error"]
    assert by_type["google_sheets"]["error"].endswith("pip install 'dbt-activate[google-sheets]'")
    assert by_type["hubspot"]["rate_limit"] == "100 requests / 10 s"


def test_help_lists_environment_variables(built: Project) -> None:
    proc = built.activate("run", "--help")
    _ok(proc)
    text = " ".join(proc.stdout.split())
    for variable in ("DBT_PROJECT_DIR", "DBT_PROFILES_DIR", "DBT_TARGET", "DBT_STATE", "DBT_WARN_ERROR",
                     "DBT_DEBUG", "DBT_ACTIVATE_LOCK_TIMEOUT"):
        assert f"env var: {variable}" in text, variable
    assert "-d, -v, --debug" in text
