"""Shared fixtures: synthetic dbt artifacts for the pure tests."""

from __future__ import annotations

from typing import Any


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
