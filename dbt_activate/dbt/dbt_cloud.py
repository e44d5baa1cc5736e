"""dbt Cloud runs as the source of dbt's artifacts: `run --dbt-cloud-run-id N` / `--dbt-cloud-job-id N`.

Administrative API v2 (https://docs.getdbt.com/dbt-cloud/api-v2): ``GET /api/v2/accounts/{a}/runs/{id}/
?include_related=["run_steps"]`` for the run and its steps, ``GET .../runs/?job_definition_id=J&order_by=-id``
for a job's latest runs, ``GET .../runs/{id}/artifacts/{path}?step=N`` for a file. Auth is
``Authorization: Token <token>``. Configuration comes from the environment: ``DBT_CLOUD_ACCOUNT_ID``,
``DBT_CLOUD_API_TOKEN`` and ``DBT_CLOUD_HOST`` (default ``cloud.getdbt.com``; a full URL is accepted).

The artifacts endpoint without ``step`` serves the run's *last* step, which in most jobs is
``dbt docs generate``, whose run_results say nothing about what was rebuilt. So the step is chosen:
the last step whose name invokes ``dbt build`` or ``dbt run`` and whose run_results.json really has
``args.which`` build/run (then every other step, last first, in case a job's steps are named
differently). Throttling (429, honouring Retry-After), 5xx and dropped connections are tried three
times in all. The token never appears in any message.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from dbt_activate.dbt.artifacts import BUILD_COMMANDS
from dbt_activate.errors import ArtifactsError, ConfigError, Redactor

DEFAULT_HOST = "cloud.getdbt.com"
ENV_ACCOUNT, ENV_TOKEN, ENV_HOST = "DBT_CLOUD_ACCOUNT_ID", "DBT_CLOUD_API_TOKEN", "DBT_CLOUD_HOST"
# Step names look like "Invoke dbt with `dbt build --select x`"; run-operation is not a build.
_BUILD_STEP = re.compile(r"\bdbt (build|run)(?![-\w])")
_COMPLETE_STATUSES = {10: "success", 20: "error", 30: "cancelled"}
ARTIFACTS = ("manifest.json", "run_results.json")
MAX_RETRY_WAIT = 60.0


@dataclass(frozen=True)
class CloudConfig:
    account_id: str
    token: str
    base_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CloudConfig:
        env = os.environ if env is None else env
        missing = [name for name in (ENV_ACCOUNT, ENV_TOKEN) if not env.get(name)]
        if missing:
            raise ConfigError(f"dbt Cloud needs {' and '.join(missing)} in the environment (account id and an "
                              "API token with read access to runs)")
        account = env[ENV_ACCOUNT].strip()
        if not account.isdigit():
            raise ConfigError(f"{ENV_ACCOUNT} must be the numeric account id, got {account!r}")
        host = (env.get(ENV_HOST) or DEFAULT_HOST).strip().rstrip("/")
        return cls(account, env[ENV_TOKEN].strip(), host if "://" in host else f"https://{host}")


@dataclass(frozen=True)
class FetchedRun:
    run_id: int
    step: int
    step_name: str
    command: str  # args.which of the step's run_results.json
    directory: Path


class DbtCloudClient:
    def __init__(self, config: CloudConfig, *, transport: httpx.BaseTransport | None = None,
                 timeout: float = 60.0, attempts: int = 3, sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self.attempts = max(1, attempts)
        self._sleep = sleep
        self._redact = Redactor([config.token])
        self._http = httpx.Client(base_url=f"{config.base_url}/api/v2/accounts/{config.account_id}",
                                  headers={"Authorization": f"Token {config.token}", "Accept": "application/json"},
                                  timeout=timeout, transport=transport, follow_redirects=True)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DbtCloudClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        response = self._fetch(path, what, params)
        self._check(response, what)
        return response

    def _fetch(self, path: str, what: str, params: Mapping[str, Any] | None) -> httpx.Response:
        """The answer to GET ``path``, any status; a host that cannot be reached is an ``ArtifactsError``."""
        # dbt Cloud rate-limits the API (429 with Retry-After) and has the odd 5xx: a few tries, then fail.
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http.get(path, params=params)
            except httpx.HTTPError as exc:
                if attempt < self.attempts:
                    self._sleep(float(attempt))
                    continue
                raise ArtifactsError(self._redact(f"cannot reach dbt Cloud at {self.config.base_url} to read "
                                                  f"{what}: {type(exc).__name__}: {exc}")) from None
            if (response.status_code == 429 or response.status_code >= 500) and attempt < self.attempts:
                self._sleep(min(_retry_after(response) or float(attempt), MAX_RETRY_WAIT))
                continue
            break
        return response

    def _check(self, response: httpx.Response, what: str) -> None:
        if response.status_code in (401, 403):
            raise ConfigError(f"dbt Cloud refused the API token reading {what} (HTTP {response.status_code}): check "
                              f"{ENV_TOKEN} and that it can read runs of account {self.config.account_id}")
        if response.status_code == 404:
            raise ArtifactsError(f"dbt Cloud: {what} not found in account {self.config.account_id} (HTTP 404)")
        if response.status_code >= 400:
            raise ArtifactsError(self._redact(f"dbt Cloud answered HTTP {response.status_code} reading {what}: "
                                              f"{_message(response)}"))

    def _data(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        response = self._get(path, what, params)
        try:
            return response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise ArtifactsError(f"dbt Cloud answered {what} with something that is not its JSON envelope") from None

    def run(self, run_id: int) -> dict[str, Any]:
        data = self._data(f"/runs/{run_id}/", f"run {run_id}", {"include_related": '["run_steps"]'})
        if not isinstance(data, dict):
            raise ArtifactsError(f"dbt Cloud: run {run_id} not found in account {self.config.account_id}")
        return data

    def latest_run_id(self, job_id: int) -> int:
        """The newest *finished* run of the job: a run still going has no final artifacts yet."""
        runs = self._data("/runs/", f"runs of job {job_id}",
                          {"job_definition_id": job_id, "order_by": "-id", "limit": 20})
        for run in runs or ():
            if run.get("is_complete") or run.get("status") in _COMPLETE_STATUSES:
                return int(run["id"])
        raise ArtifactsError(f"dbt Cloud job {job_id} has no finished run in account {self.config.account_id}")

    def artifact(self, run_id: int, path: str, step: int) -> bytes | None:
        """The file, or None when that step did not produce it (404); other failures raise."""
        what = f"{path} of run {run_id} step {step}"
        response = self._fetch(f"/runs/{run_id}/artifacts/{path}", what, {"step": step})
        if response.status_code == 404:
            return None
        self._check(response, what)
        return response.content


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _message(response: httpx.Response) -> str:
    try:
        status = response.json().get("status") or {}
        return str(status.get("user_message") or status.get("developer_message") or "")[:300]
    except (ValueError, AttributeError):
        return response.text[:300]


def _which(raw: bytes) -> str:
    try:
        return str((json.loads(raw).get("args") or {}).get("which") or "")
    except (ValueError, AttributeError):
        return ""


def _candidate_steps(run: Mapping[str, Any]) -> list[tuple[int, str]]:
    steps = [(int(s.get("index") or 0), str(s.get("name") or "")) for s in run.get("run_steps") or ()]
    steps = [s for s in steps if s[0] > 0]
    named = [s for s in reversed(steps) if _BUILD_STEP.search(s[1])]
    return named + [s for s in reversed(steps) if s not in named]


def fetch_run(client: DbtCloudClient, run_id: int, directory: Path) -> FetchedRun:
    """Write the build step's manifest.json and run_results.json of ``run_id`` into ``directory``."""
    run = client.run(run_id)
    if not run.get("is_complete") and run.get("status") not in _COMPLETE_STATUSES:
        raise ArtifactsError(f"dbt Cloud run {run_id} has not finished (status: "
                             f"{run.get('status_humanized') or run.get('status')}); wait for it to complete")
    seen: list[str] = []
    for index, name in _candidate_steps(run):
        results = client.artifact(run_id, "run_results.json", index)
        which = _which(results) if results is not None else ""
        seen.append(f"{index}: {name or '?'} ({which or 'no run_results.json'})")
        if results is None or which not in BUILD_COMMANDS:
            continue
        manifest = client.artifact(run_id, "manifest.json", index)
        if manifest is None:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "manifest.json").write_bytes(manifest)
        (directory / "run_results.json").write_bytes(results)
        return FetchedRun(run_id, index, name, which, directory)
    raise ArtifactsError(f"dbt Cloud run {run_id} has no `dbt build` or `dbt run` step with artifacts "
                         f"(steps: {'; '.join(seen) or 'none'}); dbt-activate needs that step's run_results.json")


def fetch(directory: Path, *, run_id: int | None = None, job_id: int | None = None,
          config: CloudConfig | None = None, **client_options: Any) -> FetchedRun:
    """Fetch the artifacts of run ``run_id``, or of the latest finished run of job ``job_id``."""
    if (run_id is None) == (job_id is None):
        raise ConfigError("pass exactly one of --dbt-cloud-run-id and --dbt-cloud-job-id")
    with DbtCloudClient(config or CloudConfig.from_env(), **client_options) as client:
        chosen = run_id if run_id is not None else client.latest_run_id(int(job_id or 0))
        return fetch_run(client, chosen, directory / f"run_{chosen}")
