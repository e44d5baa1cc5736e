"""Emulator of the Salesforce REST API: sObject Collections, Bulk API 2.0 ingest, OAuth, limits.

The salesforce emulator as a package (bulk, collections, emulator, query, schema, store); `SalesforceEmulator`
is its entry point."""

from __future__ import annotations

from dbt_activate.testing.salesforce.emulator import SalesforceEmulator

__all__ = ["SalesforceEmulator"]
