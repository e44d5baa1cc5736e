"""``webhook``: send batches of records as JSON to any HTTP endpoint.

The webhook destination type as a package (destination); `WebhookDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.webhook.destination import WebhookDestination

__all__ = ["WebhookDestination"]
