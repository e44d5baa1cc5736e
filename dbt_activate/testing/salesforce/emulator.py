"""Emulator of the Salesforce REST API: sObject Collections, Bulk API 2.0 ingest, OAuth, limits.

Follows the contract in ``shared/contracts/SUMMARY.md`` §2: the REST API Developer Guide pages on
sObject Collections (developer.salesforce.com/docs/platform/api-rest/guide/resources-composite-
sobjects-collections-upsert.html and siblings), the Bulk API 2.0 guide (api_asynch: walkthrough_upsert,
close_job, get_job_successful_results, get_job_failed_results), the API usage header page
(headers_api_usage), the limits cheat sheet, and Salesforce's own request definitions copied to
``shared/contracts/salesforce/postman-request-definitions`` (forcedotcom/postman-salesforce-apis @
83bd942d, CC0).

Emulated: ``POST/PATCH/DELETE /services/data/vXX.X/composite/sobjects`` (create, update by ``id``,
delete by ``ids``), ``PATCH …/composite/sobjects/{SObject}/{ExternalIdField}`` (upsert, v46+),
``GET|POST …/composite/sobjects/{SObject}`` (retrieve), 200 records at most, ``allOrNone`` with
``ALL_OR_NONE_OPERATION_ROLLED_BACK``, per-item ``{id, success, errors:[{statusCode, message, fields}],
created}``; Bulk API 2.0 ingest jobs (``salesforce_bulk.py``); a SOQL subset on ``…/query``
(``salesforce_query.py``); ``…/sobjects/{SObject}/describe``; ``…/limits``; ``POST
/services/oauth2/token``; ``Sforce-Limit-Info: api-usage=N/M`` on every response and 403
``REQUEST_LIMIT_EXCEEDED`` when ``daily_limit`` (the rolling 24-hour allocation) or the optional
``rate_limit`` window is exhausted (Salesforce sends no 429). Schemas: Contact, Account, Lead, plus
custom ``__c`` fields and objects; unknown fields or unreadable values fail the whole request with
400, as Salesforce's JSON deserializer does.

Not emulated: triggers, validation rules, duplicate rules, assignment rules, record types, field-level
security, relationships by external id (``Account.Ext__c``), the Composite/Graph/Tree APIs, SOQL
beyond the subset, query paging, the 25 concurrent long-running requests limit, Bulk API v1.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qs

from dbt_activate.testing.limits import Decision
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.salesforce.bulk import SalesforceBulk
from dbt_activate.testing.salesforce.collections import SalesforceCollections
from dbt_activate.testing.salesforce.query import parse_query
from dbt_activate.testing.salesforce.schema import STANDARD_OBJECTS, SalesforceField, SObject
from dbt_activate.testing.salesforce.store import SalesforceStore, now_iso
from dbt_activate.testing.server import Emulator

V = r"/services/data/v(?P<version>\d+\.\d)"
NOMINAL_ALLOCATION = 5_000_000  # shown in Sforce-Limit-Info when no daily_limit is set (not enforced)


class SalesforceEmulator(Emulator):
    """Salesforce org. ``fields`` adds custom ``__c`` fields per sObject; ``custom_objects`` maps
    ``Name__c`` to its fields. ``client_id``/``client_secret``, when set, are checked by the token
    endpoint. Bulk jobs report ``InProgress`` for ``bulk_processing_seconds`` after UploadComplete."""

    vendor = "salesforce"

    def __init__(
        self,
        token: str | None = "test-token",
        *,
        fields: Mapping[str, Iterable[SalesforceField]] | None = None,
        custom_objects: Mapping[str, Iterable[SalesforceField]] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        bulk_processing_seconds: float = 0.0,
        **knobs: Any,
    ) -> None:
        super().__init__(token=token, **knobs)
        self.client_id, self.client_secret = client_id, client_secret
        self.sobjects: dict[str, SObject] = {o.name.lower(): o for o in STANDARD_OBJECTS}
        for number, (name, object_fields) in enumerate((custom_objects or {}).items()):
            _custom(name, "object")
            declared = _custom_fields(object_fields)
            self.sobjects[name.lower()] = SObject(name, f"a{number:02d}", (SalesforceField("Name", length=80),
                                                                            *declared))
        for name, extra in (fields or {}).items():
            sobject = self.sobject(name)
            self.sobjects[sobject.name.lower()] = sobject.with_fields(_custom_fields(extra))
        self.store = SalesforceStore()
        self.collections = SalesforceCollections(self)
        self.bulk = SalesforceBulk(self, bulk_processing_seconds)
        self.route("POST", r"/services/oauth2/token", self._token, auth=False)
        self.route("POST", V + r"/composite/sobjects", self.collections.create, writes=True)
        self.route("PATCH", V + r"/composite/sobjects", self.collections.update, writes=True)
        self.route("DELETE", V + r"/composite/sobjects", self.collections.delete, writes=True)
        self.route("PATCH", V + r"/composite/sobjects/(?P<sobject>\w+)/(?P<field>\w+)", self.collections.upsert,
                   writes=True)
        self.route("GET", V + r"/composite/sobjects/(?P<sobject>\w+)", self.collections.retrieve)
        self.route("POST", V + r"/composite/sobjects/(?P<sobject>\w+)", self.collections.retrieve)
        self.route("GET", V + r"/query/?", self._query)
        self.route("GET", V + r"/sobjects/(?P<sobject>\w+)/describe/?", self._describe)
        self.route("GET", V + r"/limits/?", self._limits_resource)
        self.bulk.register(V)

    # -- accessors for tests -------------------------------------------------------------------

    def sobject(self, name: str) -> SObject:
        found = self.sobjects.get(name.lower())
        if found is None:
            raise ApiError(404, f"The requested resource does not exist: sObject type '{name}' is not supported.",
                           "NOT_FOUND")
        return found

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Live records of ``sobject`` in creation order: ``{"Id": …, <field>: value}``, unset fields absent."""
        found = self.sobject(sobject)
        with self.lock:
            return [dict(r) for r in self.store.iter(found)]

    def add_records(self, sobject: str, rows: Iterable[Mapping[str, Any]]) -> list[str]:
        """Seed records without HTTP (validated like a create); returns their ids."""
        found = self.sobject(sobject)
        with self.lock:
            return [self.store.save(found, {found.by_name[k.lower()].name: v for k, v in row.items()}, None,
                                    now_iso()) for row in rows]

    def clear(self) -> None:
        with self.lock:
            self.store.clear()
            self.bulk.jobs.clear()

    def expire_sessions(self) -> str:
        """Invalidate the current token (401 INVALID_SESSION_ID) and return the one the token endpoint
        hands out from now on, to test re-authentication."""
        self.token = uuid.uuid4().hex
        return self.token

    # -- resources -----------------------------------------------------------------------------

    def _token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.text()).items()}
        given = (form.get("client_id"), form.get("client_secret"))
        if (self.client_id, self.client_secret) != (None, None) and given != (self.client_id, self.client_secret):
            return Response.json({"error": "invalid_client", "error_description": "invalid client credentials"}, 400)
        token = self.token or uuid.uuid4().hex
        return Response.json({"access_token": token, "instance_url": self.base_url, "token_type": "Bearer",
                              "id": f"{self.base_url}/id/00D8d0000000001EAA/0058d0000000001AAA",
                              "issued_at": "1700000000000", "signature": "emulator"})

    def _query(self, req: Request) -> Response:
        query = parse_query(req.arg("q") or "", self.sobject)
        sobject = self.sobject(query.sobject)
        with self.lock:
            found = query.run(self.store.view(r) for r in self.store.iter(sobject))
        records = [{"attributes": self.attributes(sobject, r["Id"], req), **{f: r.get(f) for f in query.fields}}
                   for r in found]
        return Response.json({"totalSize": len(records), "done": True, "records": records})

    def _describe(self, req: Request) -> Response:
        sobject = self.sobject(req.params["sobject"])
        fields = [{"name": f.name, "label": f.label, "type": f.type, "length": f.length, "nillable": not f.required,
                   "createable": f.createable, "updateable": f.updateable, "externalId": f.external_id,
                   "unique": f.unique or f.external_id, "idLookup": f.external_id or f.name == "Id",
                   "custom": f.name.endswith("__c"), "restrictedPicklist": f.restricted and bool(f.picklist),
                   "picklistValues": [{"value": v, "label": v, "active": True} for v in f.picklist]}
                  for f in sobject.by_name.values()]
        return Response.json({"name": sobject.name, "keyPrefix": sobject.prefix, "custom": sobject.name.endswith("__c"),
                              "fields": fields})

    def _limits_resource(self, req: Request) -> Response:
        allocation = self.daily_limit or NOMINAL_ALLOCATION
        return Response.json({"DailyApiRequests": {"Max": allocation, "Remaining": allocation - self.daily_used}})

    def attributes(self, sobject: SObject, record_id: str, req: Request) -> dict[str, str]:
        return {"type": sobject.name, "url": f"/services/data/v{req.params['version']}/sobjects/{sobject.name}/"
                f"{record_id}"}

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, value = (request.header("Authorization") or "").partition(" ")
        if self.token is None or (scheme.lower() in ("bearer", "oauth") and value.strip() == self.token):
            return None
        return self.error_response(ApiError(401, "Session expired or invalid", "INVALID_SESSION_ID"))

    def error_response(self, err: ApiError) -> Response:
        return Response.json([{"message": err.message, "errorCode": err.code or "UNKNOWN_EXCEPTION", **err.extra}],
                             err.status)

    def server_error(self, status: int) -> Response:
        if status == 503:
            return self.error_response(ApiError(503, "Server is temporarily unavailable", "SERVER_UNAVAILABLE"))
        return self.error_response(ApiError(status, "An unexpected error occurred. Please include this ErrorId if you "
                                            f"contact support: {uuid.uuid4().int % 10**10}-{status}",
                                            "UNKNOWN_EXCEPTION"))

    def not_found(self, method: str, path: str) -> Response:
        return self.error_response(ApiError(404, "The requested resource does not exist", "NOT_FOUND"))

    def throttled_response(self, decision: Decision) -> Response:
        what = "TotalRequests" if decision.policy == "daily" else "ConcurrentPerOrgLongTxn"
        response = self.error_response(ApiError(403, f"{what} Limit exceeded.", "REQUEST_LIMIT_EXCEEDED"))
        response.headers.update(self.limit_headers(decision))
        return response

    def limit_headers(self, decision: Decision) -> dict[str, str]:
        allocation = decision.daily_limit or NOMINAL_ALLOCATION
        return {"Sforce-Limit-Info": f"api-usage={decision.daily_used}/{allocation}"}


def _custom(name: str, what: str) -> None:
    if not name.endswith("__c"):
        raise ValueError(f"custom {what} {name!r} must end with '__c'")


def _custom_fields(fields: Iterable[SalesforceField]) -> tuple[SalesforceField, ...]:
    declared = tuple(fields)
    for f in declared:
        _custom(f.name, "field")
    return declared
