"""``customerio``: people and events through Customer.io's Track API v2 ``/api/v2/batch``.

The customerio destination type as a package (destination, payload); `CustomerIODestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.customerio.destination import CustomerIODestination

__all__ = ["CustomerIODestination"]
