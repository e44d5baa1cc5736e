"""SalesforceDestination with httpx.MockTransport: OAuth and renewal, per-record results, lookups, limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qs

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery import RetryPolicy, deliver
from dbt_activate.destinations.salesforce.destination import SalesforceDestination
from dbt_activate.errors import ConfigError, DestinationError, QuotaExhaustedError, RetryableDestinationError

INSTANCE = "https://acme.my.salesforce.com"
API = "/services/data/v62.0"
FAST = RetryPolicy(max_attempts=4, base_delay=0.0, max_delay=0.0)
T = TypeVar("T")
Route = Callable[[httpx.Request], httpx.Response]


def _field(name: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": type_, "externalId": False, "nillable": True, "updateable": True, **extra}


DESCRIBE = {"name": "Contact", "fields": [
    _field("Id", "id", nillable=False, updateable=False), _field("Ext__c", externalId=True),
    _field("Num__c", "double", externalId=True), _field("LastName", nillable=False), _field("Email", "email"),
    _field("Score__c", "double"), _field("Since__c", "date"), _field("Vip__c", "boolean"),
]}


def ok(n: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": f"003{i:015d}", "success": True, "errors": [], **extra} for i in range(n)]


def failed(code: str, message: str, fields: Sequence[str] = ()) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [{"statusCode": code, "message": message, "fields": list(fields)}]}


def sf_error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json=[{"message": message, "errorCode": code}])


class Org:
    """A scripted org: answers the token endpoint and describe itself, everything else through ``route``.

    ``valid`` holds the bearer tokens it accepts (an empty set expires every session).
    """

    def __init__(self, route: Route | None = None, *, describe: dict[str, Any] = DESCRIBE) -> None:
        self.route = route or (lambda r: httpx.Response(404, json=[{"errorCode": "NOT_FOUND", "message": "?"}]))
        self.describe = describe
        self.requests: list[httpx.Request] = []
        self.valid = {"tok-0"}
        self.issued = 0
        self.usage = "api-usage=10/15000"
        self.token_answer: httpx.Response | None = None
        self.latency = 0.0  # > 0: answers are async, so concurrent requests are all in flight at once

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self.answer(request)

    def answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/services/oauth2/token":
            if self.token_answer is not None:
                return self.token_answer
            self.issued += 1
            self.valid = {f"tok-{self.issued}"}
            return httpx.Response(200, json={"access_token": f"tok-{self.issued}", "instance_url": INSTANCE,
                                             "token_type": "Bearer"})
        if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid:
            return sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        if request.url.path.endswith("/describe"):
            response = httpx.Response(200, json=self.describe)
        else:
            response = self.route(request)
        response.headers.setdefault("Sforce-Limit-Info", self.usage)
        return response

    def sent(self, method: str | None = None, contains: str = "") -> list[httpx.Request]:
        """Requests other than token and describe, optionally by method and path fragment."""
        return [r for r in self.requests if not r.url.path.endswith(("/describe", "/oauth2/token"))
                and (method is None or r.method == method) and contains in r.url.path]


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)


def destination(org: Org, **config: Any) -> SalesforceDestination:
    settings = {"type": "salesforce", "instance_url": INSTANCE, "access_token": "tok-0", **config}
    return SalesforceDestination("sf", {k: v for k, v in settings.items() if v is not None},
                                 transport=httpx.MockTransport(org), sleep=_no_sleep)


async def _no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def target(mode: Mode = Mode.UPSERT, fields: Sequence[str] = ("Ext__c", "LastName", "Score__c"),
           identity: Sequence[str] = ("Ext__c",), references: Sequence[str] = ()) -> SyncTarget:
    return SyncTarget("people__sf__Contact", "Contact", mode, tuple(FieldSpec(f.lower(), f) for f in fields),
                      tuple(identity), run_id="run-1", references=tuple(references))


def rec(key: str, **values: Any) -> Record:
    return Record(key, {"Ext__c": f"E{key}", **values})


def run(dest: SalesforceDestination, sync: SyncTarget, work: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        await dest.open(sync)
        try:
            return await work()
        finally:
            await dest.close()

    return asyncio.run(go())


def send(dest: SalesforceDestination, sync: SyncTarget, *batches: Batch,
         policy: RetryPolicy = FAST) -> list[BatchResult]:
    async def work() -> list[BatchResult]:
        return [await deliver(dest, sync, b, limiter=None, policy=policy) for b in batches]

    return run(dest, sync, work)


def upserted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=ok(len(body(request)["records"]), created=True))


# -- authentication ------------------------------------------------------------------------------


def test_refresh_token_flow_fetches_the_token_and_the_instance_url() -> None:
    org = Org(upserted)
    dest = destination(org, instance_url=None, access_token=None, client_id="cid-123",
                       client_secret="csecret-456", refresh_token="rtok-789", login_url="https://login.example.com")
    [result] = send(dest, target(), Batch(Operation.UPSERT, [rec("1", LastName="Ada")]))
    assert result == BatchResult()
    token_request = org.requests[0]
    assert str(token_request.url) == "https://login.example.com/services/oauth2/token"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(token_request.content.decode()) == {
        "grant_type": ["refresh_token"], "client_id": ["cid-123"], "client_secret": ["csecret-456"],
        "refresh_token": ["rtok-789"]}
    [write] = org.sent()
    assert str(write.url) == f"{INSTANCE}{API}/composite/sobjects/Contact/Ext__c"  # the token's instance_url
    assert write.headers["Authorization"] == "Bearer tok-1"
    assert org.issued == 1


def test_client_credentials_flow_is_used_without_a_refresh_token() -> None:
    org = Org(upserted)
    dest = destination(org, access_token=None, client_id="cid-123", client_secret="csecret-456",
                       login_url=INSTANCE)
    send(dest, target(), Batch(Operation.UPSERT, [rec("1", LastName="Ada")]))
    assert parse_qs(org.requests[0].content.decode())["grant_type"] == ["client_credentials"]


def test_an_expired_session_is_renewed_once_and_the_request_repeated() -> None:
    org = Org(upserted)
    dest = destination(org, client_id="cid-123", refresh_token="rtok-789")

    async def work() -> BatchResult:
        org.valid = set()  # the configured token expires after describe
        return await deliver(dest, target(), Batch(Operation.UPSERT, [rec("1", LastName="Ada")]),
                             limiter=None, policy=RetryPolicy(max_attempts=1))

    assert run(dest, target(), work) == BatchResult()
    writes = org.sent("PATCH")
    assert [w.headers["Authorization"] for w in writes] == ["Bearer tok-0", "Bearer tok-1"]
    assert org.issued == 1


def test_concurrent_requests_share_one_renewal() -> None:
    org = Org(upserted)
    dest = destination(org, client_id="cid-123", refresh_token="rtok-789", batch_size=2)

    async def work() -> BatchResult:
        org.valid, org.latency = set(), 0.01
        records = [rec(str(i), LastName="X") for i in range(8)]  # four requests in flight at once
        return await deliver(dest, target(), Batch(Operation.UPSERT, records), limiter=None, policy=FAST)

    assert run(dest, target(), work) == BatchResult()
    assert org.issued == 1
    assert len(org.sent("PATCH")) == 8  # each of the 4 requests: refused once, then accepted


def test_a_token_refused_right_after_renewal_fails_instead_of_looping() -> None:
    org = Org(upserted)
    dest = destination(org, client_id="cid-123", refresh_token="rtok-789")

    async def work() -> BatchResult:
        org.route = lambda r: sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        return await deliver(dest, target(), Batch(Operation.UPSERT, [rec("1")]), limiter=None, policy=FAST)

    with pytest.raises(DestinationError, match="freshly issued token"):
        run(dest, target(), work)
    assert org.issued == 1


def test_a_static_token_that_expires_says_how_to_renew_it() -> None:
    org = Org(upserted)

    async def work() -> BatchResult:
        org.valid = set()
        return await deliver(dest, target(), Batch(Operation.UPSERT, [rec("1")]), limiter=None, policy=FAST)

    dest = destination(org)
    with pytest.raises(DestinationError, match=r"INVALID_SESSION_ID.*refresh_token"):
        run(dest, target(), work)


def test_a_refused_token_request_is_explained_without_secrets() -> None:
    org = Org(upserted)
    org.token_answer = httpx.Response(400, json={"error": "invalid_grant",
                                                 "error_description": "expired refresh token rtok-789-secret"})
    dest = destination(org, access_token=None, client_id="cid-123", refresh_token="rtok-789-secret")
    with pytest.raises(DestinationError) as caught:
        send(dest, target(), Batch(Operation.UPSERT, [rec("1")]))
    message = str(caught.value)
    assert "invalid_grant" in message and "login_url" in message
    assert "rtok-789-secret" not in message


# -- per-record results ---------------------------------------------------------------------------


def test_upsert_results_map_back_to_records_by_position() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        assert body(request)["allOrNone"] is False
        return httpx.Response(200, json=[ok(1)[0], failed("STRING_TOO_LONG", "Last Name: data value too large",
                                                          ["LastName"]), ok(1)[0]])

    org = Org(route)
    batch = Batch(Operation.UPSERT, [rec("1", LastName="Ada", Score__c=1.5), rec("2", LastName="X" * 90),
                                     rec("3", LastName="Nan", Score__c=float("nan")), rec("4", LastName="Cy")])
    [result] = send(destination(org), target(), batch)
    assert result.rejected == {
        "2": "STRING_TOO_LONG: Last Name: data value too large (fields: LastName)",
        "3": "field 'Score__c': nan is not a number Salesforce can store",  # never sent
    }
    [write] = org.sent()
    assert body(write)["records"] == [
        {"attributes": {"type": "Contact"}, "Ext__c": "E1", "LastName": "Ada", "Score__c": 1.5},
        {"attributes": {"type": "Contact"}, "Ext__c": "E2", "LastName": "X" * 90},
        {"attributes": {"type": "Contact"}, "Ext__c": "E4", "LastName": "Cy"},
    ]


def test_nulls_are_kept_by_default_and_cleared_on_request() -> None:
    for nulls, expected in (("keep", {"Ext__c": "E1", "LastName": "Ada"}),
                            ("clear", {"Ext__c": "E1", "LastName": "Ada", "Score__c": None})):
        org = Org(upserted)
        batch = Batch(Operation.UPSERT, [rec("1", LastName="Ada", Score__c=None)])
        send(destination(org, nulls=nulls), target(), batch)
        assert {k: v for k, v in body(org.sent()[0])["records"][0].items() if k != "attributes"} == expected


def test_a_null_reference_empties_the_lookup_field_though_nulls_are_kept() -> None:
    """``references`` on AccountId: NULL means "no account", so the link is cleared (links.py)."""
    org = Org(upserted, describe={**DESCRIBE, "fields": [*DESCRIBE["fields"], _field("AccountId", "reference")]})
    batch = Batch(Operation.UPSERT, [rec("1", LastName="Ada", Score__c=None, AccountId=None)])
    send(destination(org), target(fields=("Ext__c", "LastName", "Score__c", "AccountId"), references=("AccountId",)),
         batch)
    assert {k: v for k, v in body(org.sent()[0])["records"][0].items() if k != "attributes"} == {
        "Ext__c": "E1", "LastName": "Ada", "AccountId": None}


def test_results_that_cannot_be_matched_leave_the_batch_unacknowledged() -> None:
    org = Org(lambda r: httpx.Response(200, json=ok(1)))
    with pytest.raises(DestinationError, match="expected 2 results"):
        send(destination(org), target(), Batch(Operation.UPSERT, [rec("1"), rec("2")]))


def test_a_400_rejects_the_records_of_that_request_only() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        if body(request)["records"][0]["Ext__c"] == "E1":
            return sf_error(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of double")
        return upserted(request)

    org = Org(route)
    [result] = send(destination(org, batch_size=2), target(), Batch(Operation.UPSERT, [rec(str(i)) for i in (1, 2, 3)]))
    assert set(result.rejected) == {"1", "2"}
    assert "JSON_PARSER_ERROR" in result.rejected["1"]


def test_create_skips_existing_records_and_append_rejects_duplicates() -> None:
    def route(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("POST", f"{API}/composite/sobjects")
        return httpx.Response(200, json=[ok(1)[0], failed("DUPLICATE_VALUE", "duplicate value found: Ext__c")])

    org = Org(route)
    batch = [rec("1", LastName="A"), rec("2", LastName="B")]
    create, append = (send(destination(org), target(mode), Batch(op, batch))[0]
                      for mode, op in ((Mode.CREATE, Operation.CREATE), (Mode.APPEND, Operation.APPEND)))
    assert create.skipped == {"2": "already exists in Salesforce (DUPLICATE_VALUE: duplicate value found: Ext__c)"}
    assert create.rejected == {}
    assert append.rejected == {"2": "DUPLICATE_VALUE: duplicate value found: Ext__c"}


# -- lookups: update, delete, clear ---------------------------------------------------------------


def lookup_route(found: dict[str, list[str]], writes: list[httpx.Request], field: str = "Ext__c",
                 answer: Callable[[httpx.Request], httpx.Response] | None = None) -> Route:
    def route(request: httpx.Request) -> httpx.Response:
        if request.url.path == f"{API}/query":
            soql = request.url.params["q"]
            # SOQL compares text ignoring case; the stored value comes back as stored
            records = [{"attributes": {"type": "Contact"}, "Id": i, field: value}
                       for value, ids in found.items() if value.replace("'", "\\'").lower() in soql.lower()
                       for i in ids]
            return httpx.Response(200, json={"totalSize": len(records), "done": True, "records": records})
        writes.append(request)
        if answer is not None:
            return answer(request)
        if request.method == "DELETE":
            return httpx.Response(200, json=ok(len(request.url.params["ids"].split(","))))
        return httpx.Response(200, json=ok(len(body(request)["records"])))
    return route


def test_update_finds_ids_by_the_match_field_then_patches_by_id() -> None:
    writes: list[httpx.Request] = []
    org = Org(lookup_route({"e1": ["003A"], "O'Neil": ["003B"], "dup": ["003C", "003D"]}, writes))
    batch = Batch(Operation.UPDATE, [rec("1", LastName="Ada"), Record("2", {"Ext__c": "O'Neil", "LastName": "B"}),
                                     rec("9", LastName="Gone"), Record("4", {"Ext__c": "dup", "LastName": "D"})])
    [result] = send(destination(org), target(Mode.UPDATE), batch)
    [query] = org.sent("GET", "/query")
    assert query.url.params["q"] == ("SELECT Id, Ext__c FROM Contact WHERE Ext__c IN "
                                     "('E1','O\\'Neil','E9','dup')")
    [patch] = writes
    assert (patch.method, patch.url.path) == ("PATCH", f"{API}/composite/sobjects")
    assert body(patch) == {"allOrNone": False, "records": [
        {"attributes": {"type": "Contact"}, "id": "003A", "LastName": "Ada"},  # matched case-insensitively
        {"attributes": {"type": "Contact"}, "id": "003B", "LastName": "B"}]}
    assert result.skipped == {"9": "no Contact record has Ext__c = 'E9'"}
    assert result.rejected == {"4": "2 Contact records have Ext__c = 'dup'; the match field must identify one record"}


def test_delete_removes_found_records_and_counts_missing_ones_as_deleted() -> None:
    writes: list[httpx.Request] = []
    org = Org(lookup_route({"E1": ["003A"], "E2": ["003B"]}, writes, answer=lambda r: httpx.Response(200, json=[
        ok(1)[0], failed("ENTITY_IS_DELETED", "entity is deleted")])))
    batch = Batch(Operation.DELETE, [Record(k, {"Ext__c": f"E{k}"}) for k in ("1", "2", "3")])
    [result] = send(destination(org), target(Mode.MIRROR), batch)
    assert result == BatchResult()  # all three are gone from Salesforce now
    [delete] = writes
    assert delete.method == "DELETE"
    assert dict(delete.url.params) == {"ids": "003A,003B", "allOrNone": "false"}


def test_clear_nulls_every_clearable_mapped_field() -> None:
    writes: list[httpx.Request] = []
    org = Org(lookup_route({"E1": ["003A"]}, writes))
    sync = target(Mode.UPSERT, fields=("Ext__c", "LastName", "Email", "Score__c"))
    [result] = send(destination(org), sync, Batch(Operation.CLEAR, [Record("1", {"Ext__c": "E1"})]))
    assert result == BatchResult()
    # LastName is required (not nillable) and the match field is what found the record: both stay
    assert body(writes[0])["records"] == [{"attributes": {"type": "Contact"}, "id": "003A", "Email": None,
                                           "Score__c": None}]


def test_matching_by_id_needs_no_lookup_and_numbers_are_queried_unquoted() -> None:
    writes: list[httpx.Request] = []
    org = Org(lookup_route({}, writes))
    by_id = target(Mode.UPDATE, fields=("Id", "LastName"), identity=("Id",))
    send(destination(org), by_id, Batch(Operation.UPDATE, [Record("1", {"Id": "003A", "LastName": "Ada"})]))
    assert org.sent("GET", "/query") == []
    assert body(writes[0])["records"] == [{"attributes": {"type": "Contact"}, "id": "003A", "LastName": "Ada"}]

    writes.clear()
    org = Org(lookup_route({"42": ["003N"]}, writes, field="Num__c"))
    numeric = target(Mode.UPDATE, fields=("Num__c", "LastName"), identity=("Num__c",))
    [result] = send(destination(org), numeric, Batch(Operation.UPDATE, [Record("1", {"Num__c": 42, "LastName": "A"}),
                                                                        Record("2", {"Num__c": 7, "LastName": "B"})]))
    assert org.sent("GET", "/query")[0].url.params["q"].endswith("WHERE Num__c IN (42,7)")
    assert body(writes[0])["records"][0]["id"] == "003N"
    assert result.skipped == {"2": "no Contact record has Num__c = 7"}


# -- limits and retries ---------------------------------------------------------------------------


def test_a_spent_daily_allocation_stops_the_sync() -> None:
    org = Org(lambda r: sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    with pytest.raises(QuotaExhaustedError, match="daily API allocation is used up"):
        send(destination(org), target(), Batch(Operation.UPSERT, [rec("1")]))
    assert len(org.sent()) == 1  # not retried


def test_too_many_concurrent_requests_is_retried() -> None:
    answers = [sf_error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")]
    org = Org(lambda r: answers.pop() if answers else upserted(r))
    [result] = send(destination(org), target(), Batch(Operation.UPSERT, [rec("1")]))
    assert result == BatchResult()
    assert len(org.sent()) == 2


def test_usage_near_the_allocation_stops_before_new_work() -> None:
    org = Org(upserted)
    org.usage = "api-usage=96/100"
    with pytest.raises(QuotaExhaustedError, match="96 of its 100 daily API requests"):
        send(destination(org), target(), Batch(Operation.UPSERT, [rec("1")]))
    assert org.sent() == []  # describe reported the usage; nothing was written
    org = Org(upserted)
    org.usage = "api-usage=96/100"
    [result] = send(destination(org, max_api_usage=1.0), target(), Batch(Operation.UPSERT, [rec("1")]))
    assert result == BatchResult()


def test_a_retried_batch_does_not_send_settled_records_again() -> None:
    failures = [httpx.Response(503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])]

    def route(request: httpx.Request) -> httpx.Response:
        records = body(request)["records"]
        if records[0]["Ext__c"] == "E3" and failures:
            return failures.pop()
        return httpx.Response(200, json=ok(len(records)))

    org = Org(route)
    batch = Batch(Operation.CREATE, [rec(str(i), LastName="X") for i in (1, 2, 3, 4)])
    [result] = send(destination(org, batch_size=2), target(Mode.CREATE), batch)
    assert result == BatchResult()
    sent = [[r["Ext__c"] for r in body(w)["records"]] for w in org.sent("POST")]
    assert sorted(sent) == [["E1", "E2"], ["E3", "E4"], ["E3", "E4"]]  # E1, E2 were created once


def test_a_server_error_that_persists_is_raised_as_retryable() -> None:
    org = Org(lambda r: httpx.Response(500, json=[{"errorCode": "UNKNOWN_EXCEPTION", "message": "boom"}]))
    with pytest.raises(RetryableDestinationError, match="HTTP 500"):
        send(destination(org), target(), Batch(Operation.UPSERT, [rec("1")]), policy=RetryPolicy(max_attempts=2,
                                                                                                  base_delay=0))
    assert len(org.sent()) == 2


# -- checks before sending ------------------------------------------------------------------------


@pytest.mark.parametrize(("sync", "fragment"), [
    (target(fields=("Ext__c", "Nickname__c")), "Contact has no field 'Nickname__c'"),
    (target(fields=("Email", "LastName"), identity=("Email",)), "Contact.Email is not an External ID field"),
    (target(fields=("Ext__c", "Account.Ext__c")), "relationship fields"),
    (target(identity=("Ext__c", "LastName")), "one External ID field"),
    (target(fields=("Id", "LastName"), identity=("Id",)), "cannot send the Id field"),
    (SyncTarget("s", "Contact; DROP", Mode.UPSERT, (FieldSpec("a", "Ext__c"),), ("Ext__c",)), "sObject API name"),
])
def test_a_sync_salesforce_cannot_serve_is_a_config_error(sync: SyncTarget, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        run(destination(Org()), sync, lambda: asyncio.sleep(0))


def test_an_unknown_sobject_is_a_config_error() -> None:
    org = Org()
    org.describe = {}

    def missing(request: httpx.Request) -> httpx.Response:
        return sf_error(404, "NOT_FOUND", "The requested resource does not exist")

    dest = SalesforceDestination("sf", {"type": "salesforce", "instance_url": INSTANCE, "access_token": "tok-0"},
                                 transport=httpx.MockTransport(missing))
    with pytest.raises(ConfigError, match="no sObject 'Contact'"):
        run(dest, target(), lambda: asyncio.sleep(0))


def test_batch_size_follows_the_bulk_switch() -> None:
    def size(mode: Mode, **config: Any) -> int:
        dest = destination(Org(), **config)

        async def opened() -> int:
            return dest.effective_batch_size

        return run(dest, target(mode), opened)

    assert destination(Org(), bulk_threshold=50).effective_batch_size == 200  # before open()
    assert size(Mode.UPSERT) == 10_000  # one Bulk job's worth: the first 10,000 still go by Collections
    assert size(Mode.MIRROR, bulk_threshold=50) == 50
    assert size(Mode.UPSERT, bulk_threshold=0) == 200
    assert size(Mode.UPDATE, batch_size=50) == 50


def test_describe_request_shows_the_requests_without_sending() -> None:
    org = Org()
    dest = destination(org, bulk_threshold=2)
    records = [rec("1", LastName="Ada", Score__c=1.5)]
    upsert = dest.describe_request(target(), Batch(Operation.UPSERT, records))
    assert upsert == {"method": "PATCH", "path": f"{API}/composite/sobjects/Contact/Ext__c", "requests": 1,
                      "body": {"allOrNone": False, "records": [
                          {"attributes": {"type": "Contact"}, "Ext__c": "E1", "LastName": "Ada", "Score__c": 1.5}]}}
    update = dest.describe_request(target(Mode.UPDATE), Batch(Operation.UPDATE, records))
    assert update["lookup"] == "SELECT Id, Ext__c FROM Contact WHERE Ext__c IN ('E1')"
    assert update["body"]["records"][0] == {"attributes": {"type": "Contact"}, "id": "<Id of Ext__c = E1>",
                                            "LastName": "Ada", "Score__c": 1.5}
    delete = dest.describe_request(target(Mode.MIRROR), Batch(Operation.DELETE, [Record("1", {"Ext__c": "E1"})]))
    assert delete["method"] == "DELETE" and delete["params"]["allOrNone"] == "false"
    bulk = dest.describe_request(target(), Batch(Operation.UPSERT, records * 3))
    assert bulk["api"] == "bulk" and bulk["body"]["operation"] == "upsert"
    assert bulk["csv"].startswith("Ext__c,LastName,Score__c\nE1,Ada,1.5\n")
    assert org.requests == []


def test_an_append_sync_with_a_composite_key_cannot_delete_and_says_why() -> None:
    org = Org(upserted)
    sync = target(Mode.APPEND, identity=("Ext__c", "LastName"))
    [result] = send(destination(org), sync, Batch(Operation.DELETE, [Record("1", {"Ext__c": "E1", "LastName": "A"})]))
    assert result.rejected == {"1": "delete needs one match field to find the record"}
    assert org.sent() == []
