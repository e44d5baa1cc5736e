"""The Intercom emulator's companies, and the contacts attached to them.

From Intercom's OpenAPI description 2.16 (intercom/Intercom-OpenAPI ``descriptions/2.16/
api.intercom.io.yaml``, trimmed copy in ``shared/contracts/intercom/``) and the pages it renders at
developers.intercom.com/docs/references/2.16/rest-api/api.intercom.io/companies/:

- ``POST /companies`` (createOrUpdateCompany) creates a company, or updates the one with the body's
  ``company_id`` ("The company id you have defined for the company. Can't be updated"), and answers
  the company (``type: company``, Intercom's ``id``). A property the request schema does not list is
  a 400 ``bad_request`` (the spec's "Bad Request" example is ``{"test": "invalid"}``).
- ``GET /companies?company_id=…`` (retrieveCompany) answers a ``company_list`` (``{"type": "list", "data":
  [company], "pages", "total_count"}``, the spec's 200 schema and example), or 404 ``company_not_found``.
- ``DELETE /companies/{id}`` (deleteCompany) answers ``{"id", "object": "company", "deleted": true}``,
  or 404 ``company_not_found``; its contacts are detached.
- ``POST /contacts/{contact_id}/companies`` with ``{"id": <company id>}`` (attachContactToACompany,
  ``id`` required: else 400 ``parameter_not_found``) answers the company; an unknown company is 404
  ``company_not_found`` (the spec's example error), an unknown contact 404 ``not_found``.
- ``GET /contacts/{contact_id}/companies`` (listCompaniesForAContact) answers ``{"type": "list",
  "companies": [...], "total_count", "pages"}``.
- ``DELETE /contacts/{contact_id}/companies/{company_id}`` (detachContactFromACompany) answers the
  company; a contact or company unknown, or not attached, is a 404.

Not emulated: company custom attribute definitions (any ``custom_attributes`` are kept), company
scroll and list, segments and tags of companies, and Intercom hiding companies without contacts
from lists.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from dbt_activate.testing.intercom.store import invalid, now
from dbt_activate.testing.messages import ApiError, Request, Response

if TYPE_CHECKING:
    from dbt_activate.testing.intercom.emulator import IntercomEmulator

COMPANY = r"/companies/(?P<company>[0-9a-f]+)"
ATTACHED = r"/contacts/(?P<id>[0-9a-f]+)/companies"
_FIELDS = frozenset({"name", "company_id", "plan", "size", "website", "industry", "custom_attributes",
                     "remote_created_at", "monthly_spend", "update_last_request_at"})


class IntercomCompanies:
    """Companies by Intercom id, and the (contact id, company id) pairs attached."""

    def __init__(self, emu: IntercomEmulator) -> None:
        self.emu = emu
        self.companies: dict[str, dict[str, Any]] = {}
        self.attached: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        emu.route("POST", r"/companies", self.create_or_update, writes=True)
        emu.route("GET", r"/companies", self.retrieve)
        emu.route("DELETE", COMPANY, self.delete, writes=True)
        emu.route("POST", ATTACHED, self.attach, writes=True)
        emu.route("GET", ATTACHED, self.attached_to)
        emu.route("DELETE", ATTACHED + r"/(?P<company>[0-9a-f]+)", self.detach, writes=True)

    def of(self, contact_id: str) -> set[str]:
        """The ids of the companies a contact is attached to (call under the emulator's lock)."""
        return {company for contact, company in self.attached if contact == contact_id}

    # -- endpoints -----------------------------------------------------------------------------

    def create_or_update(self, req: Request) -> Response:
        body = req.json_object()
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ApiError(400, f"Unknown parameter(s): {', '.join(unknown)}", "bad_request")
        company_id = body.get("company_id")
        if not isinstance(company_id, str) or not company_id:
            raise invalid("company_id must be a non-empty string")
        self.emu.count_records(1)
        with self.emu.lock:
            found = next((c for c in self.companies.values() if c["company_id"] == company_id), None)
            if found is None:
                found = {"type": "company", "id": f"{next(self._ids) + 0xC0000:024x}", "company_id": company_id,
                         "name": None, "created_at": now(), "custom_attributes": {}}
                self.companies[found["id"]] = found
            for key, value in body.items():
                if key == "custom_attributes" and isinstance(value, dict):
                    found["custom_attributes"].update(value)
                elif key != "update_last_request_at":
                    found[key] = value
            found["updated_at"] = now()
            return Response.json(self._shown(found))

    def retrieve(self, req: Request) -> Response:
        wanted = req.arg("company_id")
        with self.emu.lock:
            found = next((c for c in self.companies.values() if c["company_id"] == wanted), None)
            if found is None:
                raise ApiError(404, "Company Not Found", "company_not_found")
            pages = {"type": "pages", "next": None, "page": 1, "per_page": 15, "total_pages": 1}
            return Response.json({"type": "list", "data": [self._shown(found)], "pages": pages, "total_count": 1})

    def delete(self, req: Request) -> Response:
        with self.emu.lock:
            company = self._company(req.params["company"])
            del self.companies[company["id"]]
            self.attached = {pair for pair in self.attached if pair[1] != company["id"]}
        return Response.json({"id": company["id"], "object": "company", "deleted": True})

    def attach(self, req: Request) -> Response:
        wanted = req.json_object().get("id")
        if wanted is None:
            raise invalid("id is required", "parameter_not_found")
        with self.emu.lock:
            contact = self.emu.store.get(req.params["id"])
            company = self._company(str(wanted))
            self.attached.add((contact["id"], company["id"]))
            return Response.json(self._shown(company))

    def attached_to(self, req: Request) -> Response:
        with self.emu.lock:
            contact = self.emu.store.get(req.params["id"])
            companies = [self._shown(self.companies[i]) for i in sorted(self.of(contact["id"]))]
        pages = {"type": "pages", "page": 1, "per_page": 50, "total_pages": 1}
        return Response.json({"type": "list", "companies": companies, "total_count": len(companies),
                              "pages": pages})

    def detach(self, req: Request) -> Response:
        with self.emu.lock:
            contact = self.emu.store.get(req.params["id"])
            company = self._company(req.params["company"])
            if (contact["id"], company["id"]) not in self.attached:
                raise ApiError(404, "Company Not Found", "company_not_found")
            self.attached.discard((contact["id"], company["id"]))
            return Response.json(self._shown(company))

    # -- helpers -------------------------------------------------------------------------------

    def _company(self, company_id: str) -> dict[str, Any]:
        found = self.companies.get(company_id)
        if found is None:
            raise ApiError(404, "Company Not Found", "company_not_found")
        return found

    def _shown(self, company: dict[str, Any]) -> dict[str, Any]:
        users = sum(1 for _, c in self.attached if c == company["id"])
        return {**company, "custom_attributes": dict(company["custom_attributes"]), "user_count": users,
                "session_count": 0, "monthly_spend": company.get("monthly_spend", 0)}
