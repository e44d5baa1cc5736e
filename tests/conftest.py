"""Suite-wide: which tests the default run leaves out (`slow`), set by decorators in the test modules.

Every destination keeps its main end-to-end test in the default run; a further variant that repeats the
whole dbt build + dbt-activate run cycle for one more behaviour is decorated ``@pytest.mark.slow``. Run
them with `bash scripts/test.sh -m slow` (or everything with `-m ""`).

The dbt-redshift variants (through the local protocol proxy) of the integration tests run the PostgreSQL
path's SQL again, so they are slow too, except in modules marked ``redshift_in_default_run`` (the mode
tests, the dbt package test and the proxy's own tests).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("redshift") and not item.get_closest_marker("redshift_in_default_run"):
            item.add_marker(pytest.mark.slow)
