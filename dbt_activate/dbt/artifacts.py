"""dbt's artifacts (manifest.json v10-v12, run_results.json v5-v6) read as plain typed values.

Only the keys dbt-activate needs are read and unknown keys are ignored, because every dbt release
adds fields. The artifacts are JSON written by dbt, so they are read with the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_activate.errors import ArtifactsError

# dbt commands whose run_results say which models were (re)built.
BUILD_COMMANDS = frozenset({"build", "run"})
REBUILT_STATUS = "success"
FAILED_TEST_STATUSES = frozenset({"fail", "error"})
# The meta key a project or folder sets in dbt_project.yml (`+meta: {activate_defaults: {...}}`): dbt
# merges meta shallowly, so a model's own `activate` would replace a folder-level one; defaults live
# under their own key and the CLI merges them into each sync.
DEFAULTS_KEY = "activate_defaults"


@dataclass(frozen=True)
class ModelNode:
    unique_id: str
    name: str
    package_name: str
    relation_name: str
    database: str | None
    schema: str
    alias: str
    original_file_path: str
    patch_path: str | None  # "project://models/schema.yml" when the model has a YAML entry
    tags: tuple[str, ...]
    fqn: tuple[str, ...]
    columns: Mapping[str, str]  # declared column name -> declared data_type ("" when not declared)
    activate: Any  # the raw `activate` value, or None
    activate_key_path: str  # "config.meta.activate" or "meta.activate"
    depends_on: tuple[str, ...] = ()
    activate_defaults: Any = None  # the raw `activate_defaults` value, or None
    # `contract: {enforced: true}`: dbt refuses to build the model unless its columns are exactly the
    # declared ones, so the declared columns are the relation's (unlike mere documentation).
    contract_enforced: bool = False

    @property
    def yaml_file(self) -> str:
        """The file a user edits to change this model's `activate` block."""
        if self.patch_path:
            return self.patch_path.split("://", 1)[-1]
        return self.original_file_path


@dataclass(frozen=True)
class TestNode:
    unique_id: str
    name: str
    attached_node: str | None
    depends_on: tuple[str, ...]
    column_name: str | None = None  # the column a column-level test is declared on
    relation_name: str | None = None  # its store_failures table, when it stores failures
    test_name: str | None = None  # a generic test's macro: unique, not_null, activate_primary_key…
    test_kwargs: Mapping[str, Any] = field(default_factory=dict)  # its arguments (column_name, columns…)

    @property
    def tested_models(self) -> tuple[str, ...]:
        if self.attached_node:
            return (self.attached_node,)
        return tuple(n for n in self.depends_on if n.startswith("model."))


@dataclass(frozen=True)
class Manifest:
    schema_version: str
    dbt_version: str
    invocation_id: str
    project_name: str
    models: Mapping[str, ModelNode]
    tests: Mapping[str, TestNode]
    adapter_type: str = ""  # the adapter of the target dbt compiled for (metadata.adapter_type)

    def model_by_name(self, name: str) -> ModelNode | None:
        for node in self.models.values():
            if node.name == name and node.package_name == self.project_name:
                return node
        return next((n for n in self.models.values() if n.name == name), None)


@dataclass(frozen=True)
class RunResults:
    schema_version: str
    invocation_id: str
    command: str  # args.which: build, run, test, seed, docs, run-operation, …
    generated_at: str
    statuses: Mapping[str, str] = field(default_factory=dict)  # unique_id -> status
    messages: Mapping[str, str] = field(default_factory=dict)  # unique_id -> message (errors)
    relations: Mapping[str, str] = field(default_factory=dict)  # test unique_id -> its store_failures table
    target: str = ""  # `dbt … -t NAME` (args.target); "" when dbt used the profile's default target

    @property
    def is_build(self) -> bool:
        return self.command in BUILD_COMMANDS


def _read_json(path: Path, what: str, made_by: str = "dbt build") -> dict[str, Any]:
    if not path.exists():
        raise ArtifactsError(
            f"{what} not found at {path}. Run `{made_by}` first (or pass --target-path / --project-dir)."
        )
    try:
        with path.open("rb") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ArtifactsError(f"{path} is not readable JSON ({exc}). Re-run `dbt build`.") from exc
    if not isinstance(data, dict):
        raise ArtifactsError(f"{path} is not a dbt artifact (expected a JSON object)")
    return data


def _schema_version(data: Mapping[str, Any]) -> str:
    url = str(data.get("metadata", {}).get("dbt_schema_version", ""))
    return url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".json")


def _activate_of(node: Mapping[str, Any]) -> tuple[Any, str]:
    """dbt 1.10+ wants custom keys under config.meta; older projects put meta at the top level."""
    config_meta = (node.get("config") or {}).get("meta") or {}
    if "activate" in config_meta:
        return config_meta["activate"], "config.meta.activate"
    meta = node.get("meta") or {}
    if "activate" in meta:
        return meta["activate"], "meta.activate"
    return None, "config.meta.activate"


def _defaults_of(node: Mapping[str, Any]) -> Any:
    config_meta = (node.get("config") or {}).get("meta") or {}
    if DEFAULTS_KEY in config_meta:
        return config_meta[DEFAULTS_KEY]
    return (node.get("meta") or {}).get(DEFAULTS_KEY)


def _contract_enforced(node: Mapping[str, Any]) -> bool:
    """dbt 1.5+ writes the contract under config (and, resolved, at the node's top level)."""
    for contract in ((node.get("config") or {}).get("contract"), node.get("contract")):
        if isinstance(contract, Mapping) and contract.get("enforced") is True:
            return True
    return False


def parse_manifest(data: Mapping[str, Any]) -> Manifest:
    models: dict[str, ModelNode] = {}
    tests: dict[str, TestNode] = {}
    for uid, node in (data.get("nodes") or {}).items():
        resource = node.get("resource_type")
        depends = tuple((node.get("depends_on") or {}).get("nodes") or ())
        if resource == "model":
            activate, key_path = _activate_of(node)
            columns = {
                str(name): str((col or {}).get("data_type") or "")
                for name, col in (node.get("columns") or {}).items()
            }
            models[uid] = ModelNode(
                unique_id=uid,
                name=str(node.get("name")),
                package_name=str(node.get("package_name", "")),
                relation_name=str(node.get("relation_name") or ""),
                database=node.get("database"),
                schema=str(node.get("schema", "")),
                alias=str(node.get("alias") or node.get("name")),
                original_file_path=str(node.get("original_file_path", "")),
                patch_path=node.get("patch_path"),
                tags=tuple(node.get("tags") or ()),
                fqn=tuple(node.get("fqn") or ()),
                columns=columns,
                activate=activate,
                activate_key_path=key_path,
                depends_on=depends,
                activate_defaults=_defaults_of(node),
                contract_enforced=_contract_enforced(node),
            )
        elif resource == "test":
            tests[uid] = TestNode(
                unique_id=uid,
                name=str(node.get("name")),
                attached_node=node.get("attached_node"),
                depends_on=depends,
                column_name=node.get("column_name"),
                relation_name=node.get("relation_name"),
                test_name=(node.get("test_metadata") or {}).get("name"),
                test_kwargs=dict((node.get("test_metadata") or {}).get("kwargs") or {}),
            )
    metadata = data.get("metadata") or {}
    return Manifest(
        schema_version=_schema_version(data),
        dbt_version=str(metadata.get("dbt_version", "")),
        invocation_id=str(metadata.get("invocation_id", "")),
        project_name=str(metadata.get("project_name") or ""),
        models=models,
        tests=tests,
        adapter_type=str(metadata.get("adapter_type") or ""),
    )


def parse_run_results(data: Mapping[str, Any]) -> RunResults:
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    relations: dict[str, str] = {}
    for result in data.get("results") or ():
        uid = result.get("unique_id")
        if not uid:
            continue
        statuses[uid] = str(result.get("status", "")).lower()
        if result.get("message"):
            messages[uid] = str(result["message"])
        if result.get("relation_name") and str(uid).startswith("test."):
            relations[uid] = str(result["relation_name"])
    metadata = data.get("metadata") or {}
    args = data.get("args") or {}
    return RunResults(
        schema_version=_schema_version(data),
        invocation_id=str(metadata.get("invocation_id", "")),
        command=str(args.get("which") or ""),
        generated_at=str(metadata.get("generated_at", "")),
        statuses=statuses,
        messages=messages,
        relations=relations,
        target=str(args.get("target") or ""),
    )


def load_manifest(target_dir: Path, *, made_by: str = "dbt build") -> Manifest:
    """``made_by``: the dbt command the error tells the user to run (`dbt parse` is enough for the
    commands that read only the manifest)."""
    return parse_manifest(_read_json(target_dir / "manifest.json", "manifest.json", made_by))


def load_run_results(target_dir: Path) -> RunResults:
    return parse_run_results(_read_json(target_dir / "run_results.json", "run_results.json"))
