"""The in-process engine of tests/engine/world.py, one per test, with its webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.engine.world import World


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with WebhookReceiver() as receiver:
        engine = World(tmp_path, receiver)
        try:
            yield engine
        finally:
            engine.close()
        assert receiver.errors == []
