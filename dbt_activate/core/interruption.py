"""Ctrl-C (SIGINT) and SIGTERM during a run: stop cleanly, lose nothing, say what happened.

The first signal asks the run to stop: no new batch is started, the batches in flight get up to
``grace`` seconds to be answered (then they are cancelled), what was acknowledged is journaled and
checkpointed, the summary is printed and the command exits 130 (SIGINT) or 143 (SIGTERM), as shells
report a process a signal stopped. A second signal stops at once: batches in flight are cancelled
and the checkpoint is left to the next run, which applies the journal first. Either way nothing is
lost: a cancelled batch was never acknowledged, so the next run sends it again (``journal.InflightLog``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

# How long the batches in flight at the first signal may take to be answered: long enough for a
# typical request, far shorter than the 30 s request timeout (a CI runner that cancels a job does not
# wait long before it kills the process), and a person who pressed Ctrl-C wants the prompt back.
GRACE_SECONDS = 5.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruption:
    """The stop request of one invocation; the engine polls ``requested`` and awaits ``stopped()``."""

    def __init__(self, grace: float = GRACE_SECONDS, on_request: Callable[[str], None] | None = None) -> None:
        self.grace = grace
        self.on_request = on_request
        self.signum: int | None = None
        self.immediate = False  # a second signal: cancel what is in flight, now
        self._events: tuple[asyncio.Event, asyncio.Event] | None = None

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process that a signal stopped."""
        return 128 + (self.signum or 0)

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self._set(0)
            self._say(f"{self.name} received: no new batch is sent; the batches in flight get up to "
                      f"{self.grace:g} s, then what was sent is saved. Press Ctrl-C again to stop at once "
                      "(nothing is lost: the next run sends what was not confirmed).")
        elif not self.immediate:
            self.immediate = True
            self._set(1)
            self._say(f"{signal.Signals(signum).name} received again: stopping now; the batches in flight are "
                      "cancelled and sent again by the next run.")

    def _say(self, message: str) -> None:
        if self.on_request is not None:
            self.on_request(message)

    def _set(self, index: int) -> None:
        if self._events is not None:
            self._events[index].set()
            if index == 1:
                self._events[0].set()

    async def stopped(self) -> None:
        """Returns once a stop was requested."""
        await self._event(0).wait()

    async def stopped_now(self) -> None:
        """Returns once an immediate stop was requested (the second signal)."""
        await self._event(1).wait()

    def _event(self, index: int) -> asyncio.Event:
        if self._events is None:
            self._events = (asyncio.Event(), asyncio.Event())
            if self.requested:
                self._events[0].set()
            if self.immediate:
                self._events[1].set()
        return self._events[index]

    @contextlib.contextmanager
    def handling(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """SIGINT and SIGTERM call ``request`` on ``loop`` while the block runs (main thread only: a
        run started from another thread, e.g. by ``listen``, leaves signals to its owner)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        self._event(0)
        previous: dict[signal.Signals, Any] = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in SIGNALS:
            loop.add_signal_handler(sig, self.request, int(sig))
        try:
            yield
        finally:
            for old, handler in previous.items():
                loop.remove_signal_handler(old)
                signal.signal(old, handler)
