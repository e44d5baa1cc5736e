"""``DbtCloudEmulator``: the dbt Cloud Administrative API v2 endpoints dbt-activate reads.

Contract (https://docs.getdbt.com/dbt-cloud/api-v2, "Runs" and "Run artifacts"):

- auth ``Authorization: Token <token>`` (``Bearer`` is accepted too); else 401;
- responses in the envelope ``{"status": {"code", "is_success", "user_message", "developer_message"},
  "data": ...}`` (lists add ``extra.pagination``);
- ``GET /api/v2/accounts/{a}/runs/?job_definition_id=&order_by=(-)id&limit=&offset=``;
- ``GET /api/v2/accounts/{a}/runs/{id}/?include_related=["run_steps"]``: ``run_steps`` is only filled
  when asked for; status codes 1 queued, 2 starting, 3 running, 10 success, 20 error, 30 cancelled;
- ``GET /api/v2/accounts/{a}/runs/{id}/artifacts/`` (list) and ``.../artifacts/{path}?step=N``: the raw
  file; steps are numbered from 1 and without ``step`` the run's *last* step is served.

A run is given as its steps, each with the artifacts it produced::

    with DbtCloudEmulator(account_id=1, token="t") as cloud:
        cloud.add_run(7, job_id=3, steps=[Step("Invoke dbt with `dbt build`", {"manifest.json": m, ...}),
                                          Step("Invoke dbt with `dbt docs generate`", {...})])
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

STATUS_HUMANIZED = {1: "Queued", 2: "Starting", 3: "Running", 10: "Success", 20: "Error", 30: "Cancelled"}
_RUNS = r"/api/v2/accounts/(?P<account>\d+)/runs"


@dataclass(frozen=True)
class Step:
    name: str
    artifacts: Mapping[str, Any] = field(default_factory=dict)  # path -> JSON value (or bytes)
    status: int = 10


@dataclass
class EmulatedRun:
    id: int
    job_id: int
    steps: Sequence[Step]
    status: int = 10

    def document(self, account: int, with_steps: bool) -> dict[str, Any]:
        complete = self.status in (10, 20, 30)
        return {
            "id": self.id, "account_id": account, "job_definition_id": self.job_id, "job_id": self.job_id,
            "status": self.status, "status_humanized": STATUS_HUMANIZED.get(self.status, "Unknown"),
            "is_complete": complete, "is_success": self.status == 10, "is_error": self.status == 20,
            "is_cancelled": self.status == 30, "in_progress": not complete,
            "finished_at": "2026-11-22 04:00:00.000000+00:00" if complete else None,
            "run_steps": [
                {"id": self.id * 100 + i, "run_id": self.id, "account_id": account, "index": i, "name": s.name,
                 "status": s.status, "status_humanized": STATUS_HUMANIZED.get(s.status, "Unknown")}
                for i, s in enumerate(self.steps, start=1)
            ] if with_steps else [],
        }


def _envelope(data: Any, code: int = 200, message: str = "Success!", **extra: Any) -> Response:
    body: dict[str, Any] = {"status": {"code": code, "is_success": code < 400, "user_message": message,
                                       "developer_message": ""}, "data": data}
    if extra:
        body["extra"] = extra
    return Response.json(body, code)


class DbtCloudEmulator(Emulator):
    vendor = "dbt_cloud"

    def __init__(self, *, account_id: int = 1, token: str | None = "test-token",
                 runs: Sequence[Mapping[str, Any]] = (), **options: Any) -> None:
        """``runs``: JSON-shaped runs for the command line (``--schema``), e.g. ``{"runs": [{"id": 7,
        "job_id": 3, "status": 10, "steps": [{"name": "Invoke dbt with `dbt build`", "artifacts": {...}}]}]}``."""
        super().__init__(token=token, **options)
        self.account_id = account_id
        self.runs: dict[int, EmulatedRun] = {}
        self.artifact_requests: list[tuple[int, str, int]] = []  # (run, path, step) served or refused
        self.route("GET", _RUNS + r"/", self._list_runs)
        self.route("GET", _RUNS + r"/(?P<run>\d+)/", self._get_run)
        self.route("GET", _RUNS + r"/(?P<run>\d+)/artifacts/", self._list_artifacts)
        self.route("GET", _RUNS + r"/(?P<run>\d+)/artifacts/(?P<path>.+)", self._get_artifact)
        for run in runs:
            self.add_run(int(run["id"]), job_id=int(run["job_id"]), status=int(run.get("status", 10)),
                         steps=[Step(st["name"], st.get("artifacts") or {}, int(st.get("status", 10)))
                                for st in run.get("steps", ())])

    def add_run(self, run_id: int, *, job_id: int, steps: Sequence[Step], status: int = 10) -> EmulatedRun:
        with self.lock:
            run = self.runs[run_id] = EmulatedRun(run_id, job_id, list(steps), status)
        return run

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, value = (request.header("Authorization") or "").partition(" ")
        if self.token is None or (scheme.lower() in ("token", "bearer") and value.strip() == self.token):
            return None
        return self.error_response(ApiError(401, "Invalid token.", "UNAUTHORIZED"))

    def error_response(self, err: ApiError) -> Response:
        return _envelope(None, err.status, err.message)

    # -- routes --------------------------------------------------------------------------------

    def _account(self, request: Request) -> int:
        account = int(request.params["account"])
        if account != self.account_id:
            raise ApiError(404, "Account not found.")  # the token's account only
        return account

    def _run(self, request: Request) -> EmulatedRun:
        self._account(request)
        with self.lock:
            run = self.runs.get(int(request.params["run"]))
        if run is None:
            raise ApiError(404, "Run not found.")
        return run

    def _list_runs(self, request: Request) -> Response:
        account = self._account(request)
        job = request.arg("job_definition_id")
        order = request.arg("order_by", "id") or "id"
        if order.lstrip("-") != "id":
            raise ApiError(400, f"order_by {order!r} is not supported")
        limit, offset = request.int_arg("limit", 100), request.int_arg("offset", 0)
        with self.lock:
            runs = [r for r in self.runs.values() if job is None or str(r.job_id) == job]
        runs.sort(key=lambda r: r.id, reverse=order.startswith("-"))
        page = runs[offset:offset + limit]
        return _envelope([r.document(account, False) for r in page],
                         filters={"job_definition_id": job}, order_by=order,
                         pagination={"count": len(page), "total_count": len(runs)})

    def _get_run(self, request: Request) -> Response:
        run = self._run(request)
        related = json.loads(request.arg("include_related") or "[]")
        return _envelope(run.document(self.account_id, "run_steps" in related))

    def _step(self, request: Request, run: EmulatedRun) -> tuple[int, Step]:
        if not run.steps:
            raise ApiError(404, "No artifacts for this run.")
        index = request.int_arg("step", len(run.steps))  # documented default: the last step
        if not 1 <= index <= len(run.steps):
            raise ApiError(404, f"Step {index} not found.")
        return index, run.steps[index - 1]

    def _list_artifacts(self, request: Request) -> Response:
        run = self._run(request)
        _, step = self._step(request, run)
        return _envelope(sorted(step.artifacts))

    def _get_artifact(self, request: Request) -> Response:
        run = self._run(request)
        index, step = self._step(request, run)
        path = request.params["path"]
        with self.lock:
            self.artifact_requests.append((run.id, path, index))
        if path not in step.artifacts:
            raise ApiError(404, f"Artifact {path} not found for step {index}.")
        value = step.artifacts[path]
        body = value if isinstance(value, bytes) else json.dumps(value).encode()
        return Response(200, body)
