"""The ``file`` destination: every change as a line of ``<path>/<sync>/<run_id>.jsonl`` (or ``.csv``).

The file destination type as a package (destination); `FileDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.file.destination import FileDestination

__all__ = ["FileDestination"]
