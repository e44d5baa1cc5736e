"""Named points where the kill tests stop the process: ``DBT_ACTIVATE_CRASH_AT=<point>:<n>``.

The n-th time the process reaches ``point`` it sends itself SIGKILL, exactly like an OOM killer or
a cancelled CI job, so tests can pick kill points deterministically (between extract, delivery,
journal and state writes) instead of racing a timer. Without the variable, ``reached`` is one
comparison. Points: ``extract.row``, ``deliver.acked``, ``journal.flushed``, ``checkpoint.apply``,
``checkpoint.applied``, ``sync.replayed``, ``state.finish``, ``state.finished``.
"""

from __future__ import annotations

import os
import signal

ENV = "DBT_ACTIVATE_CRASH_AT"


def _parse(value: str | None) -> tuple[str, int] | None:
    if not value or ":" not in value:
        return None
    point, _, count = value.rpartition(":")
    return (point, int(count)) if count.isdigit() and int(count) > 0 else None


_TARGET = _parse(os.environ.get(ENV))
_hits = 0


def reached(point: str) -> None:
    """Count one pass through ``point``; SIGKILL this process at the armed pass."""
    global _hits
    if _TARGET is None or _TARGET[0] != point:
        return
    _hits += 1
    if _hits == _TARGET[1]:
        os.kill(os.getpid(), signal.SIGKILL)
