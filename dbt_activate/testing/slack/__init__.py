"""Emulator of Slack incoming webhooks (``POST https://hooks.slack.com/services/T…/B…/…``).

The slack emulator as a package (emulator); `SlackEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.slack.emulator import SlackEmulator

__all__ = ["SlackEmulator"]
