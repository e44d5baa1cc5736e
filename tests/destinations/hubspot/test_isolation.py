"""A batch HubSpot refuses whole (400/409 naming no input) is taken apart: MockTransport unit cases.

The fake HubSpot here answers as the reports cited in ``destinations/hubspot/isolation.py`` say the
real one does: any input it dislikes fails the whole batch, and the answer names the property and
value (or, in the older 409 shape, nothing at all). The same behaviour over real HTTP against the
emulator is in ``test_isolation_http.py``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, Mode, Operation, Record
from dbt_activate.delivery import RequestLog, observing_http
from dbt_activate.destinations.hubspot.isolation import MAX_EXTRA_REQUESTS
from tests.destinations.hubspot.test_unit import body, hubspot, person, recording, target, write

Refuse = Callable[[dict[str, Any]], "httpx.Response | None"]


def invalid(name: str, message: str, error: str = "INVALID_EMAIL") -> httpx.Response:
    """HubSpot's whole-batch 400: the problem inside the message, no input named."""
    problem = [{"isValid": False, "message": message, "error": error, "name": name}]
    return httpx.Response(400, json={"status": "error", "message": "Property values were not valid: "
                                     + json.dumps(problem), "correlationId": "c-1", "category": "VALIDATION_ERROR"})


def exists(email: str, owner: str = "2926551") -> httpx.Response:
    """HubSpot's 409 since 2024 (HubSpot community, "Updated 409 Conflict responses")."""
    return httpx.Response(409, json={
        "status": "error", "message": f"Contact already exists. Existing ID: {owner}", "correlationId": "c-2",
        "errors": [{"message": f"A contact with email {email} already exists. Existing ID: {owner}", "in": "email"}],
        "category": "OBJECT_ALREADY_EXISTS", "error": "CONTACT_EXISTS"})


OLD_CONFLICT = httpx.Response(409, json={"status": "error", "message": "Contact already exists. Existing ID: 7",
                                         "correlationId": "c-3", "category": "CONFLICT"})


class FakeHubSpot:
    """Refuses a whole batch for its first input ``refuse`` answers for; else writes it (200)."""

    def __init__(self, refuse: Refuse) -> None:
        self.refuse = refuse
        self.batches: list[list[str]] = []  # the record keys of each request, in order
        self.written: set[str] = set()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        inputs = body(request)["inputs"]
        self.batches.append([i["objectWriteTraceId"] for i in inputs])
        for item in inputs:
            refused = self.refuse(item)
            if refused is not None:
                return refused
        self.written.update(i["objectWriteTraceId"] for i in inputs)
        return httpx.Response(200, json={"status": "COMPLETE", "results": []})


def people(n: int, **bad: dict[str, Any]) -> Batch:
    return Batch(Operation.UPSERT, [person(i, **bad.get(str(i), {})) for i in range(1, n + 1)])


def test_an_invalid_email_is_dropped_and_the_rest_resent_at_once() -> None:
    fake = FakeHubSpot(lambda i: invalid("email", f"Email address {i['id']} is invalid")
                       if i["id"] == "name@domain" else None)
    result = write(hubspot(fake), people(100, **{"37": {"email": "name@domain"}}))
    assert result.rejected == {"37": "VALIDATION_ERROR: email: Email address name@domain is invalid"}
    assert len(fake.batches) == 2
    assert fake.written == {str(i) for i in range(1, 101)} - {"37"}


def test_two_invalid_inputs_in_one_batch_cost_one_extra_request_each() -> None:
    fake = FakeHubSpot(lambda i: invalid("email", f"Email address {i['id']} is invalid")
                       if "@" not in i["id"] else None)
    result = write(hubspot(fake), people(50, **{"3": {"email": "three"}, "40": {"email": "forty"}}))
    assert set(result.rejected) == {"3", "40"}
    assert len(fake.batches) == 3
    assert len(fake.written) == 48


def test_a_409_naming_an_email_drops_the_input_that_sets_it() -> None:
    taken = "Taken@Example.com"
    fake = FakeHubSpot(lambda i: exists(taken.lower()) if i["properties"].get("email") == taken else None)
    tgt = target(identity=("driver_id",), fields=("driver_id", "email", "firstname"))
    batch = Batch(Operation.UPSERT, [Record(str(i), {"driver_id": f"D-{i}", "email": taken if i == 5 else
                                                     f"u{i}@example.com", "firstname": "N"}) for i in range(1, 11)])
    result = write(hubspot(fake), batch, tgt)
    assert result.rejected == {"5": "OBJECT_ALREADY_EXISTS: email: A contact with email taken@example.com already "
                                    "exists. Existing ID: 2926551"}
    assert len(fake.batches) == 2 and len(fake.written) == 9


@pytest.mark.parametrize("size", [2, 3, 17, 100])
def test_an_error_naming_nothing_is_found_by_halving_within_two_log2_requests(size: int) -> None:
    bad = str(size // 2 + 1)
    fake = FakeHubSpot(lambda i: OLD_CONFLICT if i["objectWriteTraceId"] == bad else None)
    result = write(hubspot(fake), people(size))
    assert result.rejected == {bad: "CONFLICT: Contact already exists. Existing ID: 7"}
    assert fake.written == {str(i) for i in range(1, size + 1)} - {bad}
    assert len(fake.batches) - 1 <= 2 * math.ceil(math.log2(size))


def test_a_value_named_among_allowed_options_is_checked_apart() -> None:
    # HubSpot lists the allowed options in the message, so the good value "chocolate" is named too.
    def refuse(item: dict[str, Any]) -> httpx.Response | None:
        if item["properties"].get("firstname") == "mint":
            return invalid("firstname", '"mint" was not one of the allowed options: [chocolate, vanilla]',
                           "INVALID_OPTION")
        return None

    fake = FakeHubSpot(refuse)
    batch = Batch(Operation.UPSERT, [person(i, firstname="mint" if i == 2 else "chocolate") for i in range(1, 7)])
    result = write(hubspot(fake), batch)
    assert result.rejected == {"2": 'VALIDATION_ERROR: firstname: "mint" was not one of the allowed options: '
                                    "[chocolate, vanilla]"}
    assert fake.written == {"1", "3", "4", "5", "6"}
    assert sorted(map(sorted, fake.batches[1:])) == [["1", "3", "4", "5", "6"], ["2"]]


def test_a_property_every_input_sets_rejects_them_all_without_more_requests() -> None:
    fake = FakeHubSpot(lambda i: invalid("nickname", 'Property "nickname" does not exist', "PROPERTY_DOESNT_EXIST"))
    result = write(hubspot(fake), Batch(Operation.UPSERT, [person(i, nickname=f"N{i}") for i in range(1, 11)]))
    assert set(result.rejected) == {str(i) for i in range(1, 11)}
    assert result.rejected["1"] == 'VALIDATION_ERROR: nickname: Property "nickname" does not exist'
    assert len(fake.batches) == 1


def test_the_extra_requests_of_a_batch_are_bounded() -> None:
    fake = FakeHubSpot(lambda i: OLD_CONFLICT)  # refuses everything, naming nothing
    result = write(hubspot(fake), people(100))
    assert len(fake.batches) == 1 + MAX_EXTRA_REQUESTS
    assert set(result.rejected) == {str(i) for i in range(1, 101)} and fake.written == set()
    unresolved = [r for r in result.rejected.values() if "not isolated within 30 extra requests" in r]
    assert unresolved and all(r.startswith("CONFLICT: Contact already exists") for r in result.rejected.values())


def test_a_request_level_400_is_not_taken_apart() -> None:
    invalid_id = httpx.Response(400, json={"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c",
                                           "message": "Unable to perform update/upsert by non-unique 0-1 property"})
    malformed = httpx.Response(400, json={"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c",
                                          "message": "Invalid input JSON on line 1",
                                          "errors": [{"message": "must not be null", "in": "inputs"}]})
    for refused in (invalid_id, malformed):
        handler, seen = recording(refused)
        result = write(hubspot(handler), people(10))
        assert len(seen) == 1 and len(result.rejected) == 10


def test_create_skips_contacts_that_exist_in_hubspots_2024_409_and_207_shapes() -> None:
    handler, _ = recording(exists("u1@example.com"))
    result = write(hubspot(handler), Batch(Operation.CREATE, [person(1)]), target(Mode.CREATE))
    assert result.skipped == {"1": "OBJECT_ALREADY_EXISTS: email: A contact with email u1@example.com already "
                                   "exists. Existing ID: 2926551"}
    assert result.rejected == {}
    multi = {"status": "COMPLETE", "results": [{"id": "9", "objectWriteTraceId": "2"}], "numErrors": 1, "errors": [
        {"status": "error", "category": "OBJECT_ALREADY_EXISTS", "message": "Contact already exists. Existing ID: 8",
         "context": {"objectWriteTraceId": ["1"]},
         "errors": [{"message": "A contact with email u1@example.com already exists. Existing ID: 8", "in": "email"}]}]}
    handler, _ = recording(httpx.Response(207, json=multi))
    mixed = write(hubspot(handler), Batch(Operation.CREATE, [person(1), person(2)]), target(Mode.CREATE))
    assert set(mixed.skipped) == {"1"} and mixed.rejected == {}


def test_create_takes_a_whole_batch_conflict_apart_and_skips_the_existing_contact() -> None:
    fake = FakeHubSpot(lambda i: exists("u3@example.com") if i["properties"]["email"] == "u3@example.com" else None)
    result = write(hubspot(fake), Batch(Operation.CREATE, [person(i) for i in range(1, 6)]), target(Mode.CREATE))
    assert set(result.skipped) == {"3"} and result.rejected == {}
    assert fake.written == {"1", "2", "4", "5"}


def test_the_splits_are_shown_in_the_debug_log() -> None:
    fake = FakeHubSpot(lambda i: OLD_CONFLICT if i["objectWriteTraceId"] == "3" else None)
    logs: list[RequestLog] = []
    with observing_http(on_request=logs.append):
        write(hubspot(fake), people(4))
    assert sorted((log.status, log.note) for log in logs) == sorted([
        (409, ""),
        (200, "HubSpot refused 4 records without naming one: half 1 of 2, 2 records"),
        (409, "HubSpot refused 4 records without naming one: half 2 of 2, 2 records"),
        (409, "HubSpot refused 2 records without naming one: half 1 of 2, 1 record"),
        (200, "HubSpot refused 2 records without naming one: half 2 of 2, 1 record"),
    ])
