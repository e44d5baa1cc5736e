"""Emulator of the Zendesk Support API: users and organizations through bulk jobs.

The zendesk emulator as a package (emulator, store); `ZendeskEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.zendesk.emulator import ZendeskEmulator

__all__ = ["ZendeskEmulator"]
