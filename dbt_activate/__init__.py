"""dbt-activate: reverse ETL as code, inside your dbt project.

The public plugin API: what a third-party destination type needs (``Destination``, ``ApiDestination``
for HTTP APIs, the value types it reads and returns, ``ConfigKey`` to declare its config, the errors it
raises). Everything else is internal and may move between releases; ``tests/core/test_public_api.py`` pins this list.
"""

from __future__ import annotations

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.destinations.api import ApiDestination
from dbt_activate.destinations.base import ConfigKey, Destination
from dbt_activate.errors import (
    ActivateError,
    ConfigError,
    DestinationError,
    QuotaExhaustedError,
    RetryableDestinationError,
)
from dbt_activate.version import __version__

__all__ = [
    "ActivateError",
    "ApiDestination",
    "Batch",
    "BatchResult",
    "ConfigError",
    "ConfigKey",
    "Destination",
    "DestinationError",
    "FieldSpec",
    "Mode",
    "Nulls",
    "Operation",
    "QuotaExhaustedError",
    "Record",
    "RetryableDestinationError",
    "SyncTarget",
    "__version__",
]
