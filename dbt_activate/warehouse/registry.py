"""The dialect of each supported dbt adapter, and the refusal of every other one.

An adapter without a dialect of its own is refused before anything runs: SQL written for another
warehouse would fail at the first statement on some (Snowflake has no LOCK TABLE) and silently give
wrong answers on others (on BigQuery a double-quoted name is a string literal, so every row would get
the same key).
"""

from __future__ import annotations

from dbt_activate.errors import ConfigError
from dbt_activate.warehouse.bigquery import BigQueryDialect
from dbt_activate.warehouse.dialect import Dialect
from dbt_activate.warehouse.duckdb import DuckDBDialect
from dbt_activate.warehouse.postgres import PostgresDialect
from dbt_activate.warehouse.redshift import RedshiftDialect
from dbt_activate.warehouse.snowflake import SnowflakeDialect
from dbt_activate.warehouse.spark import DatabricksDialect, SparkDialect

DIALECTS: dict[str, type[Dialect]] = {
    "bigquery": BigQueryDialect,
    "duckdb": DuckDBDialect,
    "postgres": PostgresDialect,
    "redshift": RedshiftDialect,
    "snowflake": SnowflakeDialect,
    "spark": SparkDialect,
    "databricks": DatabricksDialect,
}


class UnsupportedWarehouseError(ConfigError):
    """The profile's dbt adapter has no dialect in dbt-activate."""


def supported() -> tuple[str, ...]:
    return tuple(sorted(DIALECTS))


def dialect_for(adapter_type: str) -> Dialect:
    dialect = DIALECTS.get(adapter_type)
    if dialect is None:
        raise UnsupportedWarehouseError(
            f"the dbt adapter {adapter_type!r} of this profile is not supported by dbt-activate "
            f"(supported: {', '.join(supported())}); nothing was run. Use a profile target on one of "
            "those warehouses")
    return dialect()
