"""The value types every layer shares: how a sync treats rows (Mode), what a batch asks (Operation),
records and batches, what a destination answers (BatchResult), the row counts of a sync, and the
record-id seam. Standard library only.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


class Mode(str, enum.Enum):
    """How a sync treats the rows of its model (DESIGN §2)."""

    UPSERT = "upsert"
    UPDATE = "update"
    CREATE = "create"
    APPEND = "append"
    MIRROR = "mirror"


class Operation(str, enum.Enum):
    """What one batch asks the destination to do with its records."""

    UPSERT = "upsert"  # update the record found by identity, or create it
    UPDATE = "update"  # update existing records only; unknown ones come back as skipped
    CREATE = "create"  # create new records only; existing ones come back as skipped
    APPEND = "append"  # always a new record / event / line
    DELETE = "delete"  # delete (or archive) the record found by identity
    CLEAR = "clear"  # keep the record, empty its mapped non-identity fields


NULLS_VALUES = ("keep", "clear")  # the sync's `nulls`, and the destination-level key of the types that have one


class Nulls(str, enum.Enum):
    """How a destination type treats a NULL field of a record it updates (the sync's ``nulls`` key).

    ``nulls: keep`` (the default) means a NULL never wipes a value the destination holds; ``nulls: clear``
    means it empties the field. Each type says how it gets there.
    """

    # Every record is a new event, message or line, so there is no stored value to wipe; a sync
    # that sets ``nulls`` is a config error. The default, so a plugin never silently ignores it.
    NOT_APPLICABLE = "not_applicable"
    # An absent field keeps its value: with keep, the pipeline leaves NULL fields (identity
    # excepted) out of the records of an upsert, update or create; with clear they are passed on
    # and the type sends its clearing value.
    OMIT = "omit"
    # The type formats NULLs itself, from ``Destination.clears_nulls(target)``.
    OWN = "own"


@dataclass(frozen=True)
class FieldSpec:
    """One mapped field: model column -> destination field, with the warehouse's data type."""

    column: str
    field: str
    data_type: str = ""


@dataclass(frozen=True)
class SyncTarget:
    """What a destination needs to know about the sync it writes for."""

    sync_name: str
    object: str
    mode: Mode
    fields: tuple[FieldSpec, ...]
    # Destination field names that find a record: the sync's `match`, else its primary key.
    identity: tuple[str, ...]
    run_id: str = ""
    options: Mapping[str, Any] = field(default_factory=dict)
    nulls: str = ""  # the sync's `nulls` (keep | clear); "" when it does not say
    # Destination fields that hold a parent record's id: the sync's `references` (their `as`), resolved by
    # the engine (links.py). A field of the same name that no reference declares is an ordinary value.
    references: tuple[str, ...] = ()

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.fields)


@dataclass(frozen=True)
class Record:
    """One row to deliver. ``values`` is keyed by destination field name and includes the identity.

    For DELETE and CLEAR, ``values`` holds only the identity fields as they were last sent.

    ``previous`` is set on an UPSERT or UPDATE record whose identity (its ``match`` value, e.g. an
    email) differs from the one last sent for the same primary key: the identity fields as they
    were sent then. The record is an update of the destination record found by ``previous`` (or by
    the record id stored for it), carrying the new identity in ``values``, never a create; a type
    that cannot change an identity in place says so in its docs. ``changes.RowLayout`` sets it.
    """

    key: str
    values: Mapping[str, Any]
    previous: Mapping[str, Any] | None = None

    def as_previous(self) -> Record:
        """This record as it was last sent: its identity fields as ``previous`` holds them."""
        return Record(self.key, dict(self.previous or {}))


@dataclass(frozen=True)
class Batch:
    operation: Operation
    records: Sequence[Record]


@dataclass
class BatchResult:
    """Outcome of one delivered batch.

    Every record of the batch that is not listed as rejected or skipped is acknowledged: the
    destination accepted it. A destination that cannot confirm a batch must raise a
    ``DestinationError`` instead of returning, so no unconfirmed record is ever marked synced.
    """

    rejected: dict[str, str] = field(default_factory=dict)  # key -> the destination's reason
    skipped: dict[str, str] = field(default_factory=dict)  # key -> why (update of an unknown record…)
    # key -> the destination's id of the record written, where the type knows it: what other syncs'
    # ``references`` link to (links.py). Optional; types without relationships leave it empty. Not part
    # of equality: two results are the same when they acknowledge, reject and skip the same records.
    ids: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_seconds: float


class RecordIdStore(Protocol):
    """Where a destination keeps the record ids it found or created, by match key, across runs.

    Vendors that cannot upsert by a field (Pipedrive) must search before every write; this map
    lets a destination search once per record ever, not once per row per run. Keys are chosen by
    the destination and are unique within one destination account (they name the object and the
    match field, e.g. ``persons|emails|ada@example.com``); values are the vendor's record ids. The
    runner sets ``Destination.id_store`` before ``open()``, scoped to the destination name (one
    account); without one a destination uses a ``MemoryIdStore`` that forgets at the end of the run.

    The map describes the destination, not the sync: it may run ahead of the sync state (an id
    stored for a record whose batch then failed is still that record's id). A destination calls
    each method at most once per batch, from the event loop, so each should be one round trip.
    """

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        """The ids of those ``keys`` that are known; unknown keys are left out."""
        ...

    def put_many(self, ids: Mapping[str, str]) -> None:
        """Remember (or replace) the id of each key."""
        ...

    def delete_many(self, keys: Sequence[str]) -> None:
        """Forget these keys (the record was deleted, or the id turned out stale); unknown keys are ignored."""
        ...

    def scan(self, prefixes: Sequence[str]) -> dict[str, str]:
        """Every key that starts with one of ``prefixes``, with its value (links.py keeps small indexes
        under prefixes: the children linked to a parent, the children whose parent was deleted)."""
        ...


class MemoryIdStore:
    """A ``RecordIdStore`` in a dict: the default, and the one tests use."""

    def __init__(self, ids: Mapping[str, str] | None = None) -> None:
        self.ids: dict[str, str] = dict(ids or {})

    def get_many(self, keys: Sequence[str]) -> dict[str, str]:
        return {k: self.ids[k] for k in keys if k in self.ids}

    def put_many(self, ids: Mapping[str, str]) -> None:
        self.ids.update(ids)

    def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.ids.pop(key, None)

    def scan(self, prefixes: Sequence[str]) -> dict[str, str]:
        return {k: v for k, v in self.ids.items() if any(k.startswith(p) for p in prefixes)}


@dataclass
class Counts:
    added: int = 0
    changed: int = 0
    removed: int = 0
    rejected: int = 0
    skipped: int = 0
    sent: int = 0

    def as_columns(self) -> dict[str, int]:
        return {"rows_added": self.added, "rows_changed": self.changed, "rows_removed": self.removed,
                "rows_rejected": self.rejected, "rows_skipped": self.skipped, "records_sent": self.sent}


class BatchWriter(Protocol):
    """What the delivery engine needs of a destination: write one batch, answer per record.

    ``destinations.base.Destination`` implements it; delivery depends on this seam, never on destinations.
    """

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult: ...
