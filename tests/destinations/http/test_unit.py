"""HttpDestination over httpx.MockTransport: config checks, rendering, and reading responses."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery import RetryPolicy, deliver
from dbt_activate.destinations.base import check_config
from dbt_activate.destinations.http.destination import HttpDestination
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from tests.support.delivery import recording as support_recording

TOKEN = "tok_3f9a8b7c6d5e4f30"
Handler = Callable[[httpx.Request], httpx.Response]
TARGET = SyncTarget("people__api__contacts", "contacts", Mode.UPSERT,
                    (FieldSpec("email", "email"), FieldSpec("name", "name"), FieldSpec("since", "since")),
                    ("email",), run_id="run-7")
UPSERT = {"path": "/contacts/batch", "body": '{"contacts": {{ records | tojson }}, "sync": {{ sync | tojson }}}',
          "errors_path": "$.errors[*]", "error_key_path": "$.email", "error_message_path": "$.message"}


def api(handler: Handler, requests: dict[str, Any] | None = None, **config: Any) -> HttpDestination:
    full = {"type": "http", "base_url": "https://api.example.com/v2", "headers": {"Authorization": f"Bearer {TOKEN}"},
            "requests": requests or {"upsert": UPSERT}, **config}
    return HttpDestination("crm_api", full, transport=httpx.MockTransport(handler))


def people(*emails: str, op: Operation = Operation.UPSERT) -> Batch:
    return Batch(op, [Record(str(i), {"email": e, "name": f"N{i}", "since": dt.date(2024, 5, i + 1)})
                      for i, e in enumerate(emails)])


def write(dest: HttpDestination, batch: Batch, target: SyncTarget = TARGET) -> BatchResult:
    async def run() -> BatchResult:
        await dest.open(target)
        try:
            return await dest.write(target, batch)
        finally:
            await dest.close()

    return asyncio.run(run())


def recording(status: int = 200, body: Any = None) -> tuple[list[httpx.Request], Handler]:
    handler, seen = support_recording(status=status, json=body if body is not None else {"ok": True})
    return seen, handler


# -- config is checked when the destination is built ---------------------------------------------


@pytest.mark.parametrize(("requests", "location", "message"), [
    ({"upsert": {**UPSERT, "body": "{{ records | tojson }"}}, "crm_api.requests.upsert.body", "invalid Jinja"),
    ({"upsert": {**UPSERT, "path": "{% for %}"}}, "crm_api.requests.upsert.path", "invalid Jinja"),
    ({"upsert": {**UPSERT, "errors_path": "$.errors[["}}, "crm_api.requests.upsert.errors_path", "invalid JSONPath"),
    ({"upsert": {**UPSERT, "error_key_path": "$..["}}, "crm_api.requests.upsert.error_key_path", "invalid JSONPath"),
    ({"upsert": {**UPSERT, "method": "GET"}}, "crm_api.requests.upsert.method", "must be one of"),
    ({"upsert": {**UPSERT, "erors_path": "$.x"}}, "crm_api.requests.upsert.erors_path", "unknown key"),
    ({"upsrt": UPSERT}, "crm_api.requests.upsrt", "unknown operation"),
    ({"upsert": {**UPSERT, "per_record": "yes"}}, "crm_api.requests.upsert.per_record", "must be a bool"),
    ({"upsert": {**UPSERT, "ok_statuses": [404, "x"]}}, "crm_api.requests.upsert.ok_statuses", "status codes"),
    ({}, "crm_api.requests", "must map operations"),
])
def test_config_errors_name_the_file_destination_and_key(requests: dict[str, Any], location: str,
                                                         message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        HttpDestination("crm_api", {"type": "http", "base_url": "https://api.example.com", "requests": requests})
    assert caught.value.location == f"destinations.yml: {location}"
    assert message in str(caught.value)


def test_base_url_must_be_http_and_requests_are_required() -> None:
    with pytest.raises(ConfigError, match="http:// or https://"):
        HttpDestination("crm_api", {"type": "http", "base_url": "ftp://x", "requests": {"upsert": UPSERT}})
    with pytest.raises(ConfigError, match="required key 'requests'"):
        check_config(HttpDestination, "crm_api", {"type": "http", "base_url": "https://x"}, "destinations.yml")


def test_check_target_needs_the_operations_of_the_mode() -> None:
    dest = api(recording()[1])
    dest.check_target(TARGET)
    mirror = SyncTarget("s", "contacts", Mode.MIRROR, TARGET.fields, ("email",))
    with pytest.raises(ConfigError, match=r"mode 'mirror' needs requests.delete"):
        dest.check_target(mirror)
    with pytest.raises(ConfigError, match="key_field 'mail' is not a field"):
        api(recording()[1], {"upsert": {**UPSERT, "key_field": "mail"}}).check_target(TARGET)


# -- requests -----------------------------------------------------------------------------------


def test_a_batch_is_one_request_rendered_from_the_template() -> None:
    seen, handler = recording(body={"errors": []})
    assert write(api(handler), people("a@x.io", "b@x.io")) == BatchResult()
    [request] = seen
    assert request.method == "POST" and str(request.url) == "https://api.example.com/v2/contacts/batch"
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"sync": "people__api__contacts", "contacts": [
        {"email": "a@x.io", "name": "N0", "since": "2024-05-01"},
        {"email": "b@x.io", "name": "N1", "since": "2024-05-02"}]}


def test_tojson_keeps_characters_an_html_filter_would_escape() -> None:
    seen, handler = recording()
    record = Record("1", {"email": "a&b@x.io", "name": "<O'Neil>", "since": None})
    write(api(handler), Batch(Operation.UPSERT, [record]))
    assert b"<O'Neil>" in seen[0].content and b"a&b@x.io" in seen[0].content


def test_default_bodies_and_per_record_paths() -> None:
    seen, handler = recording()
    requests = {"upsert": {"method": "PUT", "path": "/contacts/{{ record.email | urlencode }}", "per_record": True},
                "delete": {"method": "DELETE", "path": "/contacts/{{ record.email }}", "per_record": True}}
    dest = api(handler, requests)
    write(dest, people("a@x.io", "b c@x.io"))
    write(dest, Batch(Operation.DELETE, [Record("0", {"email": "a@x.io"})]))
    assert [(r.method, r.url.raw_path) for r in seen] == [
        ("PUT", b"/v2/contacts/a%40x.io"), ("PUT", b"/v2/contacts/b%20c%40x.io"), ("DELETE", b"/v2/contacts/a@x.io")]
    assert json.loads(seen[0].content) == {"email": "a@x.io", "name": "N0", "since": "2024-05-01"}
    assert seen[2].content == b""


def test_templates_see_the_identity_a_moved_record_was_last_sent_with() -> None:
    seen, handler = recording()
    requests = {"upsert": {"method": "PUT", "path": "/contacts/{{ (previous or record).email | urlencode }}",
                           "per_record": True}}
    moved = Record("1", {"email": "new@x.io", "name": "Ada", "since": None}, previous={"email": "old@x.io"})
    write(api(handler, requests), Batch(Operation.UPSERT, [moved, Record("2", {"email": "b@x.io", "name": "B"})]))
    assert [r.url.raw_path for r in seen] == [b"/v2/contacts/old%40x.io", b"/v2/contacts/b%40x.io"]
    assert json.loads(seen[0].content)["email"] == "new@x.io"  # the new value goes in the body
    body = '{"contacts": {{ records | tojson }}, "moves": {{ previous_by_key | tojson }}}'
    batch = {"upsert": {**UPSERT, "body": body}}
    write(api(handler, batch), Batch(Operation.UPSERT, [moved]))
    assert json.loads(seen[-1].content)["moves"] == {"1": {"email": "old@x.io"}}


def test_a_template_that_does_not_render_json_fails_the_sync_naming_the_key() -> None:
    dest = api(recording()[1], {"upsert": {**UPSERT, "body": "{{ records }}"}})
    with pytest.raises(DestinationError, match=r"crm_api.requests.upsert.body did not render to JSON"):
        write(dest, people("a@x.io"))


def test_an_unknown_field_in_a_template_names_the_key_and_the_fields() -> None:
    dest = api(recording()[1], {"upsert": {**UPSERT, "path": "/c/{{ record.mail }}", "per_record": True}})
    with pytest.raises(DestinationError, match=r"requests.upsert.path: .*mail.*record fields: email, name, since"):
        write(dest, people("a@x.io"))


def test_an_absolute_url_in_a_path_is_refused() -> None:
    dest = api(recording()[1], {"upsert": {**UPSERT, "path": "https://elsewhere.example.com/x"}})
    with pytest.raises(DestinationError, match="must be a path under base_url"):
        write(dest, people("a@x.io"))


def test_unencodable_records_are_rejected_before_sending() -> None:
    seen, handler = recording()
    batch = Batch(Operation.UPSERT, [Record("1", {"email": "a@x.io", "name": float("nan"), "since": None}),
                                     Record("2", {"email": "b@x.io", "name": "B", "since": Decimal("1.5")})])
    result = write(api(handler), batch)
    assert set(result.rejected) == {"1"} and "name" in result.rejected["1"]
    assert len(json.loads(seen[0].content)["contacts"]) == 1


# -- responses ----------------------------------------------------------------------------------


def test_errors_are_attributed_by_key_and_others_acknowledged() -> None:
    body = {"errors": [{"email": "b@x.io", "message": "invalid email domain"}]}
    result = write(api(recording(body=body)[1]), people("a@x.io", "b@x.io", "c@x.io"))
    assert result.rejected == {"1": "invalid email domain"} and result.skipped == {}


def test_errors_are_attributed_by_index_and_skipped_items_are_skipped() -> None:
    body = {"failed": [{"i": 2, "error": {"text": "too long"}}], "ignored": [{"i": "0", "error": {"text": "unknown"}}]}
    requests = {"upsert": {"path": "/c", "errors_path": "$.failed[*]", "skipped_path": "$.ignored[*]",
                           "error_index_path": "$.i", "error_message_path": "$.error.text"}}
    result = write(api(recording(body=body)[1], requests), people("a@x.io", "b@x.io", "c@x.io"))
    assert result.rejected == {"2": "too long"} and result.skipped == {"0": "unknown"}


def test_an_error_that_names_no_record_rejects_the_whole_request() -> None:
    body = {"errors": [{"email": "zzz@x.io", "message": "quota"}]}
    result = write(api(recording(body=body)[1]), people("a@x.io", "b@x.io"))
    assert result.rejected == {"0": "quota", "1": "quota"}


def test_success_path_must_find_a_true_value() -> None:
    requests = {"upsert": {**UPSERT, "success_path": "$.ok", "error_message_path": "$.error"}}
    result = write(api(recording(body={"ok": False, "error": "list is archived"})[1], requests), people("a@x.io"))
    assert result.rejected == {"0": "no success in the response: HTTP 200 OK: list is archived"}
    assert write(api(recording(body={"ok": True})[1], requests), people("a@x.io")) == BatchResult()


def test_per_record_4xx_rejects_that_record_with_the_api_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("b@x.io"):
            return httpx.Response(422, json={"message": "name is required"})
        if request.url.path.endswith("c@x.io"):
            return httpx.Response(404, json={"message": "no such contact"})
        return httpx.Response(200, json={})

    requests = {"upsert": {"method": "PATCH", "path": "/c/{{ record.email }}", "per_record": True,
                           "error_message_path": "$.message", "skip_statuses": [404]}}
    result = write(api(handler, requests), people("a@x.io", "b@x.io", "c@x.io"))
    assert result.rejected == {"1": "HTTP 422 Unprocessable Entity: name is required"}
    assert result.skipped == {"2": "HTTP 404 Not Found: no such contact"}


def test_ok_statuses_acknowledge_and_other_4xx_reject_the_batch() -> None:
    requests = {"upsert": {**UPSERT, "ok_statuses": [409]}}
    assert write(api(recording(409, {"message": "exists"})[1], requests), people("a@x.io")) == BatchResult()
    result = write(api(recording(400, {"message": "bad"})[1]), people("a@x.io", "b@x.io"))
    assert result.rejected == {"0": "HTTP 400 Bad Request: bad", "1": "HTTP 400 Bad Request: bad"}


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_server_errors_are_retryable(status: int) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"Retry-After": "3"}, text=f"token {TOKEN} rejected")

    with pytest.raises(RetryableDestinationError) as caught:
        write(api(handler), people("a@x.io"))
    assert TOKEN not in str(caught.value)


def test_the_delivery_engine_retries_a_throttled_batch() -> None:
    answers = [httpx.Response(429, headers={"Retry-After": "0"}), httpx.Response(200, json={"errors": []})]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    dest = api(handler)

    async def run() -> BatchResult:
        await dest.open(TARGET)
        try:
            policy = RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0)
            return await deliver(dest, TARGET, people("a@x.io"), limiter=None, policy=policy)
        finally:
            await dest.close()

    assert asyncio.run(run()) == BatchResult()
    assert len(seen) == 2 and seen[0].headers["Idempotency-Key"] == seen[1].headers["Idempotency-Key"]


def test_bad_credentials_fail_the_sync_and_redirects_are_not_acknowledged() -> None:
    with pytest.raises(DestinationError, match="check the credentials") as caught:
        write(api(recording(401, {"message": f"bad token {TOKEN}"})[1]), people("a@x.io"))
    assert not isinstance(caught.value, RetryableDestinationError) and TOKEN not in str(caught.value)
    with pytest.raises(DestinationError, match="redirects are not followed"):
        write(api(recording(302, {})[1]), people("a@x.io"))


def test_missing_operation_at_run_time_names_the_key() -> None:
    with pytest.raises(DestinationError, match=r"has no crm_api.requests.delete"):
        write(api(recording()[1]), Batch(Operation.DELETE, [Record("0", {"email": "a@x.io"})]))


def test_describe_request_and_estimates_make_no_call() -> None:
    seen, handler = recording()
    requests = {"upsert": UPSERT, "delete": {"method": "DELETE", "path": "/c/{{ record.email }}", "per_record": True}}
    dest = api(handler, requests, base_url=f"https://api.example.com/v2?api_key={TOKEN}")
    described = dest.describe_request(TARGET, people("a@x.io"))
    assert described["requests"][0]["body"]["contacts"][0]["email"] == "a@x.io"
    assert TOKEN not in json.dumps(described)
    assert dest.estimate_requests(Operation.DELETE, 7) == 7 and dest.estimate_requests(Operation.UPSERT, 250) == 3
    assert seen == []
    assert TOKEN in dest.secrets()
