"""Emulator of Klaviyo's profile bulk import API (JSON:API, revision-dated).

The klaviyo emulator as a package (emulator); `KlaviyoEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator

__all__ = ["KlaviyoEmulator"]
