"""MailchimpDestination: request shapes and per-member results against httpx.MockTransport; the
consent rule (an existing member's status is never changed) against MailchimpEmulator over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.base import load_destination_type
from dbt_activate.destinations.mailchimp.destination import MailchimpDestination, merge_value
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from dbt_activate.testing.mailchimp.emulator import MailchimpEmulator
from tests.support.delivery import recording as support_recording
from tests.support.delivery import write_batches

KEY = "0123456789abcdef0123456789abcdef-us6"
Handler = Callable[[httpx.Request], httpx.Response]
FIELDS = ("email", "fname", "score", "tags")


def target(mode: Mode = Mode.UPSERT, identity: Sequence[str] = ("email",), fields: Sequence[str] = FIELDS
           ) -> SyncTarget:
    return SyncTarget("people__mailchimp", "L1", mode, tuple(FieldSpec(f, f) for f in fields), tuple(identity))


def person(i: int, **changes: Any) -> Record:
    return Record(str(i), {"email": f"U{i}@Example.com", "fname": f"Name {i}", "score": i, "tags": ["vip"], **changes})


def mailchimp(handler: Handler, **config: Any) -> MailchimpDestination:
    return MailchimpDestination("news", {"type": "mailchimp", "api_key": KEY, **config},
                                transport=httpx.MockTransport(handler))


def write(destination: MailchimpDestination, batch: Batch, tgt: SyncTarget | None = None) -> BatchResult:
    return write_batches(destination, tgt or target(), batch, open_first=False)[0]


def recording(*responses: httpx.Response) -> tuple[Handler, list[httpx.Request]]:
    return support_recording(*responses, json={"new_members": [], "errors": []})


def md5(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


# -- config ---------------------------------------------------------------------------------------


def test_registered_under_its_kind() -> None:
    assert load_destination_type("mailchimp") is MailchimpDestination
    assert MailchimpDestination.batch_size == 500 and MailchimpDestination.max_concurrency == 10
    assert MailchimpDestination.rate_limit is None  # connections are limited, not requests


@pytest.mark.parametrize(("config", "expected"), [
    ({"api_key": "abc-us6"}, "https://us6.api.mailchimp.com"),
    ({"api_key": "abc-US21"}, "https://us21.api.mailchimp.com"),
    ({"api_key": "abc", "base_url": "http://127.0.0.1:9/3.0/"}, "http://127.0.0.1:9"),
])
def test_base_url_comes_from_the_key_suffix_unless_given(config: dict[str, Any], expected: str) -> None:
    assert MailchimpDestination("news", {"type": "mailchimp", **config}).base_url == expected


@pytest.mark.parametrize(("config", "where"), [
    ({"api_key": "no-data-center-"}, "news.api_key"),
    ({"api_key": "nodc"}, "news.api_key"),
    ({"api_key": KEY, "base_url": "ftp://x"}, "news.base_url"),
    ({"api_key": KEY, "batch_size": 501}, "news.batch_size"),
    ({"api_key": KEY, "max_concurrency": 11}, "news.max_concurrency"),
    ({"api_key": KEY, "status": "subscribd"}, "news.status"),
])
def test_bad_config_names_the_key(config: dict[str, Any], where: str) -> None:
    with pytest.raises(ConfigError) as caught:
        MailchimpDestination("news", {"type": "mailchimp", **config})
    assert caught.value.location == where


def test_the_identity_must_be_one_field() -> None:
    with pytest.raises(ConfigError, match="e-mail address"):
        mailchimp(recording()[0]).check_target(target(identity=("email", "fname")))


# -- requests -------------------------------------------------------------------------------------


def test_upsert_adds_new_members_in_one_batch_subscribe_that_never_updates_existing_ones() -> None:
    handler, seen = recording()
    assert write(mailchimp(handler), Batch(Operation.UPSERT, [person(1), person(2, tags="a, b")])) == BatchResult()
    (request,) = seen
    assert (request.method, request.url.host, request.url.path) == ("POST", "us6.api.mailchimp.com", "/3.0/lists/L1")
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(f"dbt-activate:{KEY}".encode()).decode()
    assert json.loads(request.content) == {"update_existing": False, "members": [
        {"email_address": "U1@Example.com", "status": "subscribed", "merge_fields": {"FNAME": "Name 1", "SCORE": 1},
         "tags": ["vip"]},
        {"email_address": "U2@Example.com", "status": "subscribed", "merge_fields": {"FNAME": "Name 2", "SCORE": 2},
         "tags": ["a", "b"]}]}


def test_a_null_merge_field_is_sent_empty_only_when_the_sync_clears_nulls() -> None:
    # With `nulls: keep` the pipeline leaves NULLs out before write(); what reaches it is cleared.
    handler, seen = recording()
    batch = Batch(Operation.UPSERT, [person(1, fname=None, tags=None)])
    assert write(mailchimp(handler), batch) == BatchResult()
    (member,) = json.loads(seen[0].content)["members"]
    assert member["merge_fields"] == {"FNAME": "", "SCORE": 1} and "tags" not in member


def test_no_batch_subscribe_ever_updates_existing_members() -> None:
    # update_existing: true would apply `status` to existing members: an unsubscribe undone.
    handler, seen = recording()
    for operation in (Operation.CREATE, Operation.UPSERT):
        write(mailchimp(handler, sync_tags=True), Batch(operation, [person(1)]))
    assert [json.loads(r.content)["update_existing"] for r in seen] == [False, False]
    assert not any("sync_tags" in json.loads(r.content) for r in seen)


def test_a_status_column_overrides_the_configured_status() -> None:
    handler, seen = recording()
    tgt = target(fields=("email", "status"))
    write(mailchimp(handler, status="pending"), Batch(Operation.UPSERT, [
        Record("1", {"email": "a@example.com", "status": "unsubscribed"}), Record("2", {"email": "b@example.com"})]),
        tgt)
    assert [m["status"] for m in json.loads(seen[0].content)["members"]] == ["unsubscribed", "pending"]


def test_member_errors_reject_their_records_by_address() -> None:
    answer = httpx.Response(200, json={"new_members": [{"email_address": "u1@example.com"}], "errors": [
        {"email_address": "u2@example.com", "error": "Your merge fields were invalid.", "error_code": "ERROR_GENERIC",
         "field": "SCORE", "field_message": "Please enter a number"}]})
    result = write(mailchimp(recording(answer)[0]), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert result.rejected == {"2": "ERROR_GENERIC: Your merge fields were invalid. (SCORE: Please enter a number)"}


def test_an_existing_member_is_updated_by_put_with_status_if_new_and_no_status() -> None:
    exists = httpx.Response(200, json={"errors": [{"email_address": "U1@Example.com",
                                                   "error_code": "ERROR_CONTACT_EXISTS",
                                                   "error": "U1@Example.com is already a list member."}]})
    stored = httpx.Response(200, json={"email_address": "u1@example.com", "status": "unsubscribed",
                                       "tags": [{"id": 1, "name": "old"}, {"id": 2, "name": "vip"}]})
    handler, seen = recording(exists, stored, httpx.Response(204))
    result = write(mailchimp(handler, status="pending", sync_tags=True), Batch(Operation.UPSERT, [person(1)]))
    assert result == BatchResult()
    subscribe, put, tags = seen
    assert json.loads(subscribe.content)["update_existing"] is False
    assert (put.method, put.url.path) == ("PUT", f"/3.0/lists/L1/members/{md5('u1@example.com')}")
    assert json.loads(put.content) == {"email_address": "U1@Example.com", "status_if_new": "pending",
                                       "merge_fields": {"FNAME": "Name 1", "SCORE": 1}}
    assert (tags.method, tags.url.path) == ("POST", put.url.path + "/tags")
    assert json.loads(tags.content) == {"tags": [{"name": "vip", "status": "active"},
                                                 {"name": "old", "status": "inactive"}]}


def test_a_refused_put_rejects_its_record_with_mailchimps_problem() -> None:
    exists = httpx.Response(200, json={"errors": [{"email_address": "u1@example.com",
                                                   "error_code": "ERROR_CONTACT_EXISTS", "error": "exists"}]})
    refused = httpx.Response(400, json={"title": "Invalid Resource", "detail": "Your merge fields were invalid."})
    result = write(mailchimp(recording(exists, refused)[0]), Batch(Operation.UPSERT, [person(1, tags=None)]))
    assert result.rejected == {"1": "Invalid Resource: Your merge fields were invalid."}


def test_an_existing_member_is_skipped_by_create() -> None:
    answer = httpx.Response(200, json={"errors": [{"email_address": "U1@Example.com",
                                                   "error_code": "ERROR_CONTACT_EXISTS",
                                                   "error": "U1@Example.com is already a list member."}]})
    result = write(mailchimp(recording(answer)[0]), Batch(Operation.CREATE, [person(1)]))
    assert result.rejected == {} and "already a list member" in result.skipped["1"]


def test_an_error_naming_no_member_rejects_those_not_confirmed() -> None:
    answer = httpx.Response(200, json={"updated_members": [{"email_address": "u1@example.com"}],
                                       "errors": [{"email_address": "", "error": "Something odd"}]})
    result = write(mailchimp(recording(answer)[0]), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert result.rejected == {"2": "Something odd"}


def test_a_refused_request_rejects_every_member_with_the_problem() -> None:
    answer = httpx.Response(400, json={"type": "x", "title": "Invalid Resource", "status": 400,
                                       "detail": "The resource submitted could not be validated.",
                                       "errors": [{"field": "members", "message": "Schema describes array"}]})
    result = write(mailchimp(recording(answer)[0]), Batch(Operation.UPSERT, [person(1), person(2)]))
    assert set(result.rejected) == {"1", "2"}
    assert result.rejected["1"] == ("Invalid Resource: The resource submitted could not be validated. "
                                    "(members: Schema describes array)")


def test_records_that_cannot_be_sent_are_rejected_before_sending() -> None:
    handler, seen = recording()
    result = write(mailchimp(handler), Batch(Operation.UPSERT, [
        person(1), person(2, email="u1@EXAMPLE.com"), person(3, score=float("nan")), person(4, email=" ")]))
    assert set(result.rejected) == {"2", "3", "4"}
    assert "same address" in result.rejected["2"] and "'score'" in result.rejected["3"]
    assert [m["email_address"] for m in json.loads(seen[0].content)["members"]] == ["U1@Example.com"]


def test_delete_archives_each_member_by_its_hash_and_acknowledges_missing_ones() -> None:
    handler, seen = recording(httpx.Response(204), httpx.Response(404, json={"title": "Resource Not Found"}),
                              httpx.Response(400, json={"title": "Invalid Resource", "detail": "nope"}))
    records = [Record(str(i), {"email": f"U{i}@Example.com"}) for i in (1, 2, 3)]
    result = write(mailchimp(handler, max_concurrency=1), Batch(Operation.DELETE, records), target(Mode.MIRROR))
    assert [(r.method, r.url.path) for r in seen] == [
        ("DELETE", f"/3.0/lists/L1/members/{md5(f'u{i}@example.com')}") for i in (1, 2, 3)]
    assert result.rejected == {"3": "Invalid Resource: nope"}


def test_clear_patches_the_mapped_merge_fields_to_empty() -> None:
    handler, seen = recording(httpx.Response(200, json={}))
    result = write(mailchimp(handler), Batch(Operation.CLEAR, [Record("1", {"email": "u1@example.com"})]))
    assert result == BatchResult()
    assert seen[0].method == "PATCH" and seen[0].url.path == f"/3.0/lists/L1/members/{md5('u1@example.com')}"
    assert json.loads(seen[0].content) == {"merge_fields": {"FNAME": "", "SCORE": ""}}


def test_throttling_and_server_errors_are_retryable_and_bad_keys_are_not() -> None:
    for status in (429, 503):
        with pytest.raises(RetryableDestinationError):
            write(mailchimp(recording(httpx.Response(status, json={"title": "x"}))[0]),
                  Batch(Operation.UPSERT, [person(1)]))
    echo = httpx.Response(401, json={"title": "API Key Invalid", "detail": f"key {KEY} is invalid"})
    with pytest.raises(DestinationError) as caught:
        write(mailchimp(recording(echo)[0]), Batch(Operation.UPSERT, [person(1)]))
    assert not isinstance(caught.value, RetryableDestinationError)
    assert KEY not in str(caught.value)


def test_describe_request_shows_the_batch_and_per_member_urls() -> None:
    dest = mailchimp(recording()[0])
    upsert = dest.describe_request(target(), Batch(Operation.UPSERT, [person(1)]))
    assert upsert["url"] == "https://us6.api.mailchimp.com/3.0/lists/L1" and upsert["body"]["members"]
    assert "status_if_new" in upsert["then"]
    delete = dest.describe_request(target(Mode.MIRROR), Batch(Operation.DELETE, [Record("1", {"email": "a@b.co"})]))
    assert delete["requests"][0]["method"] == "DELETE" and delete["requests"][0]["url"].endswith(md5("a@b.co"))


@pytest.mark.parametrize(("value", "expected"), [
    ("Ada", "Ada"), (True, "true"), (3, 3), (2.5, 2.5), (Decimal("1.25"), 1.25),
    (dt.date(2024, 5, 1), "2024-05-01"), (dt.datetime(2024, 5, 1, 12, 30), "2024-05-01T12:30:00"),
    (["a", None, "b"], "a, b"), ({"k": 1}, '{"k":1}'),
])
def test_merge_values(value: Any, expected: Any) -> None:
    assert merge_value(value) == expected


# -- the consent rule, against the emulator over HTTP -------------------------------------------


def emulated(emu: MailchimpEmulator, **config: Any) -> MailchimpDestination:
    return MailchimpDestination("news", {"type": "mailchimp", "api_key": KEY, "base_url": emu.base_url,
                                         "timeout": 5, **config})


def audience(emu: MailchimpEmulator) -> dict[str, tuple[str, str, list[str]]]:
    return {m["email_address"]: (m["status"], m["merge_fields"]["FNAME"], [t["name"] for t in m["tags"]])
            for m in emu.members("L1")}


def test_upsert_never_changes_an_existing_members_status() -> None:
    # The unsubscribed member gets the new name but stays unsubscribed; the new member gets the
    # configured status; nobody is rejected.
    with MailchimpEmulator(token=KEY, list_ids=["L1"], merge_fields={"SCORE": "number"}) as emu:
        emu.add_members("L1", [
            {"email_address": "u1@example.com", "status": "unsubscribed", "merge_fields": {"FNAME": "Old"}},
            {"email_address": "u2@example.com", "status": "cleaned", "tags": ["old"]}])
        records = [person(1, email="u1@example.com"), person(2, email="u2@example.com"),
                   person(3, email="u3@example.com")]
        assert write(emulated(emu, status="pending"), Batch(Operation.UPSERT, records)) == BatchResult()
        assert audience(emu) == {"u1@example.com": ("unsubscribed", "Name 1", ["vip"]),
                                 "u2@example.com": ("cleaned", "Name 2", ["old", "vip"]),
                                 "u3@example.com": ("pending", "Name 3", ["vip"])}
        assert emu.errors == []


def test_a_mapped_status_column_is_the_only_way_to_change_an_existing_status() -> None:
    with MailchimpEmulator(token=KEY, list_ids=["L1"]) as emu:
        emu.add_members("L1", [{"email_address": f"u{i}@example.com", "status": "unsubscribed"} for i in (1, 2)])
        tgt = target(fields=("email", "fname", "status"))
        records = [Record("1", {"email": "u1@example.com", "fname": "A", "status": "subscribed"}),
                   Record("2", {"email": "u2@example.com", "fname": "B"})]  # NULL status: left out
        assert write(emulated(emu), Batch(Operation.UPSERT, records), tgt) == BatchResult()
        assert audience(emu) == {"u1@example.com": ("subscribed", "A", []), "u2@example.com": ("unsubscribed", "B", [])}
        assert emu.errors == []


def test_sync_tags_replaces_an_existing_members_tags_through_the_tags_endpoint() -> None:
    with MailchimpEmulator(token=KEY, list_ids=["L1"], merge_fields={"SCORE": "number"}) as emu:
        emu.add_members("L1", [{"email_address": "u1@example.com", "status": "subscribed", "tags": ["old", "vip"]}])
        batch = Batch(Operation.UPSERT, [person(1, email="u1@example.com", tags=["new"])])
        assert write(emulated(emu, sync_tags=True), batch) == BatchResult()
        assert audience(emu)["u1@example.com"][2] == ["new"]
        assert emu.errors == []
