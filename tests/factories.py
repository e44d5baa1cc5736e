"""Shared fixtures: synthetic dbt artifacts for the pure tests, and one sync for the engine's (tests/engine)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt_activate.core.types import Mode, SyncTarget
from dbt_activate.destinations.base import Destination
from dbt_activate.diff import row_layout
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync, SyncSpec, resolve_columns
from dbt_activate.state.journal import Journal
from dbt_activate.sync import Source, Sync


def model_node(name: str, activate: Any = None, *, tags: tuple[str, ...] = (), path: str | None = None,
               legacy_meta: bool = False, columns: dict[str, str] | None = None) -> dict[str, Any]:
    meta = {"activate": activate} if activate is not None else {}
    return {
        "resource_type": "model",
        "name": name,
        "package_name": "shop",
        "relation_name": f'"db"."main"."{name}"',
        "database": "db",
        "schema": "main",
        "alias": name,
        "original_file_path": path or f"models/{name}.sql",
        "patch_path": "shop://models/schema.yml",
        "tags": list(tags),
        "fqn": ["shop", name],
        "columns": {c: {"name": c, "data_type": t} for c, t in (columns or {}).items()},
        "config": {"meta": {} if legacy_meta else meta},
        "meta": meta if legacy_meta else {},
        "depends_on": {"nodes": []},
    }


def dbt_test_node(name: str, model: str) -> dict[str, Any]:
    return {"resource_type": "test", "name": name, "attached_node": f"model.shop.{model}",
            "depends_on": {"nodes": [f"model.shop.{model}"]}}


def manifest(*nodes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/manifest/v12.json",
                     "dbt_version": "1.11.0", "invocation_id": "inv-1", "project_name": "shop"},
        "nodes": dict(nodes),
    }


def run_results(command: str, statuses: dict[str, str], messages: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
                     "invocation_id": "inv-1", "generated_at": "2026-11-22T00:00:00Z"},
        "args": {"which": command},
        "results": [{"unique_id": uid, "status": st, "message": (messages or {}).get(uid)}
                    for uid, st in statuses.items()],
    }


# --- the engine's seams (tests/engine/): one sync, built as the runner builds it ----------------------------


def resolved_sync(name: str = "people_sync", *, mode: str = "upsert", columns: dict[str, str] | None = None,
                  primary_key: tuple[str, ...] = ("id",), match: tuple[tuple[str, str], ...] = (),
                  on_delete: str | None = None, relation: str = "main.people", where: str | None = None,
                  destination: str = "hook", object: str = "people", config_hash: str = "h1") -> ResolvedSync:
    """A ``ResolvedSync`` of ``relation`` (column -> type), as ``Invocation.resolve`` returns it;
    ``on_delete`` defaults as in an activate block (delete for mirror, else ignore)."""
    spec = SyncSpec(name=name, model_id="model.shop.people", model_name="people", relation=relation,
                    destination=destination, object=object, mode=Mode(mode), primary_key=primary_key,
                    match=match, fields=None, where=where,
                    on_delete=on_delete or ("delete" if mode == "mirror" else "ignore"),
                    location=f"models/schema.yml: people.config.meta.activate[{name}]", config_hash=config_hash)
    return resolve_columns(spec, columns or {"id": "INTEGER", "email": "VARCHAR", "name": "VARCHAR"})


def engine_sync(resolved: ResolvedSync, destination: Destination, source: Source | None, state: Any,
                journal_dir: Path, **overrides: Any) -> Sync:
    """A ``Sync`` of ``resolved`` as ``runner._Run.sync_of`` builds it, around the given seams (a test of
    the stream alone needs no source, and a state store with only what the stream calls)."""
    spec = resolved.spec
    target = SyncTarget(sync_name=spec.name, object=spec.object, mode=spec.mode, fields=resolved.fields,
                        identity=resolved.identity, run_id=overrides.get("run_id", "run-1"),
                        options={"on_delete": spec.on_delete}, nulls=spec.nulls)
    values: dict[str, Any] = {
        "resolved": resolved, "decision": Decision(spec, True, "test"), "target": target,
        "destination": destination, "layout": row_layout(resolved, destination, target), "source": source,
        "state": state, "journal": Journal(journal_dir, spec.name), "run_id": "run-1", **overrides}
    return Sync(**values)
