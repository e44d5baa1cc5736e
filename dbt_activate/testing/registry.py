"""The emulators by vendor name, for the command line and for tests that run them all."""

from __future__ import annotations

from dbt_activate.testing.hubspot import HubSpotEmulator
from dbt_activate.testing.server import Emulator

EMULATORS: dict[str, type[Emulator]] = {
    "hubspot": HubSpotEmulator,
}
