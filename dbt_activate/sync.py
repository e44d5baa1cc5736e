"""One sync of a run, gathered once: what ``runner.run_sync`` needs, as one frozen ``Sync``.

The runner builds it from the invocation (``invocation.py``) and hands it to each step: the diff
rows come from its ``Source`` (``diff.py`` reads them from the warehouse), the records go to its
``Destination`` through ``stream.py``, the state goes to its ``StateStore`` (``state/store.py``).
Those three seams are what the engine's in-process tests replace (tests/engine/).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbt_activate.core.changes import RowLayout
from dbt_activate.core.interruption import Interruption
from dbt_activate.core.outcomes import Reporter, SilentReporter
from dbt_activate.core.types import SyncTarget
from dbt_activate.delivery import RateLimiter, RetryPolicy
from dbt_activate.destinations.base import Destination
from dbt_activate.links import Links
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync, SyncSpec
from dbt_activate.state.journal import Journal
from dbt_activate.state.locks import DEFAULT_TTL
from dbt_activate.state.store import StateStore, SyncRecord

Chunks = Iterator[list[tuple[Any, ...]]]


class Source(Protocol):
    """The diff rows of one sync (``core/changes.py`` says their shape), in chunks.

    ``snapshot`` is the sync's snapshot table, or None for a first sync (every row is new);
    ``everything`` also yields the unchanged rows (``--full-resync``, a changed field mapping).
    """

    def rows(self, snapshot: str | None, *, everything: bool) -> Chunks: ...
    def duplicate_keys(self) -> Mapping[str, int]: ...
    def row_count(self) -> int: ...


@dataclass(frozen=True)
class Tunables:
    """The knobs read from the environment, once per invocation (README, tuning table)."""

    checkpoint_rows: int = 50_000  # DBT_ACTIVATE_CHECKPOINT_ROWS: acknowledged rows between checkpoints
    checkpoint_seconds: float = 30.0  # DBT_ACTIVATE_CHECKPOINT_SECONDS: ... or seconds
    lock_ttl: float = DEFAULT_TTL  # DBT_ACTIVATE_LOCK_TTL_SECONDS: a crashed run's lock expires after it

    @classmethod
    def from_environment(cls) -> Tunables:
        env = os.environ
        return cls(checkpoint_rows=int(env.get("DBT_ACTIVATE_CHECKPOINT_ROWS", cls.checkpoint_rows)),
                   checkpoint_seconds=float(env.get("DBT_ACTIVATE_CHECKPOINT_SECONDS", cls.checkpoint_seconds)),
                   lock_ttl=float(env.get("DBT_ACTIVATE_LOCK_TTL_SECONDS", cls.lock_ttl)))


@dataclass(frozen=True)
class Sync:
    """Everything one sync's run needs, built once by the runner (or by a test)."""

    resolved: ResolvedSync
    decision: Decision
    target: SyncTarget
    destination: Destination
    layout: RowLayout  # how a diff row becomes a record (diff.row_layout)
    source: Source
    state: StateStore
    journal: Journal
    run_id: str
    previous: SyncRecord | None = None  # what the state remembers of the sync's last run
    limiter: RateLimiter | None = None  # shared by every sync of the same destination account
    links: Links | None = None  # references resolved before sending, record ids kept after (links.py)
    tunables: Tunables = field(default_factory=Tunables)
    lock_timeout: float = 60.0
    interruption: Interruption = field(default_factory=Interruption)
    reporter: Reporter = field(default_factory=SilentReporter)
    redact: Callable[[str], str] = str
    dbt_invocation_id: str = ""
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    @property
    def spec(self) -> SyncSpec:
        return self.resolved.spec

    @property
    def name(self) -> str:
        return self.resolved.spec.name
