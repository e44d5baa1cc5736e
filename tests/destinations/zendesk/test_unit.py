"""The ``zendesk`` destination: formatting, config, job polling and per-item results.

Job and result edge cases the emulator does not produce use ``httpx.MockTransport``; the rest runs
against ``ZendeskEmulator`` over real HTTP.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, RateLimit, Record, SyncTarget
from dbt_activate.destinations.zendesk.destination import ZendeskDestination
from dbt_activate.destinations.zendesk.payload import FormatError, build_item, clear_item
from dbt_activate.errors import ConfigError, DestinationError, RetryableDestinationError
from dbt_activate.testing.zendesk.emulator import ZendeskEmulator
from tests.support.delivery import write_batches

TOKEN = "zd-unit-token-0123456789"
AGENT = "ops@example.com"


def target(obj: str = "users", mode: Mode = Mode.UPSERT, identity: str = "external_id",
           fields: tuple[str, ...] = ("external_id", "name", "email", "plan")) -> SyncTarget:
    return SyncTarget("s", obj, mode, tuple(FieldSpec(f, f) for f in fields), (identity,))


def run(dest: ZendeskDestination, tgt: SyncTarget, operation: Operation, records: list[Record]) -> BatchResult:
    return write_batches(dest, tgt, Batch(operation, records))[0]


def user(i: int, **changes: Any) -> Record:
    return Record(str(i), {"external_id": f"E{i}", "name": f"User {i}", "email": f"u{i}@example.com",
                           "plan": "pro", **changes})


@pytest.fixture
def emu() -> Iterator[ZendeskEmulator]:
    with ZendeskEmulator(token=TOKEN, email=AGENT, user_fields={"plan": "text"},
                         organization_fields={"tier": "text"}) as emulator:
        yield emulator
    assert emulator.errors == []


def config(emu: ZendeskEmulator, **extra: Any) -> dict[str, Any]:
    return {"type": "zendesk", "base_url": emu.base_url, "email": AGENT, "api_token": TOKEN,
            "job_poll_interval": 0, **extra}


# -- formatting ----------------------------------------------------------------------------------


def test_items_put_standard_properties_on_top_and_the_rest_in_custom_fields() -> None:
    item = build_item("users", {"external_id": 42, "name": "Ada", "phone": None, "tags": None,
                                "signed_up": dt.date(2024, 5, 1), "score": Decimal("1.50"), "email": None},
                      "external_id")
    assert item == {"external_id": "42", "name": "Ada", "phone": None, "tags": [],
                    "user_fields": {"signed_up": "2024-05-01", "score": 1.5}}
    org = build_item("organizations", {"external_id": "o1", "name": "Acme", "tier": "gold"}, "external_id")
    assert org == {"external_id": "o1", "name": "Acme", "organization_fields": {"tier": "gold"}}


def test_a_nan_or_an_empty_identity_is_refused_before_sending() -> None:
    with pytest.raises(FormatError, match="'score'"):
        build_item("users", {"external_id": "e", "score": float("nan")}, "external_id")
    with pytest.raises(FormatError, match="empty"):
        build_item("users", {"external_id": None, "name": "x"}, "external_id")


def test_clear_empties_mapped_fields_but_keeps_name_email_and_identity() -> None:
    assert clear_item("users", "external_id", "E1", ("external_id", "name", "email", "phone", "tags", "plan")) == {
        "external_id": "E1", "phone": None, "tags": [], "user_fields": {"plan": None}}


# -- config --------------------------------------------------------------------------------------


def test_subdomain_gives_the_base_url_and_api_token_basic_auth() -> None:
    dest = ZendeskDestination("zd", {"type": "zendesk", "subdomain": "acme", "email": AGENT, "api_token": TOKEN})
    assert dest.base_url == "https://acme.zendesk.com"
    assert dest._authorization == "Basic " + base64.b64encode(f"{AGENT}/token:{TOKEN}".encode()).decode()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"api_token": None}, "api_token"),
    ({"subdomain": "not a domain"}, "subdomain"),
    ({"batch_size": 101}, "batch_size"),
    ({"job_poll_interval": -1}, "job_poll_interval"),
])
def test_bad_config_is_a_config_error(overrides: dict[str, Any], message: str) -> None:
    base = {"type": "zendesk", "subdomain": "acme", "email": AGENT, "api_token": TOKEN}
    with pytest.raises(ConfigError, match=message):
        ZendeskDestination("zd", {**base, **overrides})


def test_email_identity_serves_upsert_only_and_organizations_need_external_id() -> None:
    dest = ZendeskDestination("zd", {"type": "zendesk", "subdomain": "acme", "oauth_token": TOKEN})
    dest.check_target(target(identity="email"))
    with pytest.raises(ConfigError, match="external_id"):
        dest.check_target(target(identity="email", mode=Mode.MIRROR))
    with pytest.raises(ConfigError, match="external_id"):
        dest.check_target(target("organizations", identity="email"))
    with pytest.raises(ConfigError, match="tickets"):
        dest.check_target(target("tickets"))


@pytest.mark.parametrize("on_delete", ["delete", "clear"])
def test_email_identity_with_on_delete_is_caught_before_the_run(on_delete: str) -> None:
    # destroy_many/update_many do not take emails: every remove batch would fail at write time.
    dest = ZendeskDestination("zd", {"type": "zendesk", "subdomain": "acme", "oauth_token": TOKEN})
    tgt = SyncTarget("people_zd", "users", Mode.UPSERT, (FieldSpec("email", "email"),), ("email",),
                     options={"on_delete": on_delete})
    with pytest.raises(ConfigError, match=f"people_zd: on_delete: on_delete {on_delete} needs"):
        dest.check_target(tgt)
    dest.check_target(SyncTarget("people_zd", "users", Mode.UPSERT, (FieldSpec("email", "email"),), ("email",),
                                 options={"on_delete": "ignore"}))


def test_the_default_rate_limit_is_the_lowest_plans() -> None:
    # Team, 200/min: a default above an account's plan would be throttled on every run.
    assert ZendeskDestination.rate_limit == RateLimit(200, 60.0)


# -- against the emulator ------------------------------------------------------------------------


def test_a_job_is_polled_until_it_completes(emu: ZendeskEmulator) -> None:
    emu.job_polls = 3
    assert run(ZendeskDestination("zd", config(emu)), target(), Operation.UPSERT, [user(1), user(2)]) == BatchResult()
    assert [u["external_id"] for u in emu.records("users")] == ["E1", "E2"]
    polls = sum(n for p, n in emu.counters.by_path.items() if p.startswith("/api/v2/job_statuses/"))
    assert polls == 4  # three "queued" reads, then "completed"


def test_upsert_by_email_updates_the_user_with_that_email(emu: ZendeskEmulator) -> None:
    [existing] = emu.add_records("users", [{"name": "Old", "email": "u1@example.com"}])
    tgt = target(identity="email", fields=("email", "name", "plan"))
    record = Record("1", {"email": "U1@example.com", "name": "New", "plan": "pro"})
    assert run(ZendeskDestination("zd", config(emu)), tgt, Operation.UPSERT, [record]) == BatchResult()
    [stored] = emu.records("users")
    assert (stored["id"], stored["name"], stored["user_fields"]["plan"]) == (existing, "New", "pro")


def test_oauth_token_is_sent_as_bearer(emu: ZendeskEmulator) -> None:
    emu.oauth_token = "oauth-" + TOKEN
    dest = ZendeskDestination("zd", {"type": "zendesk", "base_url": emu.base_url, "oauth_token": emu.oauth_token,
                                     "job_poll_interval": 0})
    assert run(dest, target(), Operation.UPSERT, [user(1)]) == BatchResult()
    assert len(emu.records("users")) == 1


def test_organizations_are_upserted_and_deleted_by_external_id(emu: ZendeskEmulator) -> None:
    # No organizations/create_or_update_many exists (the emulator 404s it, as Zendesk does): show_many
    # finds the existing ones by external id, update_many updates them, create_many adds the rest.
    [existing] = emu.add_records("organizations", [{"name": "Old name", "external_id": "o1"}])
    tgt = target("organizations", Mode.MIRROR, fields=("external_id", "name", "tier"))
    dest = ZendeskDestination("zd", config(emu))
    orgs = [Record(str(i), {"external_id": f"O{i}", "name": f"Org {i}", "tier": "gold"}) for i in (1, 2)]
    assert run(dest, tgt, Operation.UPSERT, orgs) == BatchResult()
    assert [(o["id"] == existing, o["name"], o["organization_fields"]["tier"])
            for o in emu.records("organizations")] == [(True, "Org 1", "gold"), (False, "Org 2", "gold")]
    writes = {path: n for path, n in emu.counters.by_path.items() if not path.startswith("/api/v2/job_statuses/")}
    assert writes == {"/api/v2/organizations/show_many.json": 1, "/api/v2/organizations/update_many.json": 1,
                      "/api/v2/organizations/create_many.json": 1}
    gone = [Record("1", {"external_id": "O1"}), Record("9", {"external_id": "O9"})]
    assert run(dest, tgt, Operation.DELETE, gone) == BatchResult()  # O9 was never there: acknowledged
    assert [o["external_id"] for o in emu.records("organizations")] == ["O2"]


def test_an_organization_that_fails_to_be_created_is_rejected_with_zendesks_reason(emu: ZendeskEmulator) -> None:
    tgt = target("organizations", fields=("external_id", "name"))
    records = [Record("1", {"external_id": "o1"}), Record("2", {"external_id": "o2", "name": "Two"}),
               Record("3", {"external_id": "a,b", "name": "Comma"})]
    result = run(ZendeskDestination("zd", config(emu)), tgt, Operation.UPSERT, records)
    assert result.rejected == {
        "1": "OrganizationCreateError: Name: cannot be blank",
        "3": "external_id 'a,b' cannot be looked up through organizations/show_many (its external_ids are "
             "comma-separated)"}
    assert [o["external_id"] for o in emu.records("organizations")] == ["o2"]


def test_update_names_users_and_organizations_by_external_id_in_update_many(emu: ZendeskEmulator) -> None:
    # The documented batch update: {"organizations": [{"external_id": "2", "notes": …}]} (Zendesk's
    # organizations and users pages name items by external_id in their update_many samples).
    emu.add_records("organizations", [{"name": "Acme", "external_id": "o1"}])
    tgt = target("organizations", Mode.UPDATE, fields=("external_id", "notes"))
    dest = ZendeskDestination("zd", config(emu))
    described = dest.describe_request(tgt, Batch(Operation.UPDATE, [Record("1", {"external_id": "o1", "notes": "n"})]))
    assert (described["method"], described["url"], described["body"]) == (
        "PUT", f"{emu.base_url}/api/v2/organizations/update_many.json",
        {"organizations": [{"external_id": "o1", "notes": "n"}]})
    result = run(dest, tgt, Operation.UPDATE, [Record("1", {"external_id": "O1", "notes": "n"}),
                                               Record("2", {"external_id": "o2", "notes": "x"})])
    assert result == BatchResult(skipped={"2": "no such Zendesk record (RecordNotFound: no organization with "
                                               "external_id 'o2')"})
    assert [o["notes"] for o in emu.records("organizations")] == ["n"]


def test_a_throttled_request_is_retryable_after_retry_after(emu: ZendeskEmulator) -> None:
    emu.rate_limit = (5, 60)
    emu.inject("throttle")
    with pytest.raises(RetryableDestinationError) as caught:
        run(ZendeskDestination("zd", config(emu)), target(), Operation.UPSERT, [user(1)])
    assert caught.value.retry_after == 60.0
    assert TOKEN not in str(caught.value)


def test_an_empty_identity_is_rejected_and_an_empty_batch_never_sent(emu: ZendeskEmulator) -> None:
    dest = ZendeskDestination("zd", config(emu))
    assert run(dest, target(), Operation.UPSERT, [user(1, external_id=None)]).rejected == {
        "1": "identity field 'external_id' is empty: the Zendesk user cannot be found"}
    assert emu.counters.by_path.get("/api/v2/users/create_or_update_many.json") is None


# -- job edge cases (MockTransport) --------------------------------------------------------------


def mocked(job_answers: list[dict[str, Any]], submit: Callable[[httpx.Request], httpx.Response] | None = None,
           **extra: Any) -> ZendeskDestination:
    answers = iter(job_answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/job_statuses/"):
            return httpx.Response(200, json={"job_status": next(answers)})
        if submit is not None:
            return submit(request)
        return httpx.Response(200, json={"job_status": {"id": "j1", "status": "queued"}})

    return ZendeskDestination("zd", {"type": "zendesk", "subdomain": "acme", "email": AGENT, "api_token": TOKEN,
                                     "job_poll_interval": 0, **extra}, transport=httpx.MockTransport(handler))


def test_results_are_matched_by_index_and_failures_reject_their_record() -> None:
    results = [{"index": 1, "status": "Failed", "error": "UserUpdateError", "details": "Phone: is invalid"},
               {"index": 0, "status": "Updated", "id": 5}]
    dest = mocked([{"id": "j1", "status": "completed", "results": results}])
    result = run(dest, target(), Operation.UPSERT, [user(1), user(2)])
    assert result == BatchResult(rejected={"2": "UserUpdateError: Phone: is invalid"})


def test_a_result_with_success_false_rejects_its_record_with_its_errors() -> None:
    results = [{"id": 1, "action": "update", "success": False, "errors": "PermissionDenied"}]
    dest = mocked([{"id": "j1", "status": "completed", "results": results}])
    assert run(dest, target(mode=Mode.UPDATE), Operation.UPDATE, [user(1)]) == BatchResult(
        rejected={"1": "PermissionDenied"})


def test_update_of_an_unknown_record_is_skipped_and_delete_of_one_acknowledged() -> None:
    missing = [{"status": "Failed", "error": "RecordNotFound", "details": "no user"}]
    done = {"id": "j1", "status": "completed", "results": missing}
    skipped = run(mocked([done]), target(mode=Mode.UPDATE), Operation.UPDATE, [user(1)])
    assert list(skipped.skipped) == ["1"] and not skipped.rejected
    assert run(mocked([done]), target(mode=Mode.MIRROR), Operation.DELETE, [user(1)]) == BatchResult()


def test_a_job_that_accounts_for_fewer_records_confirms_nothing() -> None:
    dest = mocked([{"id": "j1", "status": "completed", "results": [{"status": "Created", "id": 1}]}])
    with pytest.raises(DestinationError, match="1 results for 2 records"):
        run(dest, target(), Operation.UPSERT, [user(1), user(2)])


def test_a_failed_or_slow_job_is_retryable() -> None:
    with pytest.raises(RetryableDestinationError, match="ended failed"):
        run(mocked([{"id": "j1", "status": "failed", "message": "boom"}]), target(), Operation.UPSERT, [user(1)])
    slow = mocked([{"id": "j1", "status": "working"}] * 3, job_timeout=0)
    with pytest.raises(RetryableDestinationError, match="job_timeout"):
        run(slow, target(), Operation.UPSERT, [user(1)])


def test_a_whole_request_refused_rejects_every_record_with_zendesks_reason() -> None:
    def submit(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"error": "RecordInvalid", "description": "Record validation errors",
                                         "details": {"users": "bad"}})

    result = run(mocked([], submit), target(), Operation.UPSERT, [user(1), user(2)])
    reason = "HTTP 422 RecordInvalid: Record validation errors {\"users\": \"bad\"}"
    assert result == BatchResult(rejected={"1": reason, "2": reason})


def test_delete_sends_external_ids_and_refuses_one_with_a_comma() -> None:
    seen: list[httpx.Request] = []

    def submit(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"job_status": {"id": "j1", "status": "queued"}})

    dest = mocked([{"id": "j1", "status": "completed", "results": [{"status": "Deleted", "id": 1}]}], submit)
    result = run(dest, target(mode=Mode.MIRROR), Operation.DELETE,
                 [Record("1", {"external_id": "E1"}), Record("2", {"external_id": "a,b"})])
    assert list(result.rejected) == ["2"]
    assert seen[0].method == "DELETE" and seen[0].url.params["external_ids"] == "E1"


def test_describe_request_shows_the_bulk_body_and_the_polling() -> None:
    dest = ZendeskDestination("zd", {"type": "zendesk", "subdomain": "acme", "email": AGENT, "api_token": TOKEN})
    described = dest.describe_request(target(), Batch(Operation.UPSERT, [user(1)]))
    assert described["url"] == "https://acme.zendesk.com/api/v2/users/create_or_update_many.json"
    assert json.dumps(described["body"]) == json.dumps({"users": [
        {"external_id": "E1", "name": "User 1", "email": "u1@example.com", "user_fields": {"plan": "pro"}}]})
    assert "job_statuses" in described["then"]
    tgt = target("organizations", fields=("external_id", "name"))
    orgs = dest.describe_request(tgt, Batch(Operation.UPSERT, [Record("1", {"external_id": "o1", "name": "A"}),
                                                               Record("2", {"external_id": "o2", "name": "B"})]))
    assert (orgs["method"], orgs["url"], orgs["params"]) == (
        "GET", "https://acme.zendesk.com/api/v2/organizations/show_many.json", {"external_ids": "o1,o2"})
    assert "update_many" in orgs["then"] and "create_many" in orgs["then"]


def test_a_throttled_job_poll_keeps_polling_instead_of_resubmitting_the_bulk_write() -> None:
    # A 429 on GET /job_statuses must not escape as retryable: delivery would re-POST the bulk
    # request (a second job) although the first one was accepted.
    posts: list[httpx.Request] = []
    polls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(request)
            return httpx.Response(200, json={"job_status": {"id": "j1", "status": "queued"}})
        polls.append(request)
        if len(polls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "APIRateLimitExceeded"})
        return httpx.Response(200, json={"job_status": {"id": "j1", "status": "completed",
                                                         "results": [{"index": 0, "id": 1, "status": "Created"}]}})

    dest = ZendeskDestination("zd", {"type": "zendesk", "base_url": "http://zd.test", "email": AGENT,
                                     "api_token": TOKEN, "job_poll_interval": 0},
                              transport=httpx.MockTransport(handler))
    assert run(dest, target(), Operation.UPSERT, [user(1)]) == BatchResult()
    assert (len(posts), len(polls)) == (1, 2)


def test_a_job_poll_failing_past_job_timeout_leaves_the_batch_unconfirmed_without_resending() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"job_status": {"id": "j1", "status": "queued"}})
        return httpx.Response(503, json={"error": "ServiceUnavailable"})

    dest = ZendeskDestination("zd", {"type": "zendesk", "base_url": "http://zd.test", "email": AGENT,
                                     "api_token": TOKEN, "job_poll_interval": 0, "job_timeout": 0.05},
                              transport=httpx.MockTransport(handler))
    with pytest.raises(DestinationError, match="not confirmed") as caught:
        run(dest, target(), Operation.UPSERT, [user(1)])
    assert not isinstance(caught.value, RetryableDestinationError)


# -- references: organization_id -----------------------------------------------------------------


def test_written_records_report_their_zendesk_ids_and_users_link_to_organizations(emu: ZendeskEmulator) -> None:
    """The ids other syncs link to come from the job results; a NULL organization_id unlinks the user."""
    orgs = target("organizations", fields=("external_id", "name"))
    written = run(ZendeskDestination("zd", config(emu)), orgs, Operation.UPSERT,
                  [Record("o1", {"external_id": "o1", "name": "Acme"}),
                   Record("o2", {"external_id": "o2", "name": "Initech"})])
    by_external = {o["external_id"]: str(o["id"]) for o in emu.records("organizations")}
    assert written.ids == {"o1": by_external["o1"], "o2": by_external["o2"]}
    again = run(ZendeskDestination("zd", config(emu)), orgs, Operation.UPSERT,
                [Record("o1", {"external_id": "o1", "name": "Acme Ltd"})])  # update_many reports it too
    assert again.ids == {"o1": by_external["o1"]}

    users = target(fields=("external_id", "name", "email", "organization_id"))
    assert ZendeskDestination.references["users"] == {"organization_id": "organizations"}
    result = run(ZendeskDestination("zd", config(emu)), users, Operation.UPSERT,
                 [user(1, organization_id=by_external["o1"]), user(2, organization_id=by_external["o2"])])
    assert result.rejected == {} and set(result.ids) == {"1", "2"}
    assert {u["external_id"]: u["organization_id"] for u in emu.records("users")} == {
        "E1": int(by_external["o1"]), "E2": int(by_external["o2"])}

    run(ZendeskDestination("zd", config(emu)), users, Operation.UPSERT,
        [user(1, organization_id=by_external["o2"]), user(2, organization_id=None)])  # moved; unlinked
    assert {u["external_id"]: u["organization_id"] for u in emu.records("users")} == {
        "E1": int(by_external["o2"]), "E2": None}
