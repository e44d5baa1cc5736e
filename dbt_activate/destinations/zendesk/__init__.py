"""``zendesk``: Zendesk Support users and organizations through the bulk job APIs.

The zendesk destination type as a package (destination, jobs, payload); `ZendeskDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.zendesk.destination import ZendeskDestination

__all__ = ["ZendeskDestination"]
