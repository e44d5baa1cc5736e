"""The ``mysql`` destination: rows into a MySQL or MariaDB table (pymysql, one transaction per batch).

The mysql destination type as a package (destination, driver, table); `MySQLDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.mysql.destination import MySQLDestination

__all__ = ["MySQLDestination"]
