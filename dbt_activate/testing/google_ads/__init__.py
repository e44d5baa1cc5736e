"""Emulator of the Google Ads API v25 (REST): click conversions, Customer Match jobs, OAuth refresh grants.

The google_ads emulator as a package; `GoogleAdsEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.google_ads.emulator import GoogleAdsEmulator

__all__ = ["GoogleAdsEmulator"]
