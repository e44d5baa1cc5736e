"""Ctrl-C and SIGTERM during `dbt-activate run`, through the real console script (issue 19).

The first signal stops the run cleanly: no new batch, the batches in flight answered, what was
acknowledged saved, the summary printed, exit 130 (SIGINT) / 143 (SIGTERM), no traceback and no
`leaked semaphore` warning. A second signal stops at once. Either way the next run sends exactly
what the destination did not acknowledge, and says truthfully how many records it sends again.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest

from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.e2e.project import BIN, Project, customer

# dbt build and the follow-up runs in this process (tests/e2e/inprocess.py); the runs under test are
# subprocesses started here.
pytestmark = pytest.mark.in_process

ROWS = 300
SYNC = "people_hook"


def _start(project: Project, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(BIN / "dbt-activate"), "run", *args], cwd=project.root, env=project.run_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _clean_exit(proc: subprocess.Popen[str], code: int) -> str:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    for noise in ("Traceback", "Aborted!", "leaked semaphore", "resource_tracker", "unexpected error"):
        assert noise not in err, err
    return err


@pytest.mark.slow  # in process: tests/engine/test_interruption.py
def test_signals_stop_the_run_cleanly_and_the_next_run_resumes(duckdb_project: Project) -> None:
    p = duckdb_project
    with WebhookReceiver(latency=0.2) as hook:
        destinations = {"hook": {"type": "webhook", "url": f"{hook.url}/hook", "batch_size": 10,
                                 "max_concurrency": 2}}
        p.write([customer(i) for i in range(1, ROWS + 1)],
                [{"destination": "hook", "object": "people", "primary_key": "customer_id", "name": SYNC,
                  "fields": ["email", "full_name"]}], destinations)
        p.dbt("build")
        everyone = {str(i) for i in range(1, ROWS + 1)}

        # Ctrl-C once, mid-run: the batches in flight are answered, then the run stops with 130.
        proc = _start(p)
        _wait_for(lambda: len(hook.records) >= 40)
        proc.send_signal(signal.SIGINT)
        err = _clean_exit(proc, 130)
        assert "SIGINT received: no new batch is sent" in err
        assert "Interrupted by SIGINT" in err and "the next `dbt-activate run` resumes the rest" in err
        assert "exit 130" in err  # the summary's totals line
        first = p.result_of(SYNC)
        assert first["status"] == "error" and first["error"].startswith("interrupted by SIGINT after ")
        assert p.results()["exit_code"] == 130
        acknowledged = first["counts"]["sent"]
        assert 40 <= acknowledged < ROWS
        assert len(hook.records) == acknowledged  # in flight at the signal = answered, none cancelled

        # The next run sends exactly the rest, and has nothing unconfirmed to warn of.
        resumed = p.activate("run")
        assert resumed.returncode == 0, resumed.stderr
        assert "not confirmed" not in resumed.stderr
        assert p.result_of(SYNC)["counts"]["sent"] == ROWS - acknowledged
        assert set(hook.records) == everyone

        # SIGTERM twice during a --full-resync whose requests hang: the second stops at once.
        hook.latency = 30.0
        before = hook.counters.requests
        proc = _start(p, "--full-resync")
        _wait_for(lambda: hook.counters.requests >= before + 2)  # two batches of 10 hang in flight
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        err = _clean_exit(proc, 143)
        assert time.monotonic() - stopped < 10, "the second signal must not wait for the hanging requests"
        assert "SIGTERM received again: stopping now" in err
        assert "run `dbt-activate run --full-resync` again" in p.result_of(SYNC)["error"]

        # The records in flight at the kill are unconfirmed: the next run says how many and really sends
        # them again (before: it warned, then sent 0, because the snapshot already held their values).
        hook.latency = 0.0
        resumed = p.activate("run")
        assert resumed.returncode == 0, resumed.stderr
        assert "20 records sent but not confirmed; they are sent again" in resumed.stderr
        assert p.result_of(SYNC)["counts"]["sent"] == 20
        assert set(hook.records) == everyone
