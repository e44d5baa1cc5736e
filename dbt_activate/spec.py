"""The `activate` block of a model's YAML: one table of keys, parsing and validation.

``ACTIVATE_KEYS`` is the single source of truth: it drives validation, the README reference and
``dbt-activate --help``; a test fails when a key is missing from the README. Every error names the
YAML file, the model and the key path, e.g.
``models/crm/schema.yml: people.config.meta.activate[0].mode: 'upsrt' is not one of …``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbt_activate.core.order import CycleError, Dependency, run_order
from dbt_activate.core.types import NULLS_VALUES, FieldSpec, Mode, Nulls
from dbt_activate.core.wording import did_you_mean
from dbt_activate.dbt.artifacts import DEFAULTS_KEY, Manifest, ModelNode
from dbt_activate.destinations.base import Destination
from dbt_activate.errors import ConfigError, WarehouseError

if TYPE_CHECKING:
    from dbt_activate.warehouse.connection import WarehouseConnection

ON_DELETE_VALUES = ("ignore", "delete", "clear")
GATE_VALUES = ("error", "warn", "none")
SYNC_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class KeyDoc:
    name: str
    type: str
    default: str
    help: str
    required: bool = False


ACTIVATE_KEYS: tuple[KeyDoc, ...] = (
    KeyDoc("destination", "string", "", "A destination name from destinations.yml.", required=True),
    KeyDoc("object", "string", "", "The destination object: CRM object, list, event name; "
           "`schema.table` for databases; ignored by `file`.", required=True),
    KeyDoc("mode", "upsert | update | create | append | mirror", "upsert",
           "upsert: update or create. update: existing records only (others skipped). create: new records "
           "only. append: every added or changed row is a new record/event. mirror: upsert plus delete "
           "of rows that left the model or the segment."),
    KeyDoc("primary_key", "column or list of columns", "", "Model column(s) that identify a row: unique, "
           "not null. Rows with a null or duplicate key are rejected with the reason.", required=True),
    KeyDoc("match", "{column: field}", "primary key", "Model column -> destination field used to find "
           "the record (e.g. `{email: email}`)."),
    KeyDoc("fields", "auto | [columns] | {column: field}", "auto",
           "Which columns are sent and under which destination field name; auto = every column, same name."),
    KeyDoc("where", "SQL predicate", "", "Segment: only rows matching it are synced (`country = 'FR'`). "
           "Rows leaving the segment count as removed."),
    KeyDoc("on_delete", "ignore | delete | clear", "ignore (delete for mirror)",
           "What happens in the destination to rows removed from the model or segment; clear empties "
           "the mapped fields and keeps the record."),
    KeyDoc("nulls", "keep | clear", "keep (or the destination's own `nulls`)",
           "keep: a NULL in a mapped field never wipes the value the destination holds (it is left out of "
           "the update; a new record gets no value). clear: a NULL empties the field. Not for destinations "
           "where every record is new (webhook, http, file, slack)."),
    KeyDoc("name", "string", "<model>__<destination>__<object>", "The sync id used in state, "
           "selection (`--select name`) and output. The default contains `object`: editing `object` "
           "renames the sync (no state: every row sent again; `plan` says \"renamed? set `name:` to keep "
           "its state\")."),
    KeyDoc("gate", "error | warn | none", "error", "Which results of the model's tests in the last dbt "
           "invocation block the sync: error = a test that failed or errored; warn = also a test that "
           "warned; none = tests never block (a model that failed to build or was skipped always does)."),
    KeyDoc("quarantine", "boolean", "false", "Instead of blocking on a failing test that stores its "
           "failures (`store_failures: true`), hold back the rows whose primary key is in that test's "
           "failures table and sync the others; the held-back rows are counted in the results."),
    KeyDoc("references", "[{sync, column, as}]", "", "Links to records another sync writes to the same "
           "destination: `column` holds the parent's primary key, `as` is the relationship in the "
           "destination's terms (Pipedrive `org_id`, `person_id`; Salesforce `AccountId`; HubSpot `company`; "
           "Zendesk `organization_id`; Intercom `company`). The parent sync runs first; a row whose parent "
           "is not in the destination yet is held back (\"waiting for <sync> <key>\") and retried next run; "
           "a NULL clears the link; children of a parent deleted in mirror are unlinked and wait for it."),
    KeyDoc("after", "[sync, …]", "", "Syncs this one runs after within an invocation, without a reference "
           "(a sequence). A cycle is a configuration error."),
)
# Keys a project or folder default (`+meta: {activate_defaults: {...}}`) may not set: a name is per sync.
_NOT_DEFAULTABLE = {"name"}
_KNOWN_KEYS = {k.name for k in ACTIVATE_KEYS}


@dataclass(frozen=True)
class Reference:
    """``column`` of this sync's model holds the primary key of a record ``sync`` writes; the destination
    links the two as ``relationship`` (the ``as`` key: a field or association in the vendor's terms)."""

    sync: str
    column: str
    relationship: str


@dataclass(frozen=True)
class SyncSpec:
    """One validated sync, as declared; columns are resolved against the warehouse later."""

    name: str
    model_id: str
    model_name: str
    relation: str
    destination: str
    object: str
    mode: Mode
    primary_key: tuple[str, ...]
    match: tuple[tuple[str, str], ...]  # (model column, destination field)
    fields: tuple[tuple[str, str], ...] | None  # None = auto
    where: str | None
    on_delete: str
    location: str  # "models/schema.yml: people.config.meta.activate[0]"
    config_hash: str
    tags: tuple[str, ...] = ()
    path: str = ""
    gate: str = "error"  # error | warn | none
    quarantine: bool = False
    nulls: str = ""  # keep | clear; "" = not set (the destination's own `nulls`, else keep)
    references: tuple[Reference, ...] = ()
    after: tuple[str, ...] = ()

    @property
    def sends_deletes(self) -> bool:
        return self.on_delete != "ignore"


def _err(location: str, key: str, message: str) -> ConfigError:
    return ConfigError(message, location=f"{location}.{key}" if key else location)


def _str(raw: Mapping[str, Any], key: str, location: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise _err(location, key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _err(location, key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _choice(raw: Mapping[str, Any], key: str, location: str, choices: Sequence[str], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise _err(location, key, f"{value!r} is not one of {', '.join(choices)}{did_you_mean(value, choices)}")
    return str(value)


def _columns(value: Any, location: str, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(c, str) and c for c in items):
        raise _err(location, key, f"must be a column name or a non-empty list of column names, got {value!r}")
    if len(set(items)) != len(items):
        raise _err(location, key, f"lists a column twice: {items!r}")
    return tuple(items)


def _mapping(value: Any, location: str, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not value:
        raise _err(location, key, f"must be a mapping of model column to destination field, got {value!r}")
    pairs = []
    for column, target in value.items():
        if not isinstance(column, str) or not isinstance(target, str) or not column or not target:
            raise _err(location, f"{key}.{column}", f"must map a column name to a field name, got {target!r}")
        pairs.append((column, target))
    return tuple(pairs)


def _fields(value: Any, location: str) -> tuple[tuple[str, str], ...] | None:
    if value is None or value == "auto":
        return None
    if isinstance(value, list):
        return tuple((c, c) for c in _columns(value, location, "fields"))
    if isinstance(value, dict):
        pairs = _mapping(value, location, "fields")
        targets = [t for _, t in pairs]
        if len(set(targets)) != len(targets):
            raise _err(location, "fields", "maps two columns to the same destination field")
        return pairs
    raise _err(location, "fields", f"must be 'auto', a list of columns or a mapping, got {value!r}")


def _references(value: Any, location: str) -> tuple[Reference, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(location, "references", f"must be a list of {{sync, column, as}} mappings, got {value!r}")
    found: list[Reference] = []
    for i, item in enumerate(value):
        where = f"references[{i}]"
        if not isinstance(item, dict):
            raise _err(location, where, f"must be a mapping with sync, column and as, got {item!r}")
        unknown = sorted(set(map(str, item)) - {"sync", "column", "as"})
        if unknown:
            raise _err(location, f"{where}.{unknown[0]}", "unknown key (known: sync, column, as)")
        sync, column, relationship = (_str(item, k, f"{location}.{where}", required=True)
                                      for k in ("sync", "column", "as"))
        assert sync is not None and column is not None and relationship is not None
        if any(r.relationship == relationship for r in found):
            raise _err(location, f"{where}.as", f"relationship {relationship!r} is declared twice")
        found.append(Reference(sync, column, relationship))
    return tuple(found)


def _after(value: Any, location: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(v, str) and v.strip() for v in items):
        raise _err(location, "after", f"must be a sync name or a list of sync names, got {value!r}")
    return tuple(dict.fromkeys(v.strip() for v in items))


def config_hash(raw: Mapping[str, Any]) -> str:
    canonical = json.dumps(raw, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_block(model: ModelNode, index: int, raw: Any) -> SyncSpec:
    location = f"{model.yaml_file}: {model.name}.{model.activate_key_path}[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"must be a mapping with destination, object, primary_key…, got {raw!r}",
                          location=location)
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise _err(location, str(unknown[0]), f"unknown key (known: {', '.join(k.name for k in ACTIVATE_KEYS)})"
                                              f"{did_you_mean(unknown[0], _KNOWN_KEYS)}")
    destination = _str(raw, "destination", location, required=True)
    obj = _str(raw, "object", location, required=True)
    mode = Mode(_choice(raw, "mode", location, [m.value for m in Mode], "upsert"))
    if "primary_key" not in raw:
        raise _err(location, "primary_key", "is required: the column(s) that identify a row")
    primary_key = _columns(raw["primary_key"], location, "primary_key")
    match = _mapping(raw["match"], location, "match") if raw.get("match") is not None else ()
    default_on_delete = "delete" if mode is Mode.MIRROR else "ignore"
    on_delete = _choice(raw, "on_delete", location, ON_DELETE_VALUES, default_on_delete)
    if mode is Mode.MIRROR and on_delete != "delete":
        raise _err(location, "on_delete", f"mode mirror deletes removed rows; on_delete {on_delete!r} "
                   "contradicts it (use mode upsert with on_delete: clear)")
    if mode in (Mode.APPEND, Mode.CREATE) and on_delete != "ignore":
        raise _err(location, "on_delete", f"mode {mode.value} never touches existing records; "
                   "on_delete must be ignore")
    assert destination is not None and obj is not None
    quarantine = raw.get("quarantine", False)
    if not isinstance(quarantine, bool):
        raise _err(location, "quarantine", f"must be true or false, got {quarantine!r}")
    name = _str(raw, "name", location) or f"{model.name}__{destination}__{obj}"
    if not SYNC_NAME_RE.match(name):
        raise _err(location, "name", f"{name!r} may only contain letters, digits, '_', '-' and '.'")
    return SyncSpec(
        name=name,
        model_id=model.unique_id,
        model_name=model.name,
        relation=model.relation_name,
        destination=destination,
        object=obj,
        mode=mode,
        primary_key=primary_key,
        match=match,
        fields=_fields(raw.get("fields"), location),
        where=_str(raw, "where", location),
        on_delete=on_delete,
        location=location,
        config_hash=config_hash(raw),
        tags=model.tags,
        path=model.original_file_path,
        gate=_choice(raw, "gate", location, GATE_VALUES, "error"),
        quarantine=quarantine,
        nulls=_choice(raw, "nulls", location, NULLS_VALUES, "keep") if "nulls" in raw else "",
        references=_references(raw.get("references"), location),
        after=_after(raw.get("after"), location),
    )


def check_mode(spec: SyncSpec, destination: type[Destination] | Destination) -> None:
    """The sync's mode must be one its destination type supports."""
    if spec.mode not in destination.modes:
        supported = ", ".join(sorted(m.value for m in destination.modes))
        raise _err(spec.location, "mode", f"destination type {destination.kind!r} does not support mode "
                   f"{spec.mode.value!r} (supported: {supported})")


def check_nulls(spec: SyncSpec, destination: Destination) -> None:
    """A sync's ``nulls`` must mean something to its destination type (see ``Nulls``)."""
    if spec.nulls and destination.null_handling is Nulls.NOT_APPLICABLE:
        raise _err(spec.location, "nulls", f"destination type {destination.kind!r} sends every record as new "
                   "(an event, message or line), so there is no stored value for a NULL to keep or clear; "
                   "remove the key")


def check_links(specs: Sequence[SyncSpec], type_of: Callable[[SyncSpec], type[Destination]]) -> list[Dependency]:
    """Check every ``references`` and ``after`` against the other syncs and the destination types; the
    dependencies they make (parents first, ``core/order.py``), checked for cycles over every sync."""
    by_name = {s.name: s for s in specs}
    dependencies: list[Dependency] = []

    def parent_of(spec: SyncSpec, name: str, key: str) -> SyncSpec:
        parent = by_name.get(name)
        if parent is None:
            raise _err(spec.location, key, f"unknown sync {name!r} (syncs: {', '.join(sorted(by_name))})")
        if parent.name == spec.name:
            raise _err(spec.location, key, "a sync cannot reference or run after itself")
        return parent

    for spec in specs:
        for i, ref in enumerate(spec.references):
            where = f"references[{i}]"
            parent = parent_of(spec, ref.sync, f"{where}.sync")
            if parent.destination != spec.destination:
                raise _err(spec.location, f"{where}.sync", f"sync {parent.name!r} writes to destination "
                           f"{parent.destination!r}, this sync to {spec.destination!r}: a reference links "
                           "records of one destination account")
            destination = type_of(spec)  # the type's relationships: nothing rendered
            supported = destination.references.get(spec.object, {})
            if not destination.references:
                raise _err(spec.location, f"{where}.as", f"{destination.kind} has no relationships between "
                           "records; `references` cannot be used with it (`after` orders syncs without a link)")
            if ref.relationship not in supported:
                offered = ", ".join(f"{a} (-> {o})" for a, o in supported.items()) or "none"
                raise _err(spec.location, f"{where}.as", f"{ref.relationship!r} is not a relationship "
                           f"{destination.kind} {spec.object} can have (supported: {offered})")
            if supported[ref.relationship] != parent.object:
                raise _err(spec.location, f"{where}.sync", f"{ref.relationship!r} points at "
                           f"{supported[ref.relationship]}, but sync {parent.name!r} writes {parent.object}")
            if len(parent.primary_key) != 1:
                raise _err(spec.location, f"{where}.sync", f"sync {parent.name!r} has a composite primary "
                           "key; a reference column can only hold a single-column key")
            dependencies.append(Dependency(spec.name, parent.name, f"references[{i}] {ref.relationship}"))
        for i, name in enumerate(spec.after):
            parent = parent_of(spec, name, f"after[{i}]")
            dependencies.append(Dependency(spec.name, parent.name, "after"))
    try:  # a cycle is an error whatever is selected
        run_order([s.name for s in specs], dependencies)
    except CycleError as exc:
        raise ConfigError(str(exc), location=by_name[exc.cycle[0]].location) from exc
    return dependencies


def model_defaults(model: ModelNode) -> dict[str, Any]:
    """The model's `activate_defaults` (from dbt_project.yml `+meta` or its own meta), validated."""
    raw = model.activate_defaults
    if raw is None:
        return {}
    location = f"{model.name}.config.meta.{DEFAULTS_KEY} (dbt_project.yml or {model.yaml_file})"
    if not isinstance(raw, dict):
        raise ConfigError(f"must be a mapping of activate keys, got {raw!r}", location=location)
    for key in sorted(raw, key=str):
        if key in _NOT_DEFAULTABLE:
            raise _err(location, str(key), "is set per sync, not as a default")
        if key not in _KNOWN_KEYS:
            raise _err(location, str(key), f"unknown key (known: {', '.join(k.name for k in ACTIVATE_KEYS)})"
                                           f"{did_you_mean(key, _KNOWN_KEYS)}")
    return dict(raw)


def parse_model(model: ModelNode) -> list[SyncSpec]:
    raw = model.activate
    if raw is None:
        return []
    if isinstance(raw, dict):  # a single block is accepted as a one-item list
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError(f"must be a list of sync blocks, got {type(raw).__name__}",
                          location=f"{model.yaml_file}: {model.name}.{model.activate_key_path}")
    defaults = model_defaults(model)
    # A sync's own keys win over the defaults; the merged block is what is validated and hashed, so
    # changing a default re-runs the syncs it reaches.
    return [parse_block(model, i, {**defaults, **block} if isinstance(block, dict) else block)
            for i, block in enumerate(raw)]


def parse_manifest_syncs(manifest: Manifest) -> list[SyncSpec]:
    """Every sync declared in the project, validated; sync names must be unique."""
    specs: list[SyncSpec] = []
    seen: dict[str, str] = {}
    for model in sorted(manifest.models.values(), key=lambda m: m.unique_id):
        for spec in parse_model(model):
            if spec.name in seen:
                raise ConfigError(f"sync name {spec.name!r} is already used at {seen[spec.name]}; "
                                  "set a distinct `name`", location=spec.location)
            seen[spec.name] = spec.location
            specs.append(spec)
    return specs


@dataclass(frozen=True)
class ResolvedSync:
    """A sync with its columns resolved against the relation in the warehouse."""

    spec: SyncSpec
    fields: tuple[FieldSpec, ...]  # what is sent (identity fields included)
    identity: tuple[str, ...]  # destination fields that find the record
    key_columns: tuple[str, ...]  # actual warehouse column names of the primary key
    column_types: tuple[tuple[str, str], ...] = ()  # every column of the relation with its type

    @property
    def fields_signature(self) -> str:
        """Changes when the mapping does (a renamed field): then every row must be sent again."""
        text = "|".join(f"{f.column}>{f.field}" for f in self.fields) + "#" + ",".join(self.identity)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolve_columns(spec: SyncSpec, columns: Mapping[str, str],
                    field_name: Callable[[str], str] = str) -> ResolvedSync:
    """Match the spec's column names against the relation's (name -> data type), case-insensitively.

    ``field_name`` gives the destination field of a column mapped by name (``fields: auto``, and the
    identity of an unmapped key): on Snowflake the warehouse reports ``EMAIL`` for a column the
    model calls ``email`` (warehouse/snowflake.py)."""
    by_lower = {c.lower(): c for c in columns}

    def actual(column: str, key: str) -> str:
        found = by_lower.get(column.lower())
        if found is None:
            raise _err(spec.location, key, f"column {column!r} is not in {spec.relation} "
                       f"(columns: {', '.join(columns)}){did_you_mean(column, columns)}")
        return found

    key_columns = tuple(actual(c, "primary_key") for c in spec.primary_key)
    # A reference column is sent under its relationship (`as`); the engine swaps the parent's primary
    # key for the parent's record id just before sending (links.py), and the fingerprint keeps the key,
    # so a row whose parent changes is sent again.
    linked = {actual(r.column, f"references[{i}].column"): r.relationship for i, r in enumerate(spec.references)}
    finding = set(key_columns) if not spec.match else {actual(c, f"match.{c}") for c, _ in spec.match}
    for i, column in enumerate(linked):
        if column in finding:
            raise _err(spec.location, f"references[{i}].column", f"column {column!r} finds the record (primary "
                       "key or match); a reference column holds another record's key: use a column of its own")
    pairs: list[tuple[str, str]]
    if spec.fields is None:
        pairs = [(c, linked.get(c, field_name(c))) for c in columns]
    else:
        pairs = [(actual(c, f"fields.{c}"), f) for c, f in spec.fields]
        for column, target in pairs:
            if column in linked and target != linked[column]:
                raise _err(spec.location, f"fields.{column}", f"column {column!r} is a reference, sent as "
                           f"{linked[column]!r}; remove it from fields")
        pairs.extend((c, r) for c, r in linked.items() if c not in dict(pairs))
    for column, target in pairs:
        if target in linked.values() and column not in linked:
            raise _err(spec.location, "references", f"column {column!r} is also sent as {target!r}, the "
                       "relationship a reference sets: rename it or leave it out of fields")
    mapped = {c: f for c, f in pairs}
    if spec.match:
        identity_pairs = [(actual(c, f"match.{c}"), f) for c, f in spec.match]
    else:
        identity_pairs = [(c, mapped.get(c, field_name(c))) for c in key_columns]
    for column, target in identity_pairs:
        if column not in mapped:
            pairs.append((column, target))
            mapped[column] = target
        elif mapped[column] != target:
            raise _err(spec.location, "match", f"column {column!r} is mapped to {mapped[column]!r} in "
                       f"fields and to {target!r} in match")
    fields = tuple(FieldSpec(column=c, field=f, data_type=columns[c]) for c, f in pairs)
    return ResolvedSync(spec=spec, fields=fields, identity=tuple(f for _, f in identity_pairs),
                        key_columns=key_columns, column_types=tuple(columns.items()))


def check_where(spec: SyncSpec, conn: WarehouseConnection) -> None:
    """Compile the sync's ``where`` against its relation (``select * … where … limit 0``, no rows read).

    A segment the warehouse refuses is a configuration error of this sync, at ``<block>.where``, with
    the warehouse's own message. When the relation itself cannot be read (not built, connection
    lost) the warehouse error is raised as it is: the segment is not what is wrong.
    """
    if not spec.where:
        return
    try:
        conn.query(f"select * from {spec.relation} where ({spec.where}) limit 0")
        return
    except WarehouseError as exc:
        conn.rollback()  # PostgreSQL aborts the transaction a failed statement ran in
        refused = exc
    try:
        conn.query(f"select * from {spec.relation} limit 0")
    except WarehouseError:
        conn.rollback()
        raise refused from None
    message = str(refused).split(": ", 1)[-1]  # "a query failed on duckdb: Binder Error: …"
    raise _err(spec.location, "where", f"{spec.where!r} does not compile on {spec.relation} (model "
               f"{spec.model_name}): {message}") from refused


def documented_keys() -> Iterable[str]:
    return (k.name for k in ACTIVATE_KEYS)
