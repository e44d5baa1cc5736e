"""The emulators by vendor name, and their custom schema read from JSON (for the command line).

``--schema FILE`` takes the constructor's schema arguments as JSON, e.g. for HubSpot::

    {"properties": {"contacts": [{"name": "driver_id", "unique": true}, {"name": "signup", "type": "date"}]},
     "custom_objects": [{"name": "cars", "type_id": "2-123", "properties": [{"name": "vin", "unique": true}]}]}

Salesforce: ``{"fields": {"Contact": [{"name": "Ext__c", "external_id": true}]}, "custom_objects": {"Car__c": […]}}``;
Pipedrive: ``{"custom_fields": {"persons": [{"name": "Driver ID", "field_type": "varchar"}]}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_activate.testing.braze.emulator import BrazeEmulator
from dbt_activate.testing.customerio.emulator import CustomerIOEmulator
from dbt_activate.testing.dbt_cloud.emulator import DbtCloudEmulator
from dbt_activate.testing.google_ads.emulator import GoogleAdsEmulator
from dbt_activate.testing.google_sheets.emulator import GoogleSheetsEmulator
from dbt_activate.testing.hubspot.emulator import HubSpotEmulator
from dbt_activate.testing.hubspot.schema import HubSpotObject, HubSpotProperty
from dbt_activate.testing.intercom.emulator import IntercomEmulator
from dbt_activate.testing.klaviyo.emulator import KlaviyoEmulator
from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator
from dbt_activate.testing.meta.emulator import MetaEmulator
from dbt_activate.testing.pipedrive.emulator import PipedriveEmulator
from dbt_activate.testing.pipedrive.fields import PipedriveField
from dbt_activate.testing.rest import RestEmulator
from dbt_activate.testing.salesforce.emulator import SalesforceEmulator
from dbt_activate.testing.salesforce.schema import SalesforceField
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.slack.emulator import SlackEmulator
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from dbt_activate.testing.zendesk.emulator import ZendeskEmulator

EMULATORS: dict[str, type[Emulator]] = {
    "hubspot": HubSpotEmulator,
    "salesforce": SalesforceEmulator,
    "pipedrive": PipedriveEmulator,
    "webhook": WebhookReceiver,
    "braze": BrazeEmulator,
    "customerio": CustomerIOEmulator,
    "dbt_cloud": DbtCloudEmulator,
    "klaviyo": KlaviyoEmulator,
    "mailchimp": MailchimpEmulator,
    "intercom": IntercomEmulator,
    "zendesk": ZendeskEmulator,
    "google_sheets": GoogleSheetsEmulator,
    "google_ads": GoogleAdsEmulator,
    "meta": MetaEmulator,
    "slack": SlackEmulator,
    "rest": RestEmulator,
}


def _tuples(spec: Mapping[str, Any]) -> dict[str, Any]:
    """JSON arrays -> tuples, as the frozen schema dataclasses hold them."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()}


def schema_kwargs(vendor: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Constructor keyword arguments for ``vendor`` from a JSON schema document."""
    if vendor == "hubspot":
        return {
            "properties": {o: [HubSpotProperty(**_tuples(p)) for p in props]
                           for o, props in schema.get("properties", {}).items()},
            "custom_objects": [HubSpotObject(o["name"], o["type_id"],
                                             tuple(HubSpotProperty(**_tuples(p)) for p in o.get("properties", [])))
                               for o in schema.get("custom_objects", [])],
        }
    if vendor == "salesforce":
        return {
            "fields": {s: [SalesforceField(**_tuples(f)) for f in fields]
                       for s, fields in schema.get("fields", {}).items()},
            "custom_objects": {s: [SalesforceField(**_tuples(f)) for f in fields]
                               for s, fields in schema.get("custom_objects", {}).items()},
        }
    if vendor == "pipedrive":
        return {"custom_fields": {e: [PipedriveField(**_tuples(f)) for f in fields]
                                  for e, fields in schema.get("custom_fields", {}).items()}}
    if vendor == "mailchimp":  # {"list_ids": ["a1b2c3d4e5"], "merge_fields": {"SCORE": "number"}}
        return {k: schema[k] for k in ("list_ids", "merge_fields") if k in schema}
    if vendor == "intercom":  # {"attributes": {"plan": "string", "score": "float"}}
        return {"attributes": dict(schema.get("attributes", {}))}
    if vendor == "zendesk":  # {"user_fields": {"plan": "text"}, "organization_fields": {"tier": "dropdown"}}
        return {k: dict(schema[k]) for k in ("user_fields", "organization_fields") if k in schema}
    if vendor == "rest":  # {"id_field": "id", "max_batch": 100, "max_lengths": {"name": 40}}
        return {k: schema[k] for k in ("id_field", "max_batch", "max_lengths") if k in schema}
    if vendor == "google_ads":  # {"user_lists": ["5550001"], "conversion_actions": ["987"], "customer_id": "…"}
        return {k: schema[k] for k in ("user_lists", "conversion_actions", "customer_id", "manager_id")
                if k in schema}
    if vendor == "meta":  # {"pixels": ["1234567890"], "audiences": ["2345678901"]}
        return {k: list(schema[k]) for k in ("pixels", "audiences") if k in schema}
    if vendor == "dbt_cloud":
        return {"runs": list(schema.get("runs", [])), "account_id": int(schema.get("account_id", 1))}
    raise ValueError(f"{vendor} takes no schema")
