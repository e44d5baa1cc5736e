"""``salesforce``: any sObject (Contact, Account, Lead, custom ``__c``) by its external id field.

The salesforce destination type as a package (api, auth, bulk, collections, config, destination, results,
values); `SalesforceDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.salesforce.destination import SalesforceDestination

__all__ = ["SalesforceDestination"]
