"""Emulator of the Google Sheets API v4 (values and sheet structure) with its OAuth token endpoint.

The google_sheets emulator as a package (auth, emulator, store); `GoogleSheetsEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator

__all__ = ["GoogleSheetsEmulator"]
