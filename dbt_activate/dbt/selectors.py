"""dbt's selection syntax for syncs: methods, graph operators and ``state:modified`` (pure but for
``read_modified``, which reads the two manifests).

A term selects *syncs*. Without graph operators it matches a sync directly (name, model, tag:, path:,
destination:, sync:). With them it selects models, as dbt does, then every sync on those models:
``+customers`` is customers and its ancestors, ``customers+`` customers and its descendants,
``2+customers`` / ``customers+1`` limit the depth, ``+customers+`` both ways. ``state:modified``
(``--state DIR``) selects the models whose SQL checksum, config (so also their ``activate`` block),
meta or relation changed since the manifest in DIR, and new models; ``state:new`` only new ones.
``state:modified+`` then takes their children too, the usual slim-CI selector.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_activate.dbt.artifacts import Manifest, ModelNode
from dbt_activate.errors import ArtifactsError, ConfigError
from dbt_activate.spec import SyncSpec

METHODS = frozenset({"", "tag", "path", "destination", "sync", "model", "state"})
STATE_VALUES = ("modified", "new")
_GRAPH = re.compile(r"^(?:(?P<up>\d*)\+)?(?P<selector>.+?)(?:\+(?P<down>\d*))?$")


@dataclass(frozen=True)
class Part:
    method: str
    value: str
    parents: int | None  # None: no operator; -1: unlimited depth
    children: int | None

    @property
    def uses_graph(self) -> bool:
        return self.parents is not None or self.children is not None or self.method == "state"


def _depth(text: str | None) -> int | None:
    if text is None:
        return None
    return int(text) if text else -1


def parse_part(part: str) -> Part:
    found = _GRAPH.match(part)
    assert found is not None  # the pattern matches any non-empty text
    selector = found.group("selector")
    method, _, value = selector.partition(":") if ":" in selector else ("", "", selector)
    return Part(method, value, _depth(found.group("up")), _depth(found.group("down")))


def unknown_methods(terms: Iterable[str]) -> list[str]:
    bad = []
    for term in terms:
        for text in filter(None, term.split(",")):
            part = parse_part(text)
            if part.method not in METHODS or (part.method == "state" and part.value not in STATE_VALUES):
                bad.append(text)
    return bad


# --- matching one sync, without the graph ---------------------------------------------------


def matches(method: str, value: str, spec: SyncSpec) -> bool:
    if method == "tag":
        return any(fnmatch.fnmatchcase(t, value) for t in spec.tags)
    if method == "path" or (not method and ("/" in value or value.endswith(".sql"))):
        return _path_matches(spec.path, value)
    if method == "destination":
        return fnmatch.fnmatchcase(spec.destination, value)
    if method == "sync":
        return fnmatch.fnmatchcase(spec.name, value)
    if method in ("model", ""):
        return fnmatch.fnmatchcase(spec.model_name, value) or (
            not method and fnmatch.fnmatchcase(spec.name, value))
    return False


def _path_matches(path: str, value: str) -> bool:
    path, value = path.rstrip("/"), value.rstrip("/")
    return path == value or path.startswith(value + "/") or fnmatch.fnmatchcase(path, value)


# --- the graph -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    models: Mapping[str, ModelNode]
    parents: Mapping[str, tuple[str, ...]]
    children: Mapping[str, tuple[str, ...]]
    modified: frozenset[str] | None = None
    new: frozenset[str] = frozenset()

    @classmethod
    def of(cls, manifest: Manifest, modified: frozenset[str] | None = None,
           new: frozenset[str] = frozenset()) -> Graph:
        parents = {uid: tuple(p for p in m.depends_on if p in manifest.models) for uid, m in manifest.models.items()}
        children: dict[str, list[str]] = {}
        for uid, ups in parents.items():
            for up in ups:
                children.setdefault(up, []).append(uid)
        return cls(manifest.models, parents, {k: tuple(v) for k, v in children.items()}, modified, new)

    def walk(self, start: set[str], edges: Mapping[str, tuple[str, ...]], depth: int) -> set[str]:
        seen, frontier, level = set(start), set(start), 0
        while frontier and (depth < 0 or level < depth):
            frontier = {n for f in frontier for n in edges.get(f, ()) if n not in seen}
            seen |= frontier
            level += 1
        return seen


def _model_matches(part: Part, model: ModelNode) -> bool:
    if part.method == "tag":
        return any(fnmatch.fnmatchcase(t, part.value) for t in model.tags)
    if part.method == "path" or (not part.method and ("/" in part.value or part.value.endswith(".sql"))):
        return _path_matches(model.original_file_path, part.value)
    return part.method in ("model", "") and fnmatch.fnmatchcase(model.name, part.value)


def _base_models(part: Part, specs: Sequence[SyncSpec], graph: Graph) -> set[str]:
    if part.method == "state":
        if graph.modified is None:
            raise ConfigError(f"selector 'state:{part.value}' needs --state DIR: the directory of the manifest.json "
                              "to compare with (e.g. the production run's target/)")
        return set(graph.new if part.value == "new" else graph.modified)
    found = {uid for uid, model in graph.models.items() if _model_matches(part, model)}
    # sync:, destination: and a bare sync name select the models those syncs read.
    found |= {s.model_id for s in specs if part.method in ("sync", "destination", "")
              and matches(part.method, part.value, s)}
    return found


def _part_selects(part: Part, specs: Sequence[SyncSpec], graph: Graph | None) -> set[str] | None:
    """The model ids a graph part selects, or None for a plain part (matched per sync)."""
    if not part.uses_graph:
        return None
    if graph is None:
        raise ConfigError("graph operators and state: need the manifest; this command does not support them")
    base = _base_models(part, specs, graph)
    selected = set(base)
    if part.parents is not None:
        selected |= graph.walk(base, graph.parents, part.parents)
    if part.children is not None:
        selected |= graph.walk(base, graph.children, part.children)
    return selected


def select(specs: Sequence[SyncSpec], include: Sequence[str], exclude: Sequence[str],
           graph: Graph | None = None) -> list[SyncSpec]:
    """dbt semantics: space-separated terms are a union; comma-joined parts an intersection."""

    def selected_by(terms: Sequence[str]) -> set[str]:
        names: set[str] = set()
        for term in terms:
            parts = [parse_part(p) for p in term.split(",") if p]
            resolved = [(p, _part_selects(p, specs, graph)) for p in parts]
            names |= {s.name for s in specs if all(
                matches(p.method, p.value, s) if models is None else s.model_id in models for p, models in resolved)}
        return names

    include_names = selected_by(include) if include else {s.name for s in specs}
    exclude_names = selected_by(exclude) if exclude else set()
    return [s for s in specs if s.name in include_names and s.name not in exclude_names]


# --- state:modified --------------------------------------------------------------------------


def _fingerprint(node: Mapping[str, Any]) -> str:
    """What makes a model "modified" for dbt-activate: its SQL, its configuration as written, its meta.

    As dbt's ``state:modified`` does, configuration is compared *unrendered* (``unrendered_config``,
    which also holds the configured database/schema/alias): the rendered ``config`` and the
    relation's database/schema come from the target (``generate_schema_name``, ``target.schema``),
    so a CI build compared with production would otherwise mark every model modified. The
    ``activate`` block is compared as well (``config.meta`` and ``meta``), wherever it was set.
    Artifacts without ``unrendered_config`` (hand-made manifests) fall back to the rendered values.
    """
    config = node.get("config") or {}
    unrendered = node.get("unrendered_config")
    parts: dict[str, Any] = {
        "checksum": (node.get("checksum") or {}).get("checksum"),
        "meta": node.get("meta") or {},
        "config_meta": config.get("meta") or {},
    }
    if isinstance(unrendered, Mapping):
        parts["config"] = unrendered
    else:
        parts["config"] = config
        parts["relation"] = [node.get("database"), node.get("schema"), node.get("alias") or node.get("name")]
    return json.dumps(parts, sort_keys=True, default=str)


def modified_models(current: Mapping[str, Any], previous: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(modified or new, new) model ids of ``current`` compared with ``previous`` (raw manifests)."""
    old = {uid: n for uid, n in (previous.get("nodes") or {}).items() if n.get("resource_type") == "model"}
    modified, new = set(), set()
    for uid, node in (current.get("nodes") or {}).items():
        if node.get("resource_type") != "model":
            continue
        if uid not in old:
            new.add(uid)
            modified.add(uid)
        elif _fingerprint(node) != _fingerprint(old[uid]):
            modified.add(uid)
    return frozenset(modified), frozenset(new)


def _raw_manifest(path: Path) -> Mapping[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactsError(f"{path} not found: --state must be a directory holding the manifest.json "
                             "of the run to compare with") from None
    except (OSError, ValueError) as exc:
        raise ArtifactsError(f"{path} is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ArtifactsError(f"{path} is not a dbt manifest")
    return data


def read_modified(target_dir: Path, state_dir: Path) -> tuple[frozenset[str], frozenset[str]]:
    return modified_models(_raw_manifest(target_dir / "manifest.json"), _raw_manifest(state_dir / "manifest.json"))
