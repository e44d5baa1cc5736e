"""``google_ads``: offline click conversions and Customer Match user lists (Google Ads API v25, REST).

The google_ads destination type as a package (destination, auth, hashing, payload, jobs, results);
`GoogleAdsDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.google_ads.destination import GoogleAdsDestination

__all__ = ["GoogleAdsDestination"]
