"""Emulator of the Mailchimp Marketing API 3.0: audience members.

The mailchimp emulator as a package (emulator); `MailchimpEmulator` is its entry point."""

from __future__ import annotations

from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator

__all__ = ["MailchimpEmulator"]
