"""``hubspot``: CRM v3 objects (contacts, companies, deals, custom objects) through the batch APIs.

The hubspot destination type as a package (destination, payload, results, isolation); `HubSpotDestination` is
its entry point."""

from __future__ import annotations

from dbt_activate.destinations.hubspot.destination import HubSpotDestination

__all__ = ["HubSpotDestination"]
