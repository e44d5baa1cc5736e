"""Raw DB-API connections through the user's dbt profile and adapter.

The recipe (flags, ``RuntimeConfig``, ``register_adapter``, the adapter's connection manager) is
internal to dbt and changes between releases: it lives in this one module, so a dbt upgrade touches
one file. Everything else sees a ``Profile`` value and DB-API handles.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dbt_activate.errors import ConfigError, WarehouseError
from dbt_activate.warehouse.messages import warehouse_message
from dbt_activate.warehouse.registry import dialect_for

_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProfileTarget:
    """The resolved dbt target: adapter type, database and schema, and the secrets to redact."""

    adapter_type: str
    database: str | None
    schema: str
    secrets: tuple[str, ...]
    name: str = ""  # the profile's target name (`dev`, `prod`)
    # DuckDB's database file: connecting creates it when it is missing, so open() refuses to.
    local_file: str | None = None


class DbtAdapter:
    """Opens as many independent raw connections as the runner needs (reader, writer)."""

    def __init__(
        self,
        project_dir: Path,
        profiles_dir: Path,
        *,
        profile: str | None = None,
        target: str | None = None,
        cli_vars: Mapping[str, Any] | None = None,
    ) -> None:
        declared = profile_adapter_type(project_dir, profiles_dir, profile, target)
        if declared is not None:
            # Refused before dbt loads it: an adapter without a dialect need not even be installed.
            dialect_for(declared)
        target_name, creds, self._manager = self._load(project_dir, profiles_dir, profile, target,
                                                       dict(cli_vars or {}))
        self._credentials = creds
        secrets = [str(getattr(creds, name)) for name in ("password", "token", "private_key", "keyfile")
                   if getattr(creds, name, None)]
        adapter_type = str(creds.type)
        self.target = ProfileTarget(
            adapter_type=adapter_type,
            database=getattr(creds, "database", None),
            schema=str(creds.schema),
            secrets=tuple(secrets),
            name=target_name,
            local_file=_local_file(creds) if adapter_type == "duckdb" else None,
        )

    @staticmethod
    def _load(project_dir: Path, profiles_dir: Path, profile: str | None, target: str | None,
              cli_vars: dict[str, Any]) -> tuple[str, Any, Any]:
        """(target name, credentials, connection manager class) of the profile target."""
        try:
            from dbt.flags import set_from_args
            from dbt_common.context import set_invocation_context
            from dbt_common.events.event_manager_client import cleanup_event_logger
        except ImportError as exc:  # pragma: no cover - dbt-core is a dependency
            raise ConfigError(f"dbt-core is not importable: {exc}") from exc
        args = argparse.Namespace(
            project_dir=str(project_dir), profiles_dir=str(profiles_dir), profile=profile, target=target,
            vars=cli_vars, threads=None, which="run", single_threaded=True,
        )
        with _LOCK:
            # dbt renders env_var() in profiles against the invocation context it sets up itself.
            set_invocation_context(dict(os.environ))
            # dbt's own log lines ("Registered adapter…") would mix into our stdout (JSON output).
            cleanup_event_logger()
            with contextlib.suppress(Exception):
                return _profile_only(project_dir, profiles_dir, profile, target, cli_vars)
            try:
                set_from_args(args, None)
                cleanup_event_logger()
                return _runtime_config(args)
            except ImportError as exc:
                raise ConfigError(f"the dbt adapter for this profile is not installed: {exc}. "
                                  "Install it, e.g. `pip install dbt-activate[duckdb]`.") from exc
            except Exception as exc:  # dbt raises its own tree; map it once, here
                raise ConfigError(f"cannot load the dbt project/profile: {warehouse_message(exc)}") from exc

    def open(self, name: str) -> Any:
        """A new raw DB-API connection (psycopg2 connection, duckdb cursor wrapper, redshift_connector)."""
        if self.target.local_file is not None and not Path(self.target.local_file).exists():
            # Never create a warehouse as a side effect (an empty DuckDB file where dbt built nothing).
            raise ConfigError(f"the DuckDB file {self.target.local_file} of target {self.target.name!r} does not "
                              "exist: run `dbt build` with this target first, or pass the target dbt used (-t)")
        from dbt.adapters.contracts.connection import Connection

        connection = Connection(type=self._credentials.type, name=name, credentials=self._credentials)
        try:
            opened = self._manager.open(connection)
        except Exception as exc:
            raise WarehouseError(f"cannot connect to the {self.target.adapter_type} warehouse: "
                                 f"{warehouse_message(exc)}") from exc
        if opened.handle is None:
            raise WarehouseError(f"cannot connect to the {self.target.adapter_type} warehouse")
        return opened.handle


def _profile_only(project_dir: Path, profiles_dir: Path, profile: str | None, target: str | None,
                  cli_vars: dict[str, Any]) -> tuple[str, Any, Any]:
    """The profile alone, as dbt's ``RuntimeConfig`` loads it, without the rest of the run's configuration.

    ``RuntimeConfig.from_args`` also reads and validates dbt_project.yml against dbt's JSON schema, sets
    dbt's command-line flags (importing dbt's whole CLI) and registers an adapter instance: none of it is
    needed to open a connection with the target's credentials, and it was a quarter of dbt's start-up
    cost (benchmarks/README.md, Start-up). Only the flags the profile reads are set. Whatever fails
    here (a missing profile, a dbt release that reads another flag) is loaded again by the full recipe,
    whose errors are the ones users see.
    """
    from argparse import Namespace

    from dbt.adapters.factory import FACTORY
    from dbt.config.runtime import load_profile
    from dbt.flags import set_flags

    flags = Namespace(PROFILES_DIR=str(profiles_dir), PROJECT_DIR=str(project_dir), LOG_CACHE_EVENTS=False,
                      WHICH="run", USE_COLORS=False, PRINT=True, VERSION_CHECK=False)
    set_flags(flags)  # type: ignore[no-untyped-call]  # dbt's flags module is untyped
    loaded = load_profile(str(project_dir), cli_vars, profile, target, None)
    credentials = loaded.credentials
    manager = FACTORY.get_plugin_by_name(credentials.type).adapter.ConnectionManager
    return str(loaded.target_name or ""), credentials, manager


def _runtime_config(args: argparse.Namespace) -> tuple[str, Any, Any]:
    """dbt's full recipe: ``RuntimeConfig`` and a registered adapter (see ``_profile_only``)."""
    from dbt.adapters.factory import get_adapter, register_adapter
    from dbt.config.runtime import RuntimeConfig
    from dbt.mp_context import get_mp_context

    config = RuntimeConfig.from_args(args)
    register_adapter(config, get_mp_context())
    adapter = get_adapter(config)
    return str(getattr(config, "target_name", "") or ""), config.credentials, type(adapter.connections)


def profile_adapter_type(project_dir: Path, profiles_dir: Path, profile: str | None, target: str | None) -> str | None:
    """The ``type`` of the profile target dbt will load, read from the YAML files as they are; None
    when it cannot be told without dbt (a templated value, a missing file): dbt then decides."""
    try:
        project = yaml.safe_load((project_dir / "dbt_project.yml").read_text(encoding="utf-8")) or {}
        profiles = yaml.safe_load((profiles_dir / "profiles.yml").read_text(encoding="utf-8")) or {}
        entry = profiles[profile or project["profile"]]
        output = entry["outputs"][target or os.environ.get("DBT_TARGET") or entry["target"]]
        kind = output["type"]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None
    return kind if isinstance(kind, str) and "{" not in kind else None


def _local_file(credentials: Any) -> str | None:
    """The path of a DuckDB database on the local disk; None for `:memory:`, MotherDuck and URLs."""
    path = str(getattr(credentials, "path", "") or "")
    if not path or path.startswith(":memory:") or path.startswith(("md:", "motherduck:")) or "://" in path:
        return None
    return path
