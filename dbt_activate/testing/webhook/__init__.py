"""``WebhookReceiver``: a local endpoint that speaks the ``webhook`` destination's contract.

The webhook emulator as a package (emulator); `WebhookReceiver` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.webhook.emulator import WebhookReceiver

__all__ = ["WebhookReceiver"]
