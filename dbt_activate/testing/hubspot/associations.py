"""The HubSpot emulator's associations: the v4 batch endpoints between records of two object types.

From HubSpot's v4 associations reference (developers.hubspot.com):

- ``POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read`` with
  ``{"inputs": [{"id"}]}`` answers ``{"status", "results": [{"from": {"id"}, "to": [{"toObjectId",
  "associationTypes": [{"category", "typeId", "label"}]}]}], "startedAt", "completedAt"}``
  (docs/api-reference/legacy/crm/associations/associate-records/batch/get-associations);
- ``POST …/batch/associate/default`` with ``{"inputs": [{"from": {"id"}, "to": {"id"}}]}`` creates the
  default (most generic, unlabeled) association and answers ``results`` of ``{"from", "to",
  "associationSpec": {"associationCategory", "associationTypeId"}}``
  (…/associate-records/batch/create-associations);
- ``POST …/batch/archive`` with ``{"inputs": [{"from": {"id"}, "to": [{"id"}]}]}`` removes every
  association between each pair and answers 204 (docs/api-reference/crm-associations-v4/guide,
  "Remove associations").

Associations are stored once per pair of records and read from either side, as HubSpot shows a
contact's company and the company's contact. Inputs naming a record that does not exist are errors
(``errors[]`` of StandardError with ``context.ids``; a 207 when some inputs succeeded, else 400);
the emulator keeps the default type ids of the pairs it knows (contact->company 279, deal->contact
3, deal->company 341, and their inverses), any other pair gets 1.

Not emulated: labels and ``batch/associate`` with explicit types, ``batch/labels/archive``, paging
of many associations (``after``), the per-record association limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbt_activate.testing.hubspot.store import now_iso
from dbt_activate.testing.messages import ApiError, Request, Response

if TYPE_CHECKING:
    from dbt_activate.testing.hubspot.emulator import HubSpotEmulator

PATH = r"/crm/v4/associations/(?P<from>[^/]+)/(?P<to>[^/]+)/batch/"
_DEFAULT_TYPES = {("contacts", "companies"): 279, ("companies", "contacts"): 280, ("deals", "contacts"): 3,
                  ("contacts", "deals"): 4, ("deals", "companies"): 341, ("companies", "deals"): 342}
MAX_INPUTS = 1000  # batch/read; create and archive take up to 2000 (v4 guide, limits)


class HubSpotAssociations:
    def __init__(self, emu: HubSpotEmulator) -> None:
        self.emu = emu
        self.pairs: set[tuple[tuple[str, str], tuple[str, str]]] = set()  # sorted ((type, id), (type, id))

    def register(self) -> None:
        self.emu.route("POST", PATH + "read", self.read)
        self.emu.route("POST", PATH + "associate/default", self.associate, writes=True)
        self.emu.route("POST", PATH + "archive", self.archive, writes=True)

    # -- for tests -----------------------------------------------------------------------------

    def of(self, from_type: str, to_type: str) -> dict[str, set[str]]:
        """Record id -> ids of the ``to_type`` records it is associated with (only records with some)."""
        a, b = self.emu.object_type(from_type).name, self.emu.object_type(to_type).name
        found: dict[str, set[str]] = {}
        with self.emu.lock:
            for (t1, i1), (t2, i2) in self.pairs:
                if not (self._exists(t1, i1) and self._exists(t2, i2)):
                    continue  # an archived record's associations are not shown
                if (t1, t2) == (a, b):
                    found.setdefault(i1, set()).add(i2)
                if (t2, t1) == (a, b):
                    found.setdefault(i2, set()).add(i1)
        return found

    # -- endpoints -----------------------------------------------------------------------------

    def _types(self, req: Request) -> tuple[str, str]:
        return self.emu.object_type(req.params["from"]).name, self.emu.object_type(req.params["to"]).name

    def _inputs(self, req: Request, limit: int) -> list[dict[str, Any]]:
        inputs = req.json_object().get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ApiError(400, "Invalid input JSON: inputs must be a list of objects", "VALIDATION_ERROR")
        if len(inputs) > limit:
            raise ApiError(400, f"Batch size of {len(inputs)} exceeds the limit of {limit}", "VALIDATION_ERROR")
        return inputs

    def _exists(self, object_type: str, record_id: Any) -> bool:
        obj = self.emu.object_type(object_type)
        return self.emu.store.find(obj, None, str(record_id)) is not None

    def _missing(self, object_type: str, ids: list[str]) -> dict[str, Any]:
        return {"status": "error", "category": "OBJECT_NOT_FOUND", "context": {"ids": ids},
                "message": f"No {object_type} objects exist with ids {', '.join(ids)}"}

    def read(self, req: Request) -> Response:
        a, b = self._types(req)
        inputs = self._inputs(req, MAX_INPUTS)
        started = now_iso()
        results, errors = [], []
        with self.emu.lock:
            for item in inputs:
                record_id = str(item.get("id") or "")
                if not self._exists(a, record_id):
                    errors.append(self._missing(a, [record_id]))
                    continue
                to = sorted(self._linked(a, record_id, b), key=int)
                results.append({"from": {"id": record_id},
                                "to": [{"toObjectId": int(t), "associationTypes": [
                                    {"category": "HUBSPOT_DEFINED", "typeId": _DEFAULT_TYPES.get((a, b), 1),
                                     "label": None}]} for t in to]})
        return self._answer(results, errors, started, ok_status=200)

    def associate(self, req: Request) -> Response:
        a, b = self._types(req)
        inputs = self._inputs(req, 2 * MAX_INPUTS)
        started = now_iso()
        results, errors = [], []
        with self.emu.lock:
            for item in inputs:
                from_id, to_id = _id(item.get("from")), _id(item.get("to"))
                missing = [f"{t} {i}" for t, i in ((a, from_id), (b, to_id)) if not self._exists(t, i)]
                if missing:
                    errors.append(self._missing(" and ".join(sorted({m.split()[0] for m in missing})),
                                                [m.split()[1] for m in missing]))
                    continue
                self.pairs.add(_pair(a, from_id, b, to_id))
                results.append({"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": {
                    "associationCategory": "HUBSPOT_DEFINED", "associationTypeId": _DEFAULT_TYPES.get((a, b), 1)}})
        return self._answer(results, errors, started, ok_status=200)

    def archive(self, req: Request) -> Response:
        a, b = self._types(req)
        with self.emu.lock:
            for item in self._inputs(req, 2 * MAX_INPUTS):
                from_id = _id(item.get("from"))
                for to in item.get("to") or []:
                    self.pairs.discard(_pair(a, from_id, b, _id(to)))
        return Response.empty(204)

    def _linked(self, a: str, record_id: str, b: str) -> set[str]:
        linked = set()
        for (t1, i1), (t2, i2) in self.pairs:
            if not (self._exists(t1, i1) and self._exists(t2, i2)):
                continue
            if (t1, i1) == (a, record_id) and t2 == b:
                linked.add(i2)
            elif (t2, i2) == (a, record_id) and t1 == b:
                linked.add(i1)
        return linked

    def _answer(self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: str, *,
                ok_status: int) -> Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started,
                                "completedAt": now_iso()}
        if errors:
            body.update(errors=errors, numErrors=len(errors))
            return Response.json(body, 207 if results else 400)
        return Response.json(body, ok_status)


def _id(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, dict) else ""


def _pair(a: str, a_id: str, b: str, b_id: str) -> tuple[tuple[str, str], tuple[str, str]]:
    first, second = sorted([(a, a_id), (b, b_id)])
    return first, second
