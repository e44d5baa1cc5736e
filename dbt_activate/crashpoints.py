"""Named points where the crash tests stop a run: by SIGKILL, or by an exception in process.

``DBT_ACTIVATE_CRASH_AT=<point>:<n>``: the n-th time the process reaches ``point`` it sends itself
SIGKILL, exactly like an OOM killer or a cancelled CI job, so the subprocess tests can pick kill
points deterministically (between extract, delivery, journal and state writes) instead of racing a
timer. ``crashing_at(point, n)``: the n-th pass raises ``Crash`` instead, and so does every pass
through any point after it (a dead process does nothing more), so the engine's in-process tests
(tests/engine/) crash a run at each point in milliseconds. Unarmed, ``reached`` is one comparison.

Points: ``extract.row``, ``deliver.acked``, ``journal.flushed``, ``checkpoint.apply``,
``checkpoint.applied``, ``sync.replayed``, ``state.finish``, ``state.finished``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "DBT_ACTIVATE_CRASH_AT"
POINTS = ("extract.row", "deliver.acked", "journal.flushed", "checkpoint.apply", "checkpoint.applied",
          "sync.replayed", "state.finish", "state.finished")


class Crash(BaseException):
    """The run died at a crash point. A ``BaseException``, so no ``except Exception`` of the engine
    handles it: like SIGKILL, it ends the run where it is."""


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, count = value.rpartition(":")
    return (point, int(count)) if count.isdigit() and int(count) > 0 else None


_TARGET = _parse(os.environ.get(ENV))
_hits = 0
_in_process = False  # the armed point raises Crash rather than killing the process
_dead = False  # Crash was raised: every later point raises it again


def reached(point: str) -> None:
    """Count one pass through ``point``; crash at the armed pass."""
    global _hits, _dead
    if _dead:
        raise Crash(f"the run already crashed; {point} is not reached")
    if _TARGET is None or _TARGET[0] != point:
        return
    _hits += 1
    if _hits != _TARGET[1]:
        return
    if not _in_process:
        os.kill(os.getpid(), signal.SIGKILL)
    _dead = True
    raise Crash(f"crash at {point}:{_hits}")


@contextmanager
def crashing_at(point: str, n: int = 1) -> Iterator[None]:
    """Within the block, the ``n``-th pass through ``point`` raises ``Crash`` (for in-process tests)."""
    global _TARGET, _hits, _in_process, _dead
    if point not in POINTS:
        raise ValueError(f"unknown crash point {point!r}: one of {', '.join(POINTS)}")
    saved = _TARGET, _hits, _in_process, _dead
    _TARGET, _hits, _in_process, _dead = (point, n), 0, True, False
    try:
        yield
    finally:
        _TARGET, _hits, _in_process, _dead = saved
