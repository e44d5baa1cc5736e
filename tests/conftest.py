"""Suite-wide: which tests the default run leaves out (`slow`), set by decorators in the test modules.

Every destination keeps its main end-to-end test in the default run; a further variant that repeats the
whole dbt build + dbt-activate run cycle for one more behaviour is decorated ``@pytest.mark.slow``. Run
them with `bash scripts/test.sh -m slow` (or everything with `-m ""`).

Per warehouse, the default run keeps the in-process mode tests on DuckDB and the upsert mode test (and
the tests of modules marked ``<warehouse>_in_default_run``) on the others; a test marked
``default_run_on_duckdb`` keeps only its DuckDB variant; a ``subprocess`` test (the installed commands
started as processes) is slow on every warehouse but DuckDB, its in-process twin covering the others.
The dbt-redshift variants run through the local protocol proxy, the dbt-snowflake ones on fakesnow's
server, the dbt-bigquery ones on crucible's: each is slow unless its module or test is marked
``redshift_in_default_run``, ``snowflake_in_default_run`` or ``bigquery_in_default_run``.
Every dbt-spark test is slow: each needs Spark's Thrift server (a JVM of 1 to 1.5 GB per process), so
`.ci/run` runs them all in one process (`-m spark`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator

import pytest

from tests.e2e import inprocess
from tests.support import bigquery, fakesnow, spark


@pytest.fixture(scope="session")
def fakesnow_port() -> Iterator[int]:
    """fakesnow's server for this session (one per xdist worker), on a free port, stopped at the end.

    Outside CI a virtualenv bootstrapped without the `snowflake` extra skips the Snowflake tests; in
    CI (which installs it) a missing dbt-snowflake fails them instead of hiding them."""
    if importlib.util.find_spec("dbt.adapters.snowflake") is None and not os.environ.get("CI"):
        pytest.skip("dbt-snowflake is not installed: bash scripts/bootstrap.sh \"...,snowflake,dev\"")
    with fakesnow.fakesnow_server() as port:
        yield port


@pytest.fixture(scope="session")
def crucible_port() -> Iterator[int]:
    """crucible-emulator's BigQuery server for this session (one per xdist worker), on a free port,
    stopped at the end; its own virtualenv is created on first use (scripts/crucible.sh). Skipped
    outside CI without dbt-bigquery, as fakesnow_port is."""
    if importlib.util.find_spec("dbt.adapters.bigquery") is None and not os.environ.get("CI"):
        pytest.skip("dbt-bigquery is not installed: bash scripts/bootstrap.sh \"...,bigquery,dev\"")
    with bigquery.crucible_server() as port:
        yield port


@pytest.fixture(scope="session")
def spark_port() -> Iterator[int]:
    """Spark's Thrift server for this session (one per xdist worker: 1 to 1.5 GB), stopped at the end.

    Outside CI a machine without pyspark, java or dbt-spark skips the Spark tests; in CI (whose
    install step provides them) a missing one fails them instead of hiding them."""
    if os.environ.get("DBT_ACTIVATE_TEST_SPARK_PORT"):  # a server already running (benchmarks, debugging)
        yield int(os.environ["DBT_ACTIVATE_TEST_SPARK_PORT"])
        return
    home = spark.spark_home()
    missing = home is None or importlib.util.find_spec("dbt.adapters.spark") is None
    if missing and not os.environ.get("CI"):
        pytest.skip("Spark needs pyspark 4.0, java 17 and dbt-spark[PyHive]: pip install 'pyspark>=4.0,<4.1' "
                    "and bash scripts/bootstrap.sh \"...,spark,dev\"")
    assert home is not None, "pyspark or java is missing (CI installs both: .ci/run)"
    with spark.thrift_server(home) as port:
        yield port


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After each test and its fixtures' teardown: what its in-process commands froze is collectable
    again (tests/e2e/inprocess.py), so the garbage of one test is not kept for the whole worker."""
    inprocess.unfreeze_survivors()


_WAREHOUSES_BUT_DUCKDB = ("postgres", "redshift", "snowflake", "bigquery", "spark")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # One true end-to-end test (the installed commands as subprocesses) per mode family runs by
        # default, on DuckDB; on the other warehouses its in-process twin does, the subprocess is slow.
        if item.get_closest_marker("subprocess") and any(item.get_closest_marker(w) for w in _WAREHOUSES_BUT_DUCKDB):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("default_run_on_duckdb") and any(
                item.get_closest_marker(w) for w in _WAREHOUSES_BUT_DUCKDB):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("redshift") and not item.get_closest_marker("redshift_in_default_run"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("spark"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("snowflake") and not item.get_closest_marker("snowflake_in_default_run"):
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("bigquery") and not item.get_closest_marker("bigquery_in_default_run"):
            item.add_marker(pytest.mark.slow)
