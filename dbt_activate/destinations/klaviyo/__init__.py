"""``klaviyo``: profiles through Klaviyo's bulk import jobs.

The klaviyo destination type as a package (destination, events, jobs, profiles, results); `KlaviyoDestination`
is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.klaviyo.destination import KlaviyoDestination

__all__ = ["KlaviyoDestination"]
