"""Where things are (dbt project, profiles, target/, destinations.yml) and destinations.yml itself.

destinations.yml is looked up like profiles.yml (``--destinations-dir``, then the project dir, then
``~/.dbt/``) and every string in it is rendered with dbt's ``env_var('X')`` / ``env_var('X', 'default')``.
Values are rendered one by one after YAML parsing, so an environment value can never inject YAML.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import jinja2.sandbox
import yaml

from dbt_activate.core.wording import did_you_mean
from dbt_activate.destinations.base import (
    Destination,
    check_config,
    deprecated_keys,
    destination_entry_points,
    load_destination_type,
)
from dbt_activate.errors import ConfigError

DESTINATIONS_FILE = "destinations.yml"


@dataclass(frozen=True)
class ProjectPaths:
    project_dir: Path
    profiles_dir: Path
    target_path: Path
    destinations_file: Path


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; unreadable or invalid YAML is a ``ConfigError`` naming the file."""
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"is not valid YAML:{where}: {problem}", location=str(path)) from exc
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}", location=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"is not UTF-8 text (byte {exc.start}): save it as UTF-8", location=str(path)) from exc


def resolve_paths(
    project_dir: str | None = None,
    profiles_dir: str | None = None,
    target_path: str | None = None,
    destinations_dir: str | None = None,
) -> ProjectPaths:
    """Find the project the way dbt does: flags first, then DBT_* env vars, then defaults."""
    project = Path(project_dir or os.environ.get("DBT_PROJECT_DIR") or ".").resolve()
    project_file = project / "dbt_project.yml"
    if not project_file.exists():
        raise ConfigError(f"no dbt_project.yml in {project}: run from your dbt project or pass --project-dir")
    project_yaml = read_yaml(project_file) or {}

    profiles = profiles_dir or os.environ.get("DBT_PROFILES_DIR")
    if profiles is None:
        profiles = str(project) if (project / "profiles.yml").exists() else str(Path.home() / ".dbt")

    target = target_path or os.environ.get("DBT_TARGET_PATH") or project_yaml.get("target-path") or "target"
    target_dir = Path(target)
    if not target_dir.is_absolute():
        target_dir = project / target_dir

    candidates = [Path(d) for d in (destinations_dir,) if d] + [project, Path.home() / ".dbt"]
    destinations_file = next((d / DESTINATIONS_FILE for d in candidates if (d / DESTINATIONS_FILE).exists()),
                             candidates[0] / DESTINATIONS_FILE)
    return ProjectPaths(project, Path(profiles).resolve(), target_dir.resolve(), destinations_file.resolve())


class _MissingEnvVar(Exception):
    def __init__(self, name: str) -> None:
        self.name = name


@dataclass
class Renderer:
    """Renders `{{ env_var(...) }}` in one string; remembers which values came from the environment."""

    secrets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
        self._env.globals["env_var"] = self._env_var

    def _env_var(self, name: str, default: str | None = None) -> str:
        if name in os.environ:
            value = os.environ[name]
            self.secrets.append(value)
            return value
        if default is None:
            raise _MissingEnvVar(name)
        return str(default)

    def render(self, value: Any, location: str) -> Any:
        if isinstance(value, dict):
            return {k: self.render(v, f"{location}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v, f"{location}[{i}]") for i, v in enumerate(value)]
        if not isinstance(value, str) or "{" not in value:
            return value
        try:
            return self._env.from_string(value).render()
        except _MissingEnvVar as exc:
            raise ConfigError(f"environment variable {exc.name!r} is not set (and env_var() has no default)",
                              location=location) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"cannot be rendered: {exc}", location=location) from None


@dataclass(frozen=True)
class DestinationsFile:
    """destinations.yml as written. An entry is rendered (its ``env_var()`` resolved) only when a
    command needs that destination, so a run of the file syncs needs no CRM token, and ``ls`` none."""

    path: Path
    raw: Mapping[str, Mapping[str, Any]]  # name -> config as written (env_var() not rendered)
    alerts: tuple[Mapping[str, Any], ...] = ()
    renderer: Renderer = field(default_factory=Renderer, compare=False, repr=False)
    # Where warnings about an entry go (a deprecated key), once per destination: the console's reporter
    # of the command; without one, Python's warnings (FutureWarning: shown by default).
    on_warning: Callable[[str], None] | None = field(default=None, compare=False, repr=False)
    _rendered: dict[str, Mapping[str, Any]] = field(default_factory=dict, compare=False, repr=False)
    _warned: set[str] = field(default_factory=set, compare=False, repr=False)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The environment values rendered so far: what must be redacted from every output."""
        return tuple(self.renderer.secrets)

    def names(self) -> list[str]:
        return sorted(self.raw)

    def _raw(self, name: str, used_at: str) -> Mapping[str, Any]:
        config = self.raw.get(name)
        if config is None:
            known = ", ".join(self.names()) or "none defined"
            raise ConfigError(f"destination {name!r} is not defined in {self.path} (defined: {known})"
                              f"{did_you_mean(name, self.raw)}", location=used_at or None)
        return config

    def config(self, name: str, *, used_at: str = "") -> Mapping[str, Any]:
        """The entry of ``name`` with its ``env_var()`` rendered (once; later calls reuse it)."""
        rendered = self._rendered.get(name)
        if rendered is None:
            entry = self._raw(name, used_at)
            # Keys a type renders itself (request templates) are left as written: only the rest sees env_var().
            deferred = _deferred_keys(entry.get("type"))
            rendered = self._rendered[name] = {
                key: value if key in deferred else self.renderer.render(value, f"{self.path}: {name}.{key}")
                for key, value in entry.items()}
        return rendered

    def destination_type(self, name: str, *, used_at: str = "") -> type[Destination]:
        """The type of ``name``, its config checked against it as written: no environment needed."""
        config = self._raw(name, used_at)
        cls = self._type(name, config)
        check_config(cls, name, config, str(self.path))
        return cls

    def _type(self, name: str, config: Mapping[str, Any]) -> type[Destination]:
        kind = config.get("type")
        if not isinstance(kind, str):
            raise ConfigError("`type` is required: the destination type", location=f"{self.path}: {name}")
        try:
            return load_destination_type(kind)
        except ConfigError as exc:
            raise ConfigError(str(exc), location=f"{self.path}: {name}.type") from exc

    def build(self, name: str, *, used_at: str = "") -> Destination:
        """Instantiate destination ``name`` after checking its config against its type."""
        config = self.config(name, used_at=used_at)
        cls = self._type(name, config)
        check_config(cls, name, config, str(self.path))
        if name not in self._warned:
            self._warned.add(name)
            for message in deprecated_keys(cls, name, config, str(self.path)):
                if self.on_warning is None:
                    warnings.warn(message, FutureWarning, stacklevel=2)
                else:
                    self.on_warning(message)
        return cls(name, config)


def read_destinations(path: Path) -> dict[str, Any]:
    """destinations.yml as a mapping, checked for shape only; nothing rendered."""
    raw = read_yaml(path) or {}
    if not isinstance(raw, dict):
        raise ConfigError("must be a mapping of destination name to its config", location=str(path))
    return raw


def load_destinations(path: Path, *, on_warning: Callable[[str], None] | None = None) -> DestinationsFile:
    if not path.exists():
        raise ConfigError(f"{path} not found: declare your destinations there (see README, destinations.yml)")
    raw = read_destinations(path)
    renderer = Renderer()
    configs: dict[str, Mapping[str, Any]] = {}
    alerts: tuple[Mapping[str, Any], ...] = ()
    for name, entry in raw.items():
        if name == "alerts":
            alerts = tuple(renderer.render(entry or [], f"{path}: alerts"))
            continue
        if not isinstance(entry, dict):
            raise ConfigError("must be a mapping with at least `type`", location=f"{path}: {name}")
        configs[str(name)] = entry
    return DestinationsFile(path=path, raw=configs, alerts=alerts, renderer=renderer, on_warning=on_warning)


def _deferred_keys(kind: Any) -> frozenset[str]:
    """The config keys a destination type renders itself; an unknown type is reported later, by build()."""
    if not isinstance(kind, str) or kind not in destination_entry_points():
        return frozenset()
    try:
        return frozenset(load_destination_type(kind).deferred_keys)
    except ConfigError:
        return frozenset()
