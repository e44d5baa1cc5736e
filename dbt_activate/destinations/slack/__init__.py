"""``slack``: announce new rows in a Slack channel through an incoming webhook.

The slack destination type as a package (destination, message); `SlackDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.slack.destination import SlackDestination

__all__ = ["SlackDestination"]
