"""dbt_cloud.py against the Admin API v2 emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dbt_activate.dbt.dbt_cloud import CloudConfig, fetch
from dbt_activate.errors import ArtifactsError, ConfigError
from dbt_activate.testing.dbt_cloud.emulator import DbtCloudEmulator, Step
from dbt_activate.testing.registry import EMULATORS
from tests.factories import manifest, model_node, run_results

TOKEN = "dbtc_secret_token_value"


def _artifacts(which: str, tag: str) -> dict[str, Any]:
    m = manifest(("model.shop.people", model_node("people")))
    m["metadata"]["invocation_id"] = tag
    return {"manifest.json": m, "run_results.json": run_results(which, {"model.shop.people": "success"})}


def _steps(*commands: str) -> list[Step]:
    """System steps first (no artifacts), then one step per dbt command, as dbt Cloud lists them."""
    system = [Step("Clone git repository"), Step("Create profile from connection Warehouse")]
    which = {"deps": None, "build": "build", "run": "run", "test": "test", "docs generate": "generate",
             "run-operation stage": "run-operation", "seed": "seed"}
    return system + [Step(f"Invoke dbt with `dbt {c}`",
                          _artifacts(w, f"inv-{c}") if (w := which[c.split(' --')[0]]) else {})
                     for c in commands]


@pytest.fixture
def cloud() -> Iterator[DbtCloudEmulator]:
    with DbtCloudEmulator(account_id=42, token=TOKEN) as emu:
        yield emu
        assert emu.errors == []


def _config(cloud: DbtCloudEmulator, token: str = TOKEN, account: int = 42) -> CloudConfig:
    return CloudConfig.from_env({"DBT_CLOUD_ACCOUNT_ID": str(account), "DBT_CLOUD_API_TOKEN": token,
                                 "DBT_CLOUD_HOST": cloud.base_url})


def test_registered_for_the_command_line() -> None:
    assert EMULATORS["dbt_cloud"] is DbtCloudEmulator


def test_picks_the_build_step_not_the_last_docs_step(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(901, job_id=7, steps=_steps("deps", "build --select tag:crm", "docs generate"))
    fetched = fetch(tmp_path, run_id=901, config=_config(cloud))
    assert (fetched.run_id, fetched.step, fetched.command) == (901, 4, "build")
    assert fetched.directory == tmp_path / "run_901"
    written = json.loads((fetched.directory / "manifest.json").read_text())
    assert written["metadata"]["invocation_id"] == "inv-build --select tag:crm"
    assert json.loads((fetched.directory / "run_results.json").read_text())["args"]["which"] == "build"
    # The default (last) step was never needed: every request named the build step.
    assert {(path, step) for _, path, step in cloud.artifact_requests} == {
        ("run_results.json", 4), ("manifest.json", 4)}


def test_the_step_name_is_checked_against_args_which(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    # A step named like a build whose run_results say otherwise is skipped; the earlier `dbt run` is used.
    steps = _steps("run", "build")
    steps[-1] = Step(steps[-1].name, _artifacts("test", "inv-misnamed"))
    cloud.add_run(902, job_id=7, steps=steps)
    fetched = fetch(tmp_path, run_id=902, config=_config(cloud))
    assert (fetched.step, fetched.command) == (3, "run")


def test_unusually_named_steps_are_still_found_by_args_which(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(903, job_id=7, steps=[Step("Custom step", _artifacts("build", "x")),
                                        Step("Invoke dbt with `dbt docs generate`", _artifacts("generate", "y"))])
    assert fetch(tmp_path, run_id=903, config=_config(cloud)).step == 1


def test_run_without_build_step_is_a_clear_error(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(904, job_id=7, steps=_steps("deps", "run-operation stage", "docs generate"))
    with pytest.raises(ArtifactsError, match=r"run 904 has no `dbt build` or `dbt run` step") as err:
        fetch(tmp_path, run_id=904, config=_config(cloud))
    assert "run-operation" in str(err.value)
    assert not (tmp_path / "run_904").exists()


def test_job_id_takes_the_latest_finished_run(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(10, job_id=7, steps=_steps("build"))
    cloud.add_run(12, job_id=7, steps=_steps("build"))
    cloud.add_run(13, job_id=8, steps=_steps("build"))  # another job
    cloud.add_run(14, job_id=7, steps=_steps("build"), status=3)  # still running
    assert fetch(tmp_path, job_id=7, config=_config(cloud)).run_id == 12
    with pytest.raises(ArtifactsError, match="job 99 has no finished run"):
        fetch(tmp_path, job_id=99, config=_config(cloud))


def test_unfinished_run_is_refused(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(20, job_id=7, steps=_steps("build"), status=3)
    with pytest.raises(ArtifactsError, match=r"run 20 has not finished \(status: Running\)"):
        fetch(tmp_path, run_id=20, config=_config(cloud))


def test_bad_token_is_a_config_error_that_never_shows_the_token(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(30, job_id=7, steps=_steps("build"))
    with pytest.raises(ConfigError, match=r"refused the API token .*HTTP 401.*DBT_CLOUD_API_TOKEN") as err:
        fetch(tmp_path, run_id=30, config=_config(cloud, token="wrong_token_value"))
    assert "wrong_token_value" not in str(err.value)


def test_unknown_run_and_account(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    with pytest.raises(ArtifactsError, match=r"run 31 not found in account 42"):
        fetch(tmp_path, run_id=31, config=_config(cloud))
    cloud.add_run(31, job_id=7, steps=_steps("build"))
    with pytest.raises(ArtifactsError, match=r"not found in account 5"):
        fetch(tmp_path, run_id=31, config=_config(cloud, account=5))


def test_throttling_and_server_errors_are_retried(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(41, job_id=7, steps=_steps("build"))
    cloud.inject("throttle")
    cloud.inject("status_5xx", status=502)
    waits: list[float] = []
    assert fetch(tmp_path, run_id=41, config=_config(cloud), sleep=waits.append).run_id == 41
    assert len(waits) == 2 and waits[0] >= 1  # the 429's Retry-After, then a short backoff


def test_server_errors_and_unreachable_host(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    cloud.add_run(40, job_id=7, steps=_steps("build"))
    cloud.inject("status_5xx", count=3, status=503)
    waits: list[float] = []
    with pytest.raises(ArtifactsError, match="HTTP 503") as err:
        fetch(tmp_path, run_id=40, config=_config(cloud), sleep=waits.append)
    assert TOKEN not in str(err.value)
    assert len(waits) == 2  # three attempts in all
    port = cloud.port
    cloud.stop()
    config = CloudConfig("42", TOKEN, f"http://127.0.0.1:{port}")
    with pytest.raises(ArtifactsError, match="cannot reach dbt Cloud") as err:
        fetch(tmp_path, run_id=40, config=config, sleep=waits.append)
    assert TOKEN not in str(err.value)


def test_a_failing_artifact_download_is_an_error_not_a_missing_file(cloud: DbtCloudEmulator, tmp_path: Path) -> None:
    # Only a 404 means "this step has no such file"; a 5xx that outlasts the retries must not make
    # the build step look artifact-less (or another step's artifacts be picked).
    cloud.add_run(42, job_id=7, steps=_steps("build"))
    cloud.inject("status_5xx", count=3, status=503, path="/artifacts/")
    with pytest.raises(ArtifactsError, match=r"HTTP 503 reading run_results.json of run 42"):
        fetch(tmp_path, run_id=42, config=_config(cloud), sleep=lambda _: None)


def test_config_from_env() -> None:
    with pytest.raises(ConfigError, match="DBT_CLOUD_ACCOUNT_ID and DBT_CLOUD_API_TOKEN"):
        CloudConfig.from_env({})
    with pytest.raises(ConfigError, match="numeric account id"):
        CloudConfig.from_env({"DBT_CLOUD_ACCOUNT_ID": "acme", "DBT_CLOUD_API_TOKEN": "t"})
    config = CloudConfig.from_env({"DBT_CLOUD_ACCOUNT_ID": "1", "DBT_CLOUD_API_TOKEN": "t"})
    assert config.base_url == "https://cloud.getdbt.com"
    emea = CloudConfig.from_env({"DBT_CLOUD_ACCOUNT_ID": "1", "DBT_CLOUD_API_TOKEN": "t",
                                 "DBT_CLOUD_HOST": "emea.dbt.com/"})
    assert emea.base_url == "https://emea.dbt.com"
    with pytest.raises(ConfigError, match="exactly one"):
        fetch(Path("."), config=config)


def test_emulator_speaks_the_documented_envelope(cloud: DbtCloudEmulator) -> None:
    cloud.add_run(50, job_id=7, steps=_steps("build", "docs generate"))
    base = f"{cloud.base_url}/api/v2/accounts/42/runs"
    auth = {"Authorization": f"Token {TOKEN}"}
    run = httpx.get(f"{base}/50/", headers=auth).json()
    assert run["status"]["is_success"] and run["data"]["run_steps"] == []  # only with include_related
    with_steps = httpx.get(f"{base}/50/", params={"include_related": '["run_steps"]'}, headers=auth).json()
    assert [s["index"] for s in with_steps["data"]["run_steps"]] == [1, 2, 3, 4]
    last = httpx.get(f"{base}/50/artifacts/run_results.json", headers=auth).json()
    assert last["args"]["which"] == "generate"  # the documented default: the last step
    listing = httpx.get(f"{base}/50/artifacts/", params={"step": 3}, headers=auth).json()
    assert listing["data"] == ["manifest.json", "run_results.json"]
    denied = httpx.get(f"{base}/50/", headers={"Authorization": "Token nope"})
    assert denied.status_code == 401 and denied.json()["status"]["is_success"] is False


def test_runs_from_a_schema_document_for_the_command_line(tmp_path: Path) -> None:
    from dbt_activate.testing.registry import schema_kwargs

    kwargs = schema_kwargs("dbt_cloud", {"account_id": 42, "runs": [{"id": 5, "job_id": 2, "steps": [
        {"name": "Invoke dbt with `dbt build`", "artifacts": _artifacts("build", "cli")}]}]})
    with DbtCloudEmulator(token=TOKEN, **kwargs) as emu:
        assert fetch(tmp_path, job_id=2, config=_config(emu)).run_id == 5
