"""``meta``: Conversions API events and Custom Audience members (Graph API).

The meta destination type as a package (destination, hashing, payload, results); `MetaDestination`
is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.meta.destination import MetaDestination

__all__ = ["MetaDestination"]
