"""The ``postgres`` destination: rows into a PostgreSQL table (psycopg2, one transaction per batch).

The postgres destination type as a package (destination, table); `PostgresDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.postgres.destination import PostgresDestination

__all__ = ["PostgresDestination"]
