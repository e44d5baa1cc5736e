"""`dbt-activate validate`: every `activate` block checked against the manifest, with no network.

Unlike `run`, which stops at the first configuration error, validate collects *every* problem so a
CI job (``dbt parse && dbt-activate validate``) shows them all at once. Each problem names the YAML
file and key path. Checks, per sync: the block parses (keys, primary key declared, modes);
the destination is defined in destinations.yml and its config is valid (env_var() secrets
resolvable); the mode is supported by the destination type; the columns named in primary_key,
fields and match exist; and the destination type's own target checks (``Destination.check_target``:
required fields mapped, object names, identities).

Columns are judged by a source known to be complete: with ``--warehouse`` the relation's columns
read through the dbt adapter, else a model's enforced contract (dbt builds it with exactly those
columns), else target/catalog.json (``dbt docs generate``). A column missing there is an error.
Documented columns alone are often incomplete (a project documents some columns, not all), so a
column missing only from them is a warning naming the model and the column, not an error.
``--warehouse`` also compiles every ``where`` (``select * … where … limit 0``): one the warehouse
refuses is an error at its key, with the warehouse's message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_activate import planner
from dbt_activate.core.types import SyncTarget
from dbt_activate.core.wording import did_you_mean
from dbt_activate.dbt import artifacts
from dbt_activate.dbt.artifacts import Manifest, ModelNode
from dbt_activate.destinations.base import Destination
from dbt_activate.errors import ConfigError
from dbt_activate.project import DestinationsFile, ProjectPaths, read_yaml
from dbt_activate.spec import (
    SyncSpec,
    check_links,
    check_nulls,
    check_where,
    model_defaults,
    parse_block,
    resolve_columns,
)
from dbt_activate.warehouse.adapter import DbtAdapter
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.registry import dialect_for

CATALOG_FILE = "catalog.json"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    syncs: int = 0

    @property
    def exit_code(self) -> int:
        return 2 if self.problems else 0

    def document(self) -> dict[str, Any]:
        return {"valid": not self.problems, "syncs": self.syncs, "problems": self.problems,
                "warnings": self.warnings}


def load_catalog_columns(target_dir: Path, warnings: list[str] | None = None) -> dict[str, dict[str, str]] | None:
    """unique_id -> {column: type} from catalog.json, or None when there is no (readable) catalog.

    A catalog that cannot be used is said in ``warnings``: columns are then checked without it."""
    path = target_dir / CATALOG_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        _warn(warnings, f"{path}: not readable JSON ({exc}); ignored (run `dbt docs generate` again)")
        return None
    nodes = data.get("nodes") if isinstance(data, dict) else None
    if not isinstance(nodes, dict):
        _warn(warnings, f"{path}: not a dbt catalog (no `nodes` object); ignored (run `dbt docs generate` again)")
        return None
    catalog: dict[str, dict[str, str]] = {}
    for uid, node in nodes.items():
        columns = node.get("columns") if isinstance(node, dict) else None
        catalog[str(uid)] = {str(name): str((col.get("type") if isinstance(col, dict) else "") or "")
                             for name, col in (columns.items() if isinstance(columns, dict) else ())}
    return catalog


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is not None:
        warnings.append(message)


def _destinations(path: Path, report: Report, used: set[str] | None = None) -> dict[str, Destination | None]:
    """Every destination that builds, by name; None for one that is defined but broken (reported), or
    not among ``used`` (the destinations of the selected syncs; None: all are checked)."""
    if not path.exists():
        report.problems.append(f"{path}: not found: declare your destinations there")
        return {}
    try:
        raw = read_yaml(path) or {}
    except ConfigError as exc:
        report.problems.append(str(exc))
        return {}
    if not isinstance(raw, dict):
        report.problems.append(f"{path}: must be a mapping of destination name to its config")
        return {}
    entries: dict[str, Mapping[str, Any]] = {}
    found: dict[str, Destination | None] = {}
    for name, entry in raw.items():
        if name == "alerts":
            continue
        if not isinstance(entry, dict):
            report.problems.append(f"{path}: {name}: must be a mapping with at least `type`")
            found[str(name)] = None
            continue
        entries[str(name)] = entry
    file = DestinationsFile(path=path, raw=entries, on_warning=report.warnings.append)
    # One entry at a time, so every unresolvable env_var() and bad key is reported, not only the first.
    for name in entries:
        if used is not None and name not in used:
            found[name] = None
            continue
        try:
            found[name] = file.build(name)
        except ConfigError as exc:
            report.problems.append(str(exc))
            found[name] = None
    return found


def _specs(manifest: Manifest, report: Report) -> list[SyncSpec]:
    specs: list[SyncSpec] = []
    seen: dict[str, str] = {}
    for model in sorted(manifest.models.values(), key=lambda m: m.unique_id):
        raw = model.activate
        if raw is None:
            continue
        blocks = [raw] if isinstance(raw, dict) else raw
        if not isinstance(blocks, list):
            report.problems.append(f"{model.yaml_file}: {model.name}.{model.activate_key_path}: must be a list "
                                   f"of sync blocks, got {type(raw).__name__}")
            continue
        try:
            defaults = model_defaults(model)  # `+meta: {activate_defaults: ...}`, merged as `run` does
        except ConfigError as exc:
            report.problems.append(str(exc))
            defaults = {}
        for index, block in enumerate(blocks):
            report.syncs += 1
            try:
                spec = parse_block(model, index, {**defaults, **block} if isinstance(block, dict) else block)
            except ConfigError as exc:
                report.problems.append(str(exc))
                continue
            if spec.name in seen:
                report.problems.append(f"{spec.location}: sync name {spec.name!r} is already used at "
                                       f"{seen[spec.name]}; set a distinct `name`")
                continue
            seen[spec.name] = spec.location
            specs.append(spec)
    return specs


def _referenced_columns(spec: SyncSpec) -> list[tuple[str, str]]:
    """(column, key path) of every column the block names."""
    refs = [(c, "primary_key") for c in spec.primary_key]
    refs += [(c, f"fields.{c}") for c, _ in spec.fields or ()]
    refs += [(c, f"match.{c}") for c, _ in spec.match]
    refs += [(r.column, f"references[{i}].column") for i, r in enumerate(spec.references)]
    return refs


class Warehouse:
    """``validate --warehouse``: the relations' columns and the segments, through the user's dbt adapter.

    One connection, read-only statements (``information_schema``, ``… limit 0``)."""

    def __init__(self, paths: ProjectPaths, *, profile: str | None = None, target: str | None = None,
                 cli_vars: Mapping[str, Any] | None = None) -> None:
        adapter = DbtAdapter(paths.project_dir, paths.profiles_dir, profile=profile, target=target,
                             cli_vars=cli_vars)
        self.dialect = dialect_for(adapter.target.adapter_type)
        self.conn = WarehouseConnection(adapter.open("activate_validate"), self.dialect)

    def columns(self, model: ModelNode) -> dict[str, str]:
        """The relation's columns and types; empty when the relation does not exist."""
        rows = self.conn.columns(model.schema, model.alias, model.database)
        return {str(r[0]): str(r[1]) for r in rows}

    def check_where(self, spec: SyncSpec) -> None:
        check_where(spec, self.conn)

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class KnownColumns:
    columns: dict[str, str]
    source: str  # "catalog.json", "enforced contract", "relation … in the warehouse", "documented columns"
    complete: bool  # a column missing from a complete source does not exist


def _known_columns(model: ModelNode, catalog: Mapping[str, Mapping[str, str]] | None,
                   warehouse: Mapping[str, str] | None) -> KnownColumns | None:
    if warehouse:
        return KnownColumns(dict(warehouse), f"relation {model.relation_name} in the warehouse", True)
    if model.contract_enforced and model.columns:
        return KnownColumns(dict(model.columns), "enforced contract", True)
    if catalog is not None and model.unique_id in catalog:
        return KnownColumns(dict(catalog[model.unique_id]), "catalog.json", True)
    if model.columns:
        return KnownColumns(dict(model.columns), "documented columns", False)
    return None


def _check_sync(spec: SyncSpec, model: ModelNode, destination: Destination | None,
                known: KnownColumns | None, report: Report) -> None:
    if destination is not None and spec.mode not in destination.modes:
        supported = ", ".join(sorted(m.value for m in destination.modes))
        report.problems.append(f"{spec.location}.mode: destination type {destination.kind!r} does not support "
                               f"mode {spec.mode.value!r} (supported: {supported})")
    if destination is not None:
        try:
            check_nulls(spec, destination)
        except ConfigError as exc:
            report.problems.append(str(exc))
    if known is None:
        report.warnings.append(f"{spec.location}: columns not checked: model {model.name} declares no columns "
                               "and target/catalog.json does not list it (run `dbt docs generate`, or "
                               "`dbt-activate validate --warehouse`)")
        if spec.fields is None:
            return  # fields: auto with unknown columns: nothing more to check without the warehouse
        known = KnownColumns({c: "" for c, _ in _referenced_columns(spec)}, "", False)
    columns = dict(known.columns)
    by_lower = {c.lower() for c in columns}
    missing = False
    for column, key in _referenced_columns(spec):
        if column.lower() in by_lower:
            continue
        if known.complete:
            missing = True
            report.problems.append(f"{spec.location}.{key}: column {column!r} is not in model {model.name}'s "
                                   f"{known.source} ({', '.join(columns) or 'none'}){did_you_mean(column, columns)}")
            continue
        # Documentation is often incomplete: the column may well exist. Say so, and check the rest with it.
        report.warnings.append(f"{spec.location}.{key}: column {column!r} of model {model.name} is not "
                               "documented, so it was not checked (no catalog.json lists the model and it has "
                               "no enforced contract; run `dbt docs generate` or `dbt-activate validate "
                               "--warehouse` to check it)")
        columns[column] = ""
        by_lower.add(column.lower())
    if missing or destination is None:
        return
    try:
        resolved = resolve_columns(spec, columns)
        destination.check_target(SyncTarget(sync_name=spec.name, object=spec.object, mode=spec.mode,
                                            fields=resolved.fields, identity=resolved.identity,
                                            options={"on_delete": spec.on_delete}, nulls=spec.nulls))
    except ConfigError as exc:
        # Destination types name the sync ("sync x"), not the YAML: lead with the block's path.
        text = str(exc)
        report.problems.append(text if text.startswith(spec.location) else f"{spec.location}: {text}")


def validate(paths: ProjectPaths, warehouse: Warehouse | None = None, select: Sequence[str] = (),
             exclude: Sequence[str] = ()) -> Report:
    """Check every sync of the project, or those ``select``/``exclude`` pick (and then only the
    destinations they use); artifacts that cannot be read raise ``ArtifactsError``.

    With ``warehouse``, columns come from the relations and every ``where`` is compiled."""
    manifest = artifacts.load_manifest(paths.target_path, made_by="dbt parse")
    report = Report()
    catalog = load_catalog_columns(paths.target_path, report.warnings)
    specs = _specs(manifest, report)
    used = None
    if select or exclude:
        specs = planner.select(specs, select, exclude, manifest=manifest)
        report.syncs = len(specs)
        used = {s.destination for s in specs}
    destinations = _destinations(paths.destinations_file, report, used)
    relations: dict[str, dict[str, str]] = {}  # model unique_id -> its relation's columns
    for spec in specs:
        model = manifest.models[spec.model_id]
        if warehouse is not None and model.unique_id not in relations:
            relations[model.unique_id] = warehouse.columns(model)
            if not relations[model.unique_id]:
                report.warnings.append(f"{spec.location}: relation {model.relation_name} of model {model.name} "
                                       "does not exist in the warehouse (run `dbt build`): its columns and "
                                       "`where` were not checked there")
        if warehouse is not None and relations[model.unique_id]:
            try:
                warehouse.check_where(spec)
            except ConfigError as exc:
                report.problems.append(str(exc))
        if spec.destination not in destinations:
            defined = ", ".join(sorted(destinations)) or "none defined"
            report.problems.append(f"{spec.location}.destination: destination {spec.destination!r} is not "
                                   f"defined in {paths.destinations_file} (defined: {defined})"
                                   f"{did_you_mean(spec.destination, destinations)}")
            destination = None
        else:
            destination = destinations[spec.destination]
        _check_sync(spec, model, destination, _known_columns(model, catalog, relations.get(model.unique_id)), report)
    built = {name: d for name, d in destinations.items() if d is not None}
    if all(s.destination in built for s in specs):
        try:  # references and after, across syncs: unknown syncs, relationships, cycles
            check_links(specs, lambda s: type(built[s.destination]))
        except ConfigError as exc:
            report.problems.append(str(exc))
    return report
