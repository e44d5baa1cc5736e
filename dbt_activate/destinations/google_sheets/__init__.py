"""``google_sheets``: write a model to a tab of a Google spreadsheet, one row per record.

The google_sheets destination type as a package (auth, destination, grid, values); `GoogleSheetsDestination`
is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.google_sheets.destination import GoogleSheetsDestination

__all__ = ["GoogleSheetsDestination"]
