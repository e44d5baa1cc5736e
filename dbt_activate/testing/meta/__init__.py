"""Emulator of Meta's Graph API: Conversions API events and Custom Audience members.

The meta emulator as a package; `MetaEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.meta.emulator import MetaEmulator

__all__ = ["MetaEmulator"]
