"""``mailchimp``: audience (list) members through the Marketing API 3.0.

The mailchimp destination type as a package (destination, results); `MailchimpDestination` is its entry point."""

from __future__ import annotations

from dbt_activate.destinations.mailchimp.destination import MailchimpDestination

__all__ = ["MailchimpDestination"]
