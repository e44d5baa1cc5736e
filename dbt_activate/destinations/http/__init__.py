"""``http``: a declarative destination for any JSON REST API, described in destinations.yml.

The http destination type as a package (destination, request, results, template); `HttpDestination` is its
entry point."""

from __future__ import annotations

from dbt_activate.destinations.http.destination import HttpDestination

__all__ = ["HttpDestination"]
