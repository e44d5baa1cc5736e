"""Emulator of the Intercom REST API: contacts, one per request.

The intercom emulator as a package (emulator, store); `IntercomEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.intercom.emulator import IntercomEmulator

__all__ = ["IntercomEmulator"]
