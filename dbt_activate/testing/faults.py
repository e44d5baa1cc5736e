"""Fault injection for the emulators: what goes wrong, on which requests, how often.

Faults are queued (``inject``: the next N matching requests) or drawn at random
(``set_fault_probability``). Each kind mimics a failure a sync meets in production:

- ``status_5xx``: the vendor answers with a 5xx in its own error shape (``status``, default 503);
- ``timeout``: the server hangs ``seconds`` (longer than any sane client timeout), then processes
  the request anyway, like a vendor that did the work after the client gave up;
- ``drop``: the connection is closed after the request was read, with no response and no effect;
- ``partial``: a write batch succeeds except for some records, which fail in the vendor's
  per-record shape (``fail_indexes``; default every odd index, or the only record);
- ``throttle``: one 429 (403 for Salesforce) in the vendor's shape, without configuring a limiter.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

FAULT_KINDS = ("status_5xx", "timeout", "drop", "partial", "throttle")


@dataclass(frozen=True)
class Fault:
    """One kind of failure; ``path`` (a regex searched in the URL path) narrows where it fires."""

    kind: str
    status: int = 503
    seconds: float = 30.0
    path: str | None = None
    fail_indexes: tuple[int, ...] | None = None
    _path_re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.kind == "status_5xx" and not 500 <= self.status <= 599:
            raise ValueError(f"status_5xx fault needs a 5xx status, got {self.status}")
        object.__setattr__(self, "_path_re", re.compile(self.path) if self.path else None)

    def matches(self, path: str, writes: bool) -> bool:
        # A partial failure only means something for a request that carries records.
        if self.kind == "partial" and not writes:
            return False
        return self._path_re is None or self._path_re.search(path) is not None

    def fails(self, index: int, total: int) -> bool:
        """For ``partial``: does record ``index`` of a batch of ``total`` fail?"""
        if self.kind != "partial":
            return False
        if self.fail_indexes is not None:
            return index in self.fail_indexes
        return total == 1 or index % 2 == 1


@dataclass
class _Queued:
    fault: Fault
    left: int


class FaultPlan:
    """Queued and random faults of one emulator; safe to change while requests are served."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._probability = 0.0
        self._kinds: tuple[Fault, ...] = (Fault("status_5xx"),)
        self._rng = random.Random()

    def add(self, fault: Fault, count: int = 1) -> None:
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._lock:
            self._queue.append(_Queued(fault, count))

    def set_probability(
        self, probability: float, kinds: Sequence[str | Fault] = ("status_5xx",), seed: int | None = None
    ) -> None:
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        faults = tuple(k if isinstance(k, Fault) else Fault(k) for k in kinds)
        if probability and not faults:
            raise ValueError("give at least one fault kind")
        with self._lock:
            self._probability, self._kinds = probability, faults
            if seed is not None:
                self._rng.seed(seed)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._probability = 0.0

    @property
    def pending(self) -> int:
        """Queued faults not yet fired (the random ones are not counted)."""
        with self._lock:
            return sum(entry.left for entry in self._queue)

    def next(self, path: str, writes: bool) -> Fault | None:
        """The fault for this request, if any; queued faults fire first, in order."""
        if not self._queue and not self._probability:
            return None  # the common case, without taking the lock
        with self._lock:
            for entry in self._queue:
                if entry.fault.matches(path, writes):
                    entry.left -= 1
                    if not entry.left:
                        self._queue.remove(entry)
                    return entry.fault
            if self._probability and self._rng.random() < self._probability:
                candidates = [f for f in self._kinds if f.matches(path, writes)]
                if candidates:
                    return self._rng.choice(candidates)
        return None
