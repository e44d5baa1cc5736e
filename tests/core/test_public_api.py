"""The plugin API is what ``dbt_activate/__init__.py`` exports; changing it is a breaking change for plugins."""

from __future__ import annotations

import dbt_activate
from dbt_activate.destinations import base

EXPECTED = {
    "ActivateError", "ApiDestination", "Batch", "BatchResult", "ConfigError", "ConfigKey", "Destination",
    "DestinationError", "FieldSpec", "Mode", "Nulls", "Operation", "QuotaExhaustedError", "Record",
    "RetryableDestinationError", "SyncTarget", "__version__",
}


def test_the_public_api_is_pinned() -> None:
    assert set(dbt_activate.__all__) == EXPECTED
    missing = [name for name in EXPECTED if not hasattr(dbt_activate, name)]
    assert missing == []


def test_plugins_importing_from_the_destination_seam_get_the_same_types() -> None:
    # The example plugin (examples/dbt-activate-sqlite) and third-party ones import from destinations.base.
    assert base.Batch is dbt_activate.Batch
    assert base.Record is dbt_activate.Record
    assert base.Destination is dbt_activate.Destination


def test_the_version_matches_the_package_metadata() -> None:
    from importlib.metadata import version

    assert dbt_activate.__version__ == version("dbt-activate")
