"""One dedicated thread for the blocking IO of one destination (database drivers, files).

The runner shares its event loop between syncs, HTTP destinations, rate limiters and progress
callbacks, so a destination built on a blocking driver must not stall it for a network round trip
or an fsync. ``asyncio.to_thread`` would move the calls off the loop but onto any pool thread and
in no guaranteed order; a single-thread executor per destination keeps every call in order, keeps
a driver connection on one thread, and makes ``close()`` wait for a call still running after its
``write()`` was cancelled, so a file or connection is never closed under a half-done batch.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class BlockingWorker:
    """Runs blocking callables one at a time, in submission order, on a thread of its own."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, fn: Callable[..., T], /, *args: object) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"dbt-activate-{self._name}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    async def shutdown(self, last: Callable[[], None] | None = None) -> None:
        """Run ``last`` after everything already submitted, then stop the thread."""
        if self._executor is None:
            return
        try:
            if last is not None:
                # Shielded: a cancelled close must still release the connection or file.
                await asyncio.shield(self.run(last))
        finally:
            self._executor.shutdown(wait=False)
            self._executor = None
