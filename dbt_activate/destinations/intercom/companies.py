"""Intercom companies, and contacts attached to them (a contacts sync's ``references``, ``as: company``).

Endpoints, from Intercom's OpenAPI description 2.16 (``shared/contracts/intercom/``; rendered at
developers.intercom.com/docs/references/2.16/rest-api/api.intercom.io/companies/ and …/contacts/):

- a ``companies`` sync: ``POST /companies`` creates a company or updates the one with the same
  ``company_id`` (the sync's identity, which Intercom never changes), answering the company with its
  Intercom ``id`` (reported as the record's id, what contacts attach to); standard properties (``name``,
  ``plan``, ``size``, ``website``, ``industry``, ``remote_created_at``, ``monthly_spend``) at the top,
  every other field in ``custom_attributes``. Delete (``mirror``) finds the company with ``GET
  /companies?company_id=…`` and ``DELETE /companies/{id}``; one Intercom does not have is acknowledged.
- a contact's ``company`` field (the reference, swapped by the engine for the company's Intercom id):
  ``GET /contacts/{id}/companies`` reads what it is attached to, ``DELETE /contacts/{id}/companies/
  {company_id}`` detaches every other company, ``POST /contacts/{id}/companies`` ``{"id": …}``
  attaches the wanted one. A NULL detaches them all. A company Intercom does not know (404
  ``company_not_found``) rejects the contact with that reason (its attributes were written).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from dbt_activate.destinations.intercom.api import IntercomApi
from dbt_activate.destinations.intercom.payload import FormatError, identity_text, value_of
from dbt_activate.destinations.record_ids import RecordFailed

RELATIONSHIPS: Mapping[str, Mapping[str, str]] = {"contacts": {"company": "companies"}}
LINK = "company"  # the contacts field a reference is sent under
STANDARD = frozenset({"name", "plan", "size", "website", "industry", "remote_created_at", "monthly_spend"})
IDENTITY = "company_id"


def company_body(values: Mapping[str, Any]) -> dict[str, Any]:
    """The ``POST /companies`` body of one record; NULLs are left out (Intercom keeps the value)."""
    company_id = identity_text(values.get(IDENTITY))
    if not company_id:
        raise FormatError(f"{IDENTITY} is empty: the Intercom company cannot be found")
    body: dict[str, Any] = {IDENTITY: company_id}
    custom: dict[str, Any] = {}
    for name, value in values.items():
        if name == IDENTITY or value is None:
            continue
        (body if name in STANDARD else custom)[name] = value_of(value, name)
    if custom:
        body["custom_attributes"] = custom
    return body


async def upsert_company(api: IntercomApi, values: Mapping[str, Any]) -> str:
    """Create or update the company; its Intercom id. Raises ``RecordFailed`` when Intercom refuses it."""
    response = await api.call("POST", "/companies", company_body(values))
    api.check(response)
    company = api.answer(response)
    if company.get("id") is None:
        raise RecordFailed("Intercom answered POST /companies without the company's id")
    return str(company["id"])


async def delete_company(api: IntercomApi, values: Mapping[str, Any]) -> None:
    """Delete the company with the record's company_id; one Intercom does not have is gone already."""
    company_id = identity_text(values.get(IDENTITY))
    found = await api.call("GET", f"/companies?{IDENTITY}={quote(company_id, safe='')}")
    if found.status_code == 404:
        return
    api.check(found)
    # The spec answers a company_list ({"type": "list", "data": [company]}); a bare company is read too.
    answer = api.answer(found)
    data = answer.get("data")
    listed = data[0] if isinstance(data, list) and data and isinstance(data[0], Mapping) else answer
    intercom_id = listed.get("id")
    if intercom_id is None:
        return
    deleted = await api.call("DELETE", f"/companies/{quote(str(intercom_id), safe='')}")
    if deleted.status_code != 404:
        api.check(deleted)


async def attach(api: IntercomApi, contact_id: str, wanted: str | None) -> None:
    """Make the contact attached to ``wanted`` only (to none when it is None)."""
    path = f"/contacts/{quote(contact_id, safe='')}/companies"
    listed = await api.call("GET", path)
    api.check(listed)
    companies = api.answer(listed).get("companies")
    current = {str(c["id"]) for c in companies if isinstance(c, Mapping) and c.get("id") is not None} \
        if isinstance(companies, list) else set()
    for other in sorted(current - {wanted} if wanted is not None else current):
        detached = await api.call("DELETE", f"{path}/{quote(other, safe='')}")
        if detached.status_code != 404:  # detached meanwhile
            api.check(detached)
    if wanted is not None and wanted not in current:
        attached = await api.call("POST", path, {"id": wanted})
        if 400 <= attached.status_code < 500:
            raise RecordFailed(f"Intercom refused attaching the contact to company {wanted}: "
                               f"{api.reason(attached)}")
        api.check(attached)
