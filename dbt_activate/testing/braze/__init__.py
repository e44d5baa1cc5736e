"""Emulator of Braze's user data REST endpoints ``/users/track`` and ``/users/delete``.

The braze emulator as a package (emulator); `BrazeEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.braze.emulator import BrazeEmulator

__all__ = ["BrazeEmulator"]
