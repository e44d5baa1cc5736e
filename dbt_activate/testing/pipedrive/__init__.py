"""Emulator of the Pipedrive API: persons, organizations and deals (v2), field definitions (v1).

The pipedrive emulator as a package (emulator, fields, store); `PipedriveEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.pipedrive.emulator import PipedriveEmulator

__all__ = ["PipedriveEmulator"]
