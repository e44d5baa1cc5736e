"""``braze``: user attributes and custom events through ``/users/track``; deletes through ``/users/delete``.

The braze destination type as a package (destination, payload); `BrazeDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.braze.destination import BrazeDestination

__all__ = ["BrazeDestination"]
