"""SIGINT/SIGTERM during a run (core/interruption.py): the first asks to stop, the second to stop now,
the exit code is the shell's 128 + signal, and the previous handlers come back afterwards."""

from __future__ import annotations

import asyncio
import os
import signal

from dbt_activate.core.interruption import Interruption
from dbt_activate.core.outcomes import InvocationResult, SyncOutcome


def test_first_signal_stops_second_stops_now_and_each_is_said_once() -> None:
    said: list[str] = []
    stop = Interruption(grace=2, on_request=said.append)
    assert not stop.requested
    stop.request(signal.SIGTERM)
    assert (stop.requested, stop.immediate, stop.name, stop.exit_code) == (True, False, "SIGTERM", 143)
    stop.request(signal.SIGINT)
    stop.request(signal.SIGINT)
    assert stop.immediate and stop.exit_code == 143  # the first signal decides the exit code
    assert len(said) == 2
    assert said[0].startswith("SIGTERM received: no new batch is sent; the batches in flight get up to 2 s")
    assert said[1].startswith("SIGINT received again: stopping now")


def test_real_signals_wake_the_run_and_handlers_are_restored() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop = Interruption()

    async def run() -> list[str]:
        seen = []
        with stop.handling(asyncio.get_running_loop()):
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stop.stopped(), timeout=5)
            seen.append("stopped")
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
            await asyncio.wait_for(stop.stopped_now(), timeout=5)
            seen.append("now")
        return seen

    assert asyncio.run(run()) == ["stopped", "now"]
    assert stop.exit_code == 130
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_an_interrupted_invocation_exits_with_the_signal_code() -> None:
    failed = SyncOutcome("s", "m", "d", "o", "upsert", "error", "rebuilt", error="interrupted by SIGINT")
    assert InvocationResult("r", "run", None, [failed]).exit_code == 1
    assert InvocationResult("r", "run", None, [failed], interrupted_by=signal.SIGINT).exit_code == 130
    assert InvocationResult("r", "run", None, [], interrupted_by=signal.SIGTERM).exit_code == 143
