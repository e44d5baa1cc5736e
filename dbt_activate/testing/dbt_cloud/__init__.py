"""``DbtCloudEmulator``: the dbt Cloud Administrative API v2 endpoints dbt-activate reads.

The dbt_cloud emulator as a package (emulator); `DbtCloudEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.dbt_cloud.emulator import DbtCloudEmulator

__all__ = ["DbtCloudEmulator"]
