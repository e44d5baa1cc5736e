"""``intercom``: Intercom contacts (users or leads), one request per record.

The intercom destination type as a package (api, destination, ids, payload); `IntercomDestination` is its
entry point."""

from __future__ import annotations

from dbt_activate.destinations.intercom.destination import IntercomDestination

__all__ = ["IntercomDestination"]
