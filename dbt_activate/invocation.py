"""One invocation of `run`, `plan` or `ls`, loaded once and checked before anything is sent: the run
options, dbt's artifacts, the activate blocks, destinations.yml (only the destinations the selected
syncs use are rendered), the adapter and its dialect, the state schema's name, the sync order.
No sync is run here (``runner.py``) and no SQL of a sync is built here (``diff.py``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dbt_activate import alerts
from dbt_activate.core.order import run_order
from dbt_activate.core.outcomes import InvocationResult, Reporter, SilentReporter, results_document
from dbt_activate.core.types import SyncTarget
from dbt_activate.dbt import artifacts, selectors
from dbt_activate.errors import ArtifactsError, ConfigError, Redactor
from dbt_activate.planner import Decision, Plan, make_plan, select, unknown_selector_methods, unmatched_selectors
from dbt_activate.project import DestinationsFile, load_destinations, resolve_paths
from dbt_activate.spec import (
    ResolvedSync,
    SyncSpec,
    check_links,
    check_mode,
    check_nulls,
    parse_manifest_syncs,
    resolve_columns,
)
from dbt_activate.state.record_ids import WarehouseIdStore
from dbt_activate.sync import Tunables
from dbt_activate.warehouse.adapter import DbtAdapter
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Dialect
from dbt_activate.warehouse.registry import dialect_for


@dataclass(frozen=True)
class RunOptions:
    project_dir: str | None = None
    profiles_dir: str | None = None
    profile: str | None = None
    target: str | None = None
    target_path: str | None = None
    vars: Mapping[str, Any] = field(default_factory=dict)
    destinations_dir: str | None = None
    select: Sequence[str] = ()
    exclude: Sequence[str] = ()
    run_all: bool = False
    full_resync: bool = False
    fail_fast: bool = False
    state_schema: str | None = None
    dbt_cloud_run_id: int | None = None  # artifacts from this dbt Cloud run (dbt_cloud.py)
    dbt_cloud_job_id: int | None = None  # ... or from the latest finished run of this job
    state: str | None = None  # --state DIR: the manifest that `state:modified` compares with
    samples: int = 0  # plan: sample payloads per sync and operation
    lock_timeout: float = 60.0  # run: seconds to wait for another run of the same sync (locks.py)
    from_warehouse: bool = False  # run results from the on-run-end hook's table (invocations.py)
    warn_error: bool = False  # --warn-error: a --select term that matches no sync is an error, as in dbt
    tunables: Tunables = field(default_factory=Tunables.from_environment)  # read once, when the options are made


class Invocation:
    """Everything one `run` or `plan` needs, loaded and validated up front."""

    def __init__(self, options: RunOptions, *, command: str, reporter: Reporter | None = None) -> None:
        self.options = options
        self.command = command
        self.reporter = reporter or SilentReporter()
        self.run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self.paths = resolve_paths(options.project_dir, options.profiles_dir, options.target_path,
                                   options.destinations_dir)
        bad = unknown_selector_methods([*options.select, *options.exclude])
        if bad:
            raise ConfigError(f"unknown selector {bad[0]!r}: use a model or sync name, tag:, path:, "
                              "destination:, sync:, model: or state:modified (with --state), and +/+ graph "
                              "operators")
        artifacts_dir = self._artifacts_dir(options)
        self.manifest = artifacts.load_manifest(artifacts_dir)
        self.results: artifacts.RunResults | None = None  # --from-warehouse: read in run()
        try:
            if not options.from_warehouse:
                self.results = artifacts.load_run_results(artifacts_dir)
        except ArtifactsError:
            if not (options.run_all or options.full_resync):
                raise
        # --state DIR: which models changed since that manifest (for `state:modified`).
        self.modified = selectors.read_modified(artifacts_dir, Path(options.state)) if options.state else None
        self.specs = parse_manifest_syncs(self.manifest)
        self._check_selection(options)
        self.destinations: DestinationsFile = load_destinations(self.paths.destinations_file,
                                                                on_warning=self.reporter.warning)
        self.redactor = Redactor()
        # Only the destinations the selected syncs write to are rendered and checked: a run of the file
        # syncs needs no CRM token, and `ls` (which sends nothing) none at all.
        self.alert_rules: list[alerts.AlertRule] = []
        if command != "ls":
            self._check_destinations(select(self.specs, options.select, options.exclude, manifest=self.manifest,
                                            state=self.modified))
            self.alert_rules = alerts.parse_rules(self.destinations)
            for rule in self.alert_rules:
                self.redactor.add(self.destinations.build(rule.destination).secrets())
        # references and after: checked against every sync (a cycle is an error even when unselected), from
        # the destination types only, so no destination is rendered for it.
        self.dependencies = check_links(self.specs, lambda s: self.destinations.destination_type(s.destination))
        self.redactor.add(self.destinations.secrets)
        self.adapter = DbtAdapter(self.paths.project_dir, self.paths.profiles_dir, profile=options.profile,
                                  target=options.target, cli_vars=options.vars)
        self.redactor.add(self.adapter.target.secrets)
        self.target_notice = self._check_target()
        self.dialect: Dialect = dialect_for(self.adapter.target.adapter_type)
        self._id_connection: WarehouseConnection | None = None
        self.state_schema = (options.state_schema or os.environ.get("DBT_ACTIVATE_STATE_SCHEMA")
                             or f"{self.adapter.target.schema}_activate")

    def _artifacts_dir(self, options: RunOptions) -> Path:
        """target/, or the build step's artifacts of a dbt Cloud run, fetched into target/dbt_cloud/."""
        if options.dbt_cloud_run_id is None and options.dbt_cloud_job_id is None:
            return self.paths.target_path
        from dbt_activate.dbt import dbt_cloud
        return dbt_cloud.fetch(self.paths.target_path / "dbt_cloud", run_id=options.dbt_cloud_run_id,
                               job_id=options.dbt_cloud_job_id).directory

    def _check_target(self) -> str | None:
        """Artifacts written for another target than the one in use: an error across adapters (before any
        connection, so nothing is created), a notice for another target of the same adapter (it may be meant)."""
        using = self.adapter.target
        built = self.manifest.adapter_type
        dbt_target = self.results.target if self.results is not None else ""
        hint = f"-t {dbt_target}" if dbt_target else "the -t/--target dbt used"
        if built and built != using.adapter_type:
            named = f" ({dbt_target!r})" if dbt_target else ""
            raise ConfigError(f"target/manifest.json was written for a {built} target{named}, but dbt-activate is "
                              f"using target {using.name!r} ({using.adapter_type}) of the profile: pass {hint}, "
                              "as to dbt")
        if dbt_target and using.name and dbt_target != using.name:
            return (f"dbt built with target {dbt_target!r} (run_results.json) and dbt-activate is using target "
                    f"{using.name!r}: pass -t {dbt_target} unless that is meant.")
        return None

    def _check_selection(self, options: RunOptions) -> None:
        """Warn of each --select term that matches no sync, as dbt does; an error with --warn-error."""
        for term in unmatched_selectors(self.specs, options.select, manifest=self.manifest, state=self.modified):
            message = f"the selection criterion {term!r} does not match any sync"
            if options.warn_error:
                raise ConfigError(f"{message} (--warn-error)")
            self.reporter.warning(f"{message} (--warn-error or DBT_WARN_ERROR=true make this an error)")

    def _check_destinations(self, specs: Sequence[SyncSpec]) -> None:
        for spec in specs:
            destination = self.destinations.build(spec.destination, used_at=f"{spec.location}.destination")
            self.redactor.add(destination.secrets())
            check_mode(spec, destination)
            check_nulls(spec, destination)

    def in_order(self, decisions: Sequence[Decision]) -> list[Decision]:
        """Parents before the syncs that reference or run after them (core/order.py)."""
        by_name = {d.spec.name: d for d in decisions}
        return [by_name[n] for n in run_order(list(by_name), self.dependencies)]

    def connect(self, name: str) -> WarehouseConnection:
        return WarehouseConnection(self.adapter.open(name), self.dialect, self.redactor)

    def id_store(self, destination: str) -> WarehouseIdStore:
        """The record-id map of one destination account, on a connection of its own (opened once)."""
        if self._id_connection is None:
            self._id_connection = self.connect("activate_ids")
        store = WarehouseIdStore(self._id_connection, self.state_schema, destination)
        store.ensure()
        return store

    def close(self) -> None:
        if self._id_connection is not None:
            self._id_connection.close()

    def plan(self, saved: Mapping[str, Any]) -> Plan:
        return make_plan(self.specs, self.manifest, self.results,
                         {k: v.saved for k, v in saved.items()},
                         select_terms=self.options.select, exclude_terms=self.options.exclude,
                         run_all=self.options.run_all, full_resync=self.options.full_resync,
                         state=self.modified)

    def resolve(self, conn: WarehouseConnection, spec: SyncSpec) -> ResolvedSync:
        node = self.manifest.models[spec.model_id]
        rows = conn.columns(node.schema, node.alias, node.database)
        if not rows:
            also = f" ({self.target_notice})" if self.target_notice else ""
            raise ConfigError(f"relation {spec.relation} does not exist in the warehouse: run `dbt build` "
                              f"for model {spec.model_name} first{also}", location=spec.location)
        resolved = resolve_columns(spec, {str(r[0]): str(r[1]) for r in rows}, self.dialect.field_name)
        destination = self.destinations.build(spec.destination)
        destination.check_target(self.target_of(resolved))
        return resolved

    def target_of(self, resolved: ResolvedSync) -> SyncTarget:
        spec = resolved.spec
        return SyncTarget(sync_name=spec.name, object=spec.object, mode=spec.mode, fields=resolved.fields,
                          identity=resolved.identity, run_id=self.run_id, options={"on_delete": spec.on_delete},
                          nulls=spec.nulls, references=tuple(r.relationship for r in spec.references))

    def write_results(self, result: InvocationResult) -> Path:
        path = self.paths.target_path / "activate_results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        document = results_document(result)
        path.write_text(self.redactor(json.dumps(document, indent=2, default=str)), encoding="utf-8")
        return path
