"""Emulator of the HubSpot CRM v3 objects API (contacts, companies, deals, custom objects).

The hubspot emulator as a package (batch, emulator, schema, store); `HubSpotEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotEmulator"]
