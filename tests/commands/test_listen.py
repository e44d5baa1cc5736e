"""`dbt-activate listen`: signed dbt Cloud webhooks over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dbt_activate.commands import listen
from dbt_activate.commands.listen import WebhookListener, signature
from dbt_activate.errors import ConfigError

SECRET = "whsec_test_secret_value"


def event(event_id: str = "wev_1", *, job: Any = "123", run: Any = "4567", status: str = "Success",
          code: int = 10, event_type: str = "job.run.completed") -> bytes:
    """A dbt Cloud webhook body, as documented (ids are strings in the payload)."""
    return json.dumps({
        "accountId": 1, "webhooksID": "wsu_1", "eventId": event_id, "timestamp": "2026-11-22T04:00:00Z",
        "eventType": event_type, "webhookName": "activate",
        "data": {"jobId": job, "jobName": "Daily build", "runId": run, "environmentId": "1",
                 "environmentName": "Production", "dbtVersion": "1.10.0", "projectName": "shop", "projectId": "1",
                 "runStatus": status, "runStatusCode": code, "runStatusMessage": "None",
                 "runReason": "Kicked off by schedule", "runStartedAt": "2026-11-22T03:58:00Z",
                 "runFinishedAt": "2026-11-22T04:00:00Z"},
    }).encode()


class Runs:
    def __init__(self) -> None:
        self.started: list[int] = []

    def __call__(self, run_id: int) -> None:
        self.started.append(run_id)
        if run_id == 666:
            raise RuntimeError("the sync failed")


@pytest.fixture
def runs() -> Runs:
    return Runs()


@pytest.fixture
def listener(runs: Runs) -> Iterator[WebhookListener]:
    with WebhookListener(SECRET, {123, 124}, runs) as server:
        yield server


def post(listener: WebhookListener, body: bytes, auth: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = auth
    response = httpx.post(listener.url, content=body, headers=headers)
    listener.join()  # every queued run processed before the test looks
    return response


def test_valid_signature_starts_the_run(listener: WebhookListener, runs: Runs) -> None:
    body = event()
    response = post(listener, body, signature(SECRET, body))
    assert response.status_code == 200
    assert response.json() == {"status": "queued", "detail": "event wev_1 (job 123, run 4567): syncing run 4567",
                               "run_id": 4567}
    assert runs.started == [4567]


@pytest.mark.parametrize("auth", [None, "", "deadbeef", "Token " + "0" * 64])
def test_missing_or_invalid_signature_is_401_and_runs_nothing(listener: WebhookListener, runs: Runs,
                                                              auth: str | None) -> None:
    response = post(listener, event(), auth)
    assert response.status_code == 401
    assert response.json()["status"] == "unauthorized"
    assert runs.started == []


def test_signature_of_another_body_or_secret_is_rejected(listener: WebhookListener, runs: Runs) -> None:
    body = event()
    tampered = body.replace(b'"4567"', b'"9999"')
    assert post(listener, tampered, signature(SECRET, body)).status_code == 401
    assert post(listener, body, signature("another secret", body)).status_code == 401
    assert runs.started == []
    # A rejected delivery does not burn the event id: the genuine one still runs.
    assert post(listener, body, signature(SECRET, body)).json()["status"] == "queued"
    assert runs.started == [4567]


def test_duplicate_delivery_runs_once(listener: WebhookListener, runs: Runs) -> None:
    body = event("wev_dup")
    first = post(listener, body, signature(SECRET, body))
    retry = post(listener, body, signature(SECRET, body))
    assert (first.json()["status"], retry.status_code, retry.json()["status"]) == ("queued", 200, "duplicate")
    assert runs.started == [4567]


@pytest.mark.parametrize(("body", "reason"), [
    (event(status="Errored", code=20), "the run did not succeed (Errored)"),
    (event(status="Cancelled", code=30), "did not succeed"),
    (event(job="999"), "job 999 is not in --job-id"),
    (event(event_type="job.run.started", status="Running", code=3), "is not job.run.completed"),
])
def test_failed_runs_unknown_jobs_and_other_events_are_ignored(listener: WebhookListener, runs: Runs,
                                                               body: bytes, reason: str) -> None:
    response = post(listener, body, signature(SECRET, body))
    assert response.status_code == 200  # answered, so dbt Cloud does not retry
    assert response.json()["status"] == "ignored"
    assert reason in response.json()["detail"]
    assert runs.started == []


def test_signed_garbage_is_400(listener: WebhookListener, runs: Runs) -> None:
    for body in (b"not json", b"[1, 2]", json.dumps({"eventId": "x"}).encode()):
        assert post(listener, body, signature(SECRET, body)).status_code == 400
    assert runs.started == []


def _raw_post(listener: WebhookListener, headers: str, body: bytes = b"{}") -> bytes:
    """Send a hand-made request (httpx always writes a correct Content-Length); the first bytes back."""
    with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as sock:
        sock.sendall(f"POST / HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode() + body)
        try:
            return sock.recv(200)
        except TimeoutError:
            return b"<no answer in 5 s: a handler thread is held until the client closes>"


@pytest.mark.parametrize(("headers", "status"), [
    ("Content-Length: -1\r\n", b"400"),   # rfile.read(-1) would wait for the client to close
    ("Content-Length: abc\r\n", b"400"),  # int() would crash the handler
    ("", b"411"),
])
def test_a_bad_or_missing_content_length_is_answered(listener: WebhookListener, runs: Runs, headers: str,
                                                     status: bytes) -> None:
    reply = _raw_post(listener, headers)
    assert reply.startswith(b"HTTP/1.1 " + status), reply
    assert runs.started == []


def test_a_client_that_never_sends_its_body_is_disconnected(monkeypatch: pytest.MonkeyPatch, runs: Runs) -> None:
    monkeypatch.setattr(listen, "HANDLER_TIMEOUT", 0.2)
    with WebhookListener(SECRET, {123}, runs) as server:
        # 100 bytes announced, 2 sent: the handler gives up reading and closes instead of waiting forever.
        assert _raw_post(server, "Content-Length: 100\r\n") == b""
    assert runs.started == []


def test_a_failing_sync_does_not_stop_the_listener(listener: WebhookListener, runs: Runs) -> None:
    bad, good = event("wev_a", run=666), event("wev_b", run=7, job=124)
    assert post(listener, bad, signature(SECRET, bad)).status_code == 200
    assert post(listener, good, signature(SECRET, good)).status_code == 200
    assert runs.started == [666, 7]
    assert listener.failures == ["run 666: RuntimeError: the sync failed"]


def test_secret_and_job_ids_are_required(runs: Runs) -> None:
    with pytest.raises(ConfigError, match="DBT_CLOUD_WEBHOOK_SECRET"):
        WebhookListener("", {1}, runs)
    with pytest.raises(ConfigError, match="--job-id"):
        WebhookListener(SECRET, set(), runs)


def test_cli_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "dbt_activate.cli", "listen", "--job-id", "1", "--port", "0"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "DBT_CLOUD_WEBHOOK_SECRET" in proc.stderr
