"""`dbt-activate destinations`: the installed destination types, read from their class attributes.

Every type is found through the ``dbt_activate.destinations`` entry point group, built-in and plugins
alike; a plugin that cannot be imported is listed with its error instead of hiding the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_activate.core.types import Mode
from dbt_activate.core.wording import plural
from dbt_activate.destinations.base import destination_entry_points, load_destination_type
from dbt_activate.errors import ActivateError

CATALOG_SCHEMA_VERSION = "activate_destinations/v1"


@dataclass(frozen=True)
class DestinationType:
    kind: str
    source: str  # "module:Class" of the entry point, so a user sees which package provides it
    description: str = ""
    objects: tuple[str, ...] = ()  # empty: any object name
    modes: tuple[str, ...] = ()
    batch_size: int | None = None
    rate_limit: str = ""  # "100 requests / 10 s", or "" when the type sets none
    config_keys: tuple[str, ...] = ()  # required keys first, each with a trailing * when required
    # What a sync's ``references`` may set: {object: {as: the parent's object}} (Destination.references)
    relationships: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    error: str | None = None  # the import error of a broken plugin


def installed_types() -> list[DestinationType]:
    found: list[DestinationType] = []
    for kind, entry_point in sorted(destination_entry_points().items()):
        try:
            cls = load_destination_type(kind)
        except ActivateError as exc:
            found.append(DestinationType(kind, entry_point.value, error=str(exc)))
            continue
        limit = cls.rate_limit
        keys = sorted(cls.config_keys, key=lambda k: (not k.required, k.name))
        found.append(DestinationType(
            kind=kind, source=entry_point.value, description=cls.description, objects=cls.objects,
            modes=tuple(m.value for m in Mode if m in cls.modes), batch_size=cls.batch_size,
            rate_limit=f"{plural(limit.requests, 'request')} / {limit.per_seconds:g} s" if limit else "",
            config_keys=tuple(f"{k.name}*" if k.required else k.name for k in keys),
            relationships={obj: dict(links) for obj, links in cls.references.items()},
        ))
    return found


def catalog_document(types: list[DestinationType]) -> dict[str, Any]:
    """``dbt-activate destinations --output json``."""
    return {
        "metadata": {"schema_version": CATALOG_SCHEMA_VERSION},
        "destinations": [
            {"type": t.kind, "source": t.source, "description": t.description, "objects": list(t.objects),
             "modes": list(t.modes), "batch_size": t.batch_size, "rate_limit": t.rate_limit or None,
             "config_keys": [k.rstrip("*") for k in t.config_keys],
             "required_config_keys": [k.rstrip("*") for k in t.config_keys if k.endswith("*")],
             "relationships": {obj: dict(links) for obj, links in t.relationships.items()},
             "error": t.error}
            for t in types
        ],
    }
