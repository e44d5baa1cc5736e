"""Local emulators of vendor APIs, for tests, benchmarks, the demo and users' own CI.

Each emulator serves real HTTP on 127.0.0.1 and behaves like its vendor's documented API (see each
module's docstring for the contract followed and what is deliberately left out)::

    from dbt_activate.testing import HubSpotEmulator

    with HubSpotEmulator(token="t", rate_limit=True) as emu:
        ...  # point the destination's base_url at emu.base_url
        assert emu.records("contacts")[0]["properties"]["email"] == "ada@example.com"

Run one as a process with ``python -m dbt_activate.testing <vendor> --port N``.
"""

from __future__ import annotations

from dbt_activate.testing.braze.emulator import BrazeEmulator
from dbt_activate.testing.counters import Counts
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator
from dbt_activate.testing.dbt_cloud.emulator import DbtCloudEmulator
from dbt_activate.testing.faults import FAULT_KINDS, Fault
from dbt_activate.testing.google_ads.emulator import GoogleAdsEmulator
from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator
from dbt_activate.testing.hubspot.emulator import HubSpotEmulator
from dbt_activate.testing.hubspot.schema import HubSpotObject, HubSpotProperty
from dbt_activate.testing.intercom.emulator import IntercomEmulator
from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator
from dbt_activate.testing.limits import RateLimit
from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.meta.emulator import MetaEmulator
from dbt_activate.testing.pipedrive.emulator import PipedriveEmulator
from dbt_activate.testing.pipedrive.fields import PipedriveField, field_key
from dbt_activate.testing.registry import EMULATORS
from dbt_activate.testing.rest import RestEmulator
from dbt_activate.testing.salesforce.emulator import SalesforceEmulator
from dbt_activate.testing.salesforce.schema import SalesforceField
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.slack.emulator import SlackEmulator
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.testing.zendesk.emulator import ZendeskEmulator

__all__ = [
    "EMULATORS",
    "FAULT_KINDS",
    "ApiError",
    "BrazeEmulator",
    "Counts",
    "CustomerIOEmulator",
    "DbtCloudEmulator",
    "Emulator",
    "Fault",
    "GoogleAdsEmulator",
    "GoogleSheetsEmulator",
    "HubSpotEmulator",
    "HubSpotObject",
    "HubSpotProperty",
    "IntercomEmulator",
    "KlaviyoEmulator",
    "MailchimpEmulator",
    "MetaEmulator",
    "PipedriveEmulator",
    "PipedriveField",
    "RateLimit",
    "Request",
    "Response",
    "RestEmulator",
    "SalesforceEmulator",
    "SalesforceField",
    "SlackEmulator",
    "WebhookReceiver",
    "ZendeskEmulator",
    "field_key",
]
