"""Fault matrix in process: every fault an API meets in production, then one clean run.

The webhook receiver (``dbt_activate/testing/webhook/emulator.py``, faults from ``testing/server.py``)
answers the faulted run with 429s, 5xx, timeouts, dropped connections, per-record refusals or a daily
quota that runs out mid-sync. What tests/e2e/test_fault_matrix.py checks over ``dbt-activate run``,
here on ``runner.run_sync`` directly:

1. the faulted run ends as it must (retried to success, ``partial`` with the refused rows, or ``error``);
2. the state is never ahead of the destination: every snapshot entry the run wrote stands for a record
   the destination holds with the model's values, and refused rows are in ``sync_rejections`` with the
   receiver's reason and keep their old snapshot entry;
3. the faults cleared, one more run leaves the destination equal to the model and no rejection behind;
   ``append`` holds no duplicate except the records of requests applied after the client gave up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.engine.world import BATCH, World

REFUSED = "refused by the receiver: bad email domain"


@dataclass(frozen=True)
class Fault:
    name: str
    arm: Callable[[WebhookReceiver, list[str]], None]  # gets the keys the step renamed
    status: str  # how the faulted run ends
    fired: Callable[[WebhookReceiver], bool]  # proof that the faults happened
    timeout: float = 5.0  # the destination's per-request timeout
    late_writes: int = 0  # requests the receiver may apply after the client gave up on them


def _burst(r: WebhookReceiver, renamed: list[str]) -> None:
    for status in (500, 502, 503):
        r.inject("status_5xx", status=status)


def _quota(r: WebhookReceiver, renamed: list[str]) -> None:
    r.daily_limit = r.daily_used + 3  # three more requests today, then a 429 until tomorrow


FAULTS = [
    Fault("429_storm", lambda r, k: r.fail_next(429, 3, retry_after=0.01), "success",
          lambda r: r.counters.by_status.get(429) == 3),
    Fault("5xx_burst", _burst, "success", lambda r: r.counters.faults == 3),
    Fault("timeouts", lambda r, k: r.inject("timeout", count=2, seconds=0.5), "success",
          lambda r: r.counters.faults == 2, timeout=0.2, late_writes=2),
    Fault("dropped_connections", lambda r, k: r.drop_next(3), "success", lambda r: r.counters.faults == 3),
    Fault("partial_refusals", lambda r, k: r.reject_keys.update(dict.fromkeys(k[:4], REFUSED)), "partial",
          lambda r: bool(r.reject_keys)),
    Fault("daily_quota_mid_sync", _quota, "error", lambda r: r.counters.throttled >= 1),
    Fault("slow_responses", lambda r, k: setattr(r, "latency", 0.02), "success", lambda r: r.counters.requests > 0),
]
MODES = ("mirror", "append")


def _clear(r: WebhookReceiver) -> None:
    r.clear_faults()
    r.latency, r.daily_limit = 0.0, None
    r.reject_keys.clear()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_after_faults_and_one_clean_run_the_destination_equals_the_model(world: World, mode: str,
                                                                        fault: Fault) -> None:
    world.insert(range(1, 31))
    assert world.run(mode).status == "success"
    world.rename(range(1, 31, 2), "second")
    world.delete([4, 8])
    world.insert([31, 32], "new")
    before = world.snapshot(mode)
    renamed = sorted(str(i) for i in range(1, 31, 2))
    world.receiver.reset_counters()

    fault.arm(world.receiver, renamed)
    faulted = world.run(mode, config={"timeout": fault.timeout})
    if fault.late_writes:
        world.settle()
    assert fault.fired(world.receiver), world.receiver.counters
    assert faulted.status == fault.status, faulted.error
    world.assert_state_not_ahead(mode, before)
    rejections = world.rejections()
    if fault.status == "partial":
        assert rejections == dict.fromkeys(renamed[:4], REFUSED)
        assert all(world.snapshot(mode)[k] == before[k] for k in rejections)  # refused: not marked synced
    else:
        assert rejections == {}
    if fault.status == "error":
        assert "daily" in (faulted.error or "").lower() or "429" in (faulted.error or ""), faulted.error
        assert 0 < faulted.counts.sent < faulted.counts.added + faulted.counts.changed  # it stopped mid-sync

    _clear(world.receiver)
    clean = world.run(mode)
    assert (clean.status, clean.error) == ("success", None)
    world.assert_destination_equals_model(mode)
    assert world.rejections() == {}
    if mode == "append":
        assert world.duplicate_events() <= fault.late_writes * BATCH
