"""dbt-activate: reverse ETL as code, inside your dbt project."""

from __future__ import annotations

__version__ = "0.1.0"
