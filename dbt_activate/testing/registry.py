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

from dbt_activate.testing.hubspot import HubSpotEmulator
from dbt_activate.testing.hubspot_schema import HubSpotObject, HubSpotProperty
from dbt_activate.testing.pipedrive import PipedriveEmulator
from dbt_activate.testing.pipedrive_fields import PipedriveField
from dbt_activate.testing.salesforce import SalesforceEmulator
from dbt_activate.testing.salesforce_schema import SalesforceField
from dbt_activate.testing.server import Emulator
from dbt_activate.testing.webhook import WebhookReceiver

EMULATORS: dict[str, type[Emulator]] = {
    "hubspot": HubSpotEmulator,
    "salesforce": SalesforceEmulator,
    "pipedrive": PipedriveEmulator,
    "webhook": WebhookReceiver,
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
    raise ValueError(f"{vendor} takes no schema")
