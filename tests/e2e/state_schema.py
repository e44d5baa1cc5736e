"""The state schema a test Project's runs write to: the target schema plus ``_activate``
(dbt_activate/invocation.py), so on BigQuery and Spark the project's own dataset or schema."""

from __future__ import annotations

from tests.e2e.project import Project


def state_schema(project: Project) -> str:
    """``main_activate`` on DuckDB, ``analytics_activate`` where the profile's schema is ``analytics``
    (PostgreSQL, Redshift, Snowflake), ``act_…_activate`` where each project has its own (BigQuery, Spark)."""
    if project.warehouse == "duckdb":
        return "main_activate"
    if project.warehouse in ("bigquery", "spark"):
        return f"{project.warehouse_db}_activate"
    return "analytics_activate"
