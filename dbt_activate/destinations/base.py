"""The destination seam: what every destination type implements, and the registry that finds them.

A destination turns a batch of records into requests and the responses into per-record results.
It never retries on its own (``delivery.py`` does), never touches sync state (the runner does) and
never decides what to send (the diff does). Destination types are found through the
``dbt_activate.destinations`` entry point group, so built-in and third-party types load the same way.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from types import MappingProxyType
from typing import Any, ClassVar

# The value types live in core; destinations and plugins keep importing them from here.
from dbt_activate.core.types import (  # noqa: F401
    NULLS_VALUES,
    Batch,
    BatchResult,
    FieldSpec,
    MemoryIdStore,
    Mode,
    Nulls,
    Operation,
    RateLimit,
    Record,
    RecordIdStore,
    SyncTarget,
)
from dbt_activate.core.wording import did_you_mean
from dbt_activate.errors import ConfigError

ENTRY_POINT_GROUP = "dbt_activate.destinations"


@dataclass(frozen=True)
class ConfigKey:
    """One key of a destination's config in destinations.yml (drives validation and docs)."""

    name: str
    type: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    help: str = ""
    secret: bool = False
    # Older names of the key, still read as it (``configured``); destinations.yml is warned about each
    # one it uses (``deprecated_keys``), and an entry that sets an older name and the key is an error.
    formerly: tuple[str, ...] = ()


COMMON_CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("type", str, required=True, help="The destination type."),
    ConfigKey("batch_size", int, help="Records per request; defaults to the vendor's documented maximum."),
    ConfigKey("rate_limit", dict, help="{requests: N, per_seconds: S}; defaults to the documented limit."),
    ConfigKey("max_concurrency", int, help="Batches in flight at once."),
    # TLS of HTTP types (the runner hands them to every HttpSession: delivery.using_tls).
    ConfigKey("verify_tls", bool, default=True, formerly=("verify",),
              help="Verify the server's TLS certificate; false prints a warning once per destination and run."),
    ConfigKey("ca_bundle", str, help="Path to a PEM file of CA certificates to verify the server against."),
    ConfigKey("owner", (dict, str),
              help="Who owns this destination, for `docs --exposures`: {name, email} or a name."),
)


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
    # Relationships a sync's ``references`` may set, per object: {object: {as: object of the parent}},
    # e.g. Pipedrive {"deals": {"person_id": "persons"}}. The engine sends the parent's record id under
    # the ``as`` field, so a type that declares one must report the ids it writes (``BatchResult.ids``).
    references: ClassVar[Mapping[str, Mapping[str, str]]] = {}

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        self.name = name
        self.config = config
        # Set by the runner before open() for types with ``uses_id_store``; see RecordIdStore.
        self.id_store: RecordIdStore | None = None

    def record_id_store(self) -> RecordIdStore:
        """The runner's ``id_store``; without one (``plan``, unit tests) a store in memory, the same for
        every batch of this instance, so what one batch learnt the next one finds."""
        if self.id_store is None:
            self.id_store = MemoryIdStore()
        return self.id_store

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

    def planned_requests(self, target: SyncTarget, operation: Operation, records: int) -> int:
        """Requests ``write`` would make for ``records`` records of ``target``, for ``plan`` (no network).

        ``estimate_requests`` unless the count depends on the sync (its identity, its object)."""
        return self.estimate_requests(operation, records)


def skip_all(batch: Batch, reason: str) -> BatchResult:
    """The result of a batch the object cannot take (an event cannot be deleted): every record skipped."""
    return BatchResult(skipped=dict.fromkeys((r.key for r in batch.records), reason))


def _configured_nulls(config: Mapping[str, Any]) -> str:
    return str(config.get("nulls") or "keep")


def check_nulls_key(name: str, config: Mapping[str, Any]) -> None:
    """For types whose destinations.yml entry takes ``nulls`` (the default of their syncs)."""
    value = _configured_nulls(config)
    if value not in NULLS_VALUES:
        raise ConfigError(f"nulls must be one of {', '.join(NULLS_VALUES)}, got {value!r}", location=f"{name}.nulls")


def written_as(key: ConfigKey, config: Mapping[str, Any]) -> str | None:
    """The name ``key`` is set under in a destinations.yml entry: its own, else one of its older names
    (``formerly``); None when it is set under neither."""
    return next((written for written in (key.name, *key.formerly) if config.get(written) is not None), None)


def configured(key: ConfigKey, config: Mapping[str, Any]) -> Any:
    """The value of ``key`` in a destinations.yml entry, under whichever name it is set (``written_as``);
    None when it is not set."""
    written = written_as(key, config)
    return None if written is None else config[written]


def deprecated_keys(kind: type[Destination], name: str, config: Mapping[str, Any], source: str) -> list[str]:
    """A warning for each older key name the entry ``name`` of ``source`` uses, naming the key to use."""
    return [f"{source}: {name}.{old} is deprecated: rename it to {key.name} (until then it is read as {key.name})"
            for key in (*COMMON_CONFIG_KEYS, *kind.config_keys) for old in key.formerly if old in config]


def check_config(kind: type[Destination], name: str, config: Mapping[str, Any], source: str) -> None:
    """Check a destinations.yml entry against the type's declared keys; errors name file and key."""
    declared = {k.name: k for k in (*COMMON_CONFIG_KEYS, *kind.config_keys)}
    older = {old: k for k in declared.values() for old in k.formerly}
    for key, value in config.items():
        spec = declared.get(key) or older.get(key)
        if spec is not None and key in older and spec.name in config:
            raise ConfigError(f"{key} is the deprecated name of {spec.name}, and both are set: keep {spec.name} "
                              "only", location=f"{source}: {name}.{key}")
        if spec is None:
            known = ", ".join(sorted(declared))
            raise ConfigError(f"unknown key {key!r} for type {kind.kind!r} (known: {known})"
                              f"{did_you_mean(key, declared)}",
                              location=f"{source}: {name}.{key}")
        if value is not None and not isinstance(value, spec.type):
            wanted = spec.type.__name__ if isinstance(spec.type, type) else " or ".join(
                t.__name__ for t in spec.type)
            raise ConfigError(f"must be a {wanted}, got {type(value).__name__}",
                              location=f"{source}: {name}.{key}")
    for spec in declared.values():
        if spec.required and configured(spec, config) in (None, ""):
            raise ConfigError(f"required key {spec.name!r} is missing", location=f"{source}: {name}")


@functools.cache
def destination_entry_points() -> Mapping[str, EntryPoint]:
    """Installed destination types by kind, not yet imported.

    Read once per process: ``entry_points`` reads the metadata of every installed distribution, and a
    run asked for it once per destination built and checked (5 times for one HubSpot sync, 16 ms each).
    """
    return MappingProxyType({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})


def _install_hint(ep: EntryPoint) -> str:
    """A missing module of a type that ships as an extra (``google_sheets`` -> ``[google-sheets]``): the
    ``pip install`` that brings it, read from the distribution's own metadata, so plugins get it too."""
    dist = ep.dist
    if dist is None:
        return ""
    extras = dist.metadata.get_all("Provides-Extra") or []
    wanted = ep.name.replace("_", "-").lower()
    extra = next((e for e in extras if e.replace("_", "-").lower() == wanted), None)
    if extra is None:
        return ""
    return f"; install it with: pip install '{dist.metadata['Name']}[{extra}]'"


def load_destination_type(kind: str) -> type[Destination]:
    """Import one destination type; a broken plugin is a clear error that names it."""
    found = destination_entry_points()
    ep = found.get(kind)
    if ep is None:
        raise ConfigError(f"unknown destination type {kind!r} (installed: {', '.join(sorted(found))})"
                          f"{did_you_mean(kind, found)}")
    try:
        cls = ep.load()
    except Exception as exc:
        hint = _install_hint(ep) if isinstance(exc, ImportError) else ""
        raise ConfigError(f"destination type {kind!r} ({ep.value}) cannot be imported: "
                          f"{type(exc).__name__}: {exc}{hint}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Destination)):
        raise ConfigError(f"entry point {ep.name!r} in {ENTRY_POINT_GROUP} is not a Destination subclass")
    return cls
