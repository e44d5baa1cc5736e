"""``pipedrive``: persons, organizations and deals through Pipedrive's v2 API.

The pipedrive destination type as a package (api, destination, fields, ids); `PipedriveDestination` is its
entry point."""

from __future__ import annotations

from dbt_activate.destinations.pipedrive.destination import PipedriveDestination

__all__ = ["PipedriveDestination"]
