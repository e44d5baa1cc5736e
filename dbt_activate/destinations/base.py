"""The destination seam: what every destination type implements, and the registry that finds them.

A destination turns a batch of records into requests and the responses into per-record results.
It never retries on its own (``delivery.py`` does), never touches sync state (the runner does) and
never decides what to send (the diff does). Destination types are found through the
``dbt_activate.destinations`` entry point group, so built-in and third-party types load the same way.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Protocol

from dbt_activate.errors import ConfigError

ENTRY_POINT_GROUP = "dbt_activate.destinations"


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

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.field for f in self.fields)


@dataclass(frozen=True)
class Record:
    """One row to deliver. ``values`` is keyed by destination field name and includes the identity.

    For DELETE and CLEAR, ``values`` holds only the identity fields as they were last sent.
    """

    key: str
    values: Mapping[str, Any]


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


@dataclass(frozen=True)
class ConfigKey:
    """One key of a destination's config in destinations.yml (drives validation and docs)."""

    name: str
    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    help: str = ""
    secret: bool = False


@dataclass(frozen=True)
class RateLimit:
    requests: int
    per_seconds: float


COMMON_CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("type", str, required=True, help="The destination type."),
    ConfigKey("batch_size", int, help="Records per request; defaults to the vendor's documented maximum."),
    ConfigKey("rate_limit", dict, help="{requests: N, per_seconds: S}; defaults to the documented limit."),
    ConfigKey("max_concurrency", int, help="Batches in flight at once."),
    # TLS of HTTP types (the runner hands them to every HttpSession: delivery.using_tls).
    ConfigKey("verify_tls", bool, default=True,
              help="Verify the server's TLS certificate; false prints a warning once per destination and run."),
    ConfigKey("ca_bundle", str, help="Path to a PEM file of CA certificates to verify the server against."),
    ConfigKey("verify", bool, default=True, help="The older name of verify_tls (HTTP types)."),
    ConfigKey("owner", (dict, str),
              help="Who owns this destination, for `docs --exposures`: {name, email} or a name."),
)


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


class Destination(abc.ABC):
    """A destination type. One instance serves one sync in one run.

    Subclasses set the class attributes and implement ``write``. ``config`` is the destination's
    entry from destinations.yml, already rendered and checked against ``config_keys``.
    """

    kind: ClassVar[str]
    description: ClassVar[str] = ""
    config_keys: ClassVar[tuple[ConfigKey, ...]] = ()
    modes: ClassVar[frozenset[Mode]] = frozenset(Mode)
    batch_size: ClassVar[int] = 100
    max_concurrency: ClassVar[int] = 1
    rate_limit: ClassVar[RateLimit | None] = None
    objects: ClassVar[tuple[str, ...]] = ()  # documented objects; empty = any name
    uses_id_store: ClassVar[bool] = False  # True: the runner should set ``id_store`` before ``open()``
    # Config keys whose strings are templates the type renders itself (per batch or record): destinations.yml
    # leaves them as written instead of rendering them with env_var() when it is read.
    deferred_keys: ClassVar[tuple[str, ...]] = ()
    null_handling: ClassVar[Nulls] = Nulls.NOT_APPLICABLE

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config
        # Set by the runner before open() for types with ``uses_id_store``; see RecordIdStore.
        self.id_store: RecordIdStore | None = None

    @property
    def effective_batch_size(self) -> int:
        return int(self.config.get("batch_size") or self.batch_size)

    @property
    def effective_concurrency(self) -> int:
        return int(self.config.get("max_concurrency") or self.max_concurrency)

    def clears_nulls(self, target: SyncTarget) -> bool:
        """True when a NULL should empty the destination's field: the sync's ``nulls``, else the
        destination's own ``nulls`` key where the type has one, else keep."""
        return (target.nulls or _configured_nulls(self.config)) == "clear"

    def secrets(self) -> list[str]:
        """Config values that must never appear in output."""
        secret_names = {k.name for k in self.config_keys if k.secret}
        return [str(v) for k, v in self.config.items() if k in secret_names and v]

    def check_target(self, target: SyncTarget) -> None:  # noqa: B027 - optional hook
        """Raise ConfigError when this destination cannot serve ``target`` (no network)."""

    async def open(self, target: SyncTarget) -> None:  # noqa: B027 - optional hook
        """Per-sync set-up before the first batch (check or create tables, look up fields)."""

    @abc.abstractmethod
    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        """Deliver one batch; return the records the destination rejected or skipped."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and files. Called once, also after a failure."""

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        """The request ``write`` would make, for ``plan``'s sample payloads (no network)."""
        return {
            "operation": batch.operation.value,
            "records": [dict(r.values) for r in batch.records],
        }

    def estimate_requests(self, operation: Operation, records: int) -> int:
        """Requests ``write`` would make for ``records`` records, for ``plan`` (no network).

        One request per batch unless a type knows better (per-record APIs, lookups, job polling).
        """
        return -(-records // max(1, self.effective_batch_size))


def _configured_nulls(config: Mapping[str, Any]) -> str:
    return str(config.get("nulls") or "keep")


def check_nulls_key(name: str, config: Mapping[str, Any]) -> None:
    """For types whose destinations.yml entry takes ``nulls`` (the default of their syncs)."""
    value = _configured_nulls(config)
    if value not in NULLS_VALUES:
        raise ConfigError(f"nulls must be one of {', '.join(NULLS_VALUES)}, got {value!r}", location=f"{name}.nulls")


def check_config(kind: type[Destination], name: str, config: Mapping[str, Any], source: str) -> None:
    """Check a destinations.yml entry against the type's declared keys; errors name file and key."""
    declared = {k.name: k for k in (*COMMON_CONFIG_KEYS, *kind.config_keys)}
    for key, value in config.items():
        spec = declared.get(key)
        if spec is None:
            known = ", ".join(sorted(declared))
            raise ConfigError(f"unknown key {key!r} for type {kind.kind!r} (known: {known})",
                              location=f"{source}: {name}.{key}")
        if value is not None and not isinstance(value, spec.type):
            wanted = spec.type.__name__ if isinstance(spec.type, type) else " or ".join(
                t.__name__ for t in spec.type)
            raise ConfigError(f"must be a {wanted}, got {type(value).__name__}",
                              location=f"{source}: {name}.{key}")
    for spec in declared.values():
        if spec.required and config.get(spec.name) in (None, ""):
            raise ConfigError(f"required key {spec.name!r} is missing", location=f"{source}: {name}")


def destination_entry_points() -> dict[str, EntryPoint]:
    """Installed destination types by kind, not yet imported."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_destination_type(kind: str) -> type[Destination]:
    """Import one destination type; a broken plugin is a clear error that names it."""
    found = destination_entry_points()
    ep = found.get(kind)
    if ep is None:
        raise ConfigError(f"unknown destination type {kind!r} (installed: {', '.join(sorted(found))})")
    try:
        cls = ep.load()
    except Exception as exc:
        raise ConfigError(f"destination type {kind!r} ({ep.value}) cannot be imported: "
                          f"{type(exc).__name__}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise ConfigError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not a Destination subclass")
    return cls
