"""Emulator of Customer.io's Track API v2 batch endpoint, ``POST /api/v2/batch``.

The customerio emulator as a package (emulator); `CustomerIOEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.customerio.emulator import CustomerIOEmulator

__all__ = ["CustomerIOEmulator"]
