"""The contract checkers themselves: a request or an answer that breaks the vendor's spec is a finding,
and an allowance lets through only the finding it names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.contracts import specs
from tests.contracts.capture import Exchange

if specs.contracts_dir() is None:
    pytest.skip("shared/contracts not found beside the checkout (set DBT_ACTIVATE_CONTRACTS)",
                allow_module_level=True)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type")  # openapi-core on Basic auth schemes


def exchange(method: str, path: str, body: Any = None, *, query: tuple[tuple[str, str], ...] = (),
             headers: dict[str, str] | None = None, status: int = 200, answer: Any = None,
             content_type: str = "application/json", answer_type: str = "application/json") -> Exchange:
    sent = b"" if body is None else json.dumps(body).encode()
    return Exchange(method, path, query, {"content-type": content_type, **(headers or {})}, sent, status,
                    {"content-type": answer_type}, b"" if answer is None else json.dumps(answer).encode(),
                    answer_type, "test")


PIPEDRIVE = {"x-api-token": "t"}
DEAL = {"success": True, "data": {"id": 1, "title": "D"}}


@pytest.mark.parametrize("field", ["value", "currency", "expected_close_date", "owner_id", "org_id", "visible_to"])
def test_pipedrive_v2_refuses_null_where_the_property_is_not_nullable(field: str) -> None:
    found = specs.PipedriveContract().violations(
        exchange("PATCH", "/api/v2/deals/1", {field: None}, headers=PIPEDRIVE, answer=DEAL))
    assert found and all(f"at {field}: None" in f for f in found), found


def test_pipedrive_v2_takes_null_where_the_spec_says_nullable_and_checks_answers() -> None:
    contract = specs.PipedriveContract()
    assert contract.violations(exchange("PATCH", "/api/v2/deals/1", {"probability": None, "custom_fields": {"a": None}},
                                        headers=PIPEDRIVE, answer=DEAL)) == []
    wrong_answer = {"success": True, "data": {"id": "one", "title": "D"}}
    [found] = contract.violations(exchange("PATCH", "/api/v2/deals/1", {"title": "D"}, headers=PIPEDRIVE,
                                           answer=wrong_answer))
    assert "response" in found and "data/id" in found


def test_pipedrive_unknown_endpoints_and_missing_tokens_are_findings() -> None:
    contract = specs.PipedriveContract()
    [unknown] = contract.violations(exchange("POST", "/api/v2/persons/bulk", [{"name": "A"}], headers=PIPEDRIVE))
    assert "PathNotFound" in unknown or "OperationNotFound" in unknown
    no_token = contract.violations(exchange("POST", "/api/v2/persons", {"name": "A"}, answer={"success": True}))
    assert [f.rsplit(": ", 1)[1] for f in no_token] == ["no x-api-token header"]
    in_url = contract.violations(exchange("GET", "/v1/personFields", query=(("api_token", "t"),), headers=PIPEDRIVE,
                                          answer={"success": True, "data": []}))
    assert [f.rsplit(": ", 1)[1] for f in in_url] == ["the API token is in the URL (api_token=)"]


def test_pipedrive_allowances_cover_only_the_documented_spec_errors() -> None:
    contract = specs.PipedriveContract()
    person = {"name": "Ada", "emails": [{"value": "a@b.c", "primary": True, "label": "work"}]}
    created = {"success": True, "data": {"id": 1, "name": "Ada", "org_id": None}}
    assert contract.violations(exchange("POST", "/api/v2/persons", person, headers=PIPEDRIVE, answer=created)) == []
    fields = {"success": True, "data": [{"id": 1, "key": "name", "add_time": "2019-02-04 13:58:03"}]}
    assert contract.violations(exchange("GET", "/v1/personFields", query=(("start", "0"),), headers=PIPEDRIVE,
                                        answer=fields)) == []
    still_wrong = {**person, "emails": [{"value": "a@b.c", "primary": "yes", "label": "work"}]}
    [found] = contract.violations(exchange("POST", "/api/v2/persons", still_wrong, headers=PIPEDRIVE, answer=created))
    assert "emails/0/primary" in found
    organization_title = contract.violations(exchange("POST", "/api/v2/deals", {"value": 1}, headers=PIPEDRIVE))
    assert any("'title' is a required property" in f for f in organization_title)  # deals do need a title


def test_klaviyo_refuses_a_resource_of_the_wrong_type() -> None:
    job = {"data": {"type": "profile-bulk-import-job", "attributes": {"profiles": {"data": [
        {"type": "wrong", "attributes": {"email": "a@b.c"}}]}}}}
    found = specs.klaviyo().violations(exchange(
        "POST", "/api/profile-bulk-import-jobs", job, content_type="application/vnd.api+json",
        headers={"authorization": "Klaviyo-API-Key pk", "revision": "2026-07-15"}, status=202))
    assert any("data/attributes/profiles/data/0/type" in f for f in found), found


def test_intercom_refuses_a_timestamp_that_is_no_number() -> None:
    found = specs.intercom().violations(exchange(
        "POST", "/contacts", {"role": "user", "external_id": "1", "signed_up_at": "yesterday"},
        headers={"authorization": "Bearer t", "intercom-version": "2.16"}, status=400))
    assert any("signed_up_at" in f for f in found), found


@pytest.mark.parametrize(("body", "where"), [
    ({"text": 5}, "text"),
    ({"text": "hi", "colour": "red"}, "colour"),
    ({"blocks": [{"text": "no type"}]}, "blocks/0"),
])
def test_slack_webhook_bodies_are_chat_post_message_arguments(body: dict[str, Any], where: str) -> None:
    contract = specs.slack_webhook()
    assert contract.violations(exchange("POST", "/services/T0/B0/x", {"text": "hi", "blocks": [{"type": "section"}]}))\
        == []
    found = contract.violations(exchange("POST", "/services/T0/B0/x", body))
    assert found and (where in found[0] or where.split("/")[0] in found[0]), found


def test_google_sheets_methods_parameters_bodies_and_answers() -> None:
    contract = specs.google_sheets()
    path = "/v4/spreadsheets/s1/values:batchUpdate"
    good = {"valueInputOption": "RAW", "data": [{"range": "People!A1:B1", "values": [["id", "name"]]}]}
    answer = {"spreadsheetId": "s1", "totalUpdatedRows": 1}
    assert contract.violations(exchange("POST", path, good, answer=answer)) == []
    assert any("valueInputOption" in f for f in contract.violations(
        exchange("POST", path, {**good, "valueInputOption": "PLAIN"}, answer=answer)))
    assert any("'rows'" in f for f in contract.violations(
        exchange("POST", path, {**good, "rows": []}, answer=answer)))  # Google refuses unknown field names
    assert any("response" in f for f in contract.violations(
        exchange("POST", path, good, answer={"totalUpdatedRows": "one"})))
    assert any("no method" in f for f in contract.violations(exchange("POST", "/v4/spreadsheets/s1:upsert", {})))
    assert any("'insertMode'" in f for f in contract.violations(
        exchange("GET", "/v4/spreadsheets/s1/values/People", query=(("insertMode", "x"),))))
