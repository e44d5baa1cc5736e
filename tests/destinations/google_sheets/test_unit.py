"""google_sheets: cell formatting, the per-batch grid plan, the service-account token, and the
destination's reading of Google's answers (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
from decimal import Decimal
from typing import Any

import httpx
import pytest
from google.auth import jwt

from dbt_activate.core.types import Batch, FieldSpec, Mode, Operation, Record, SyncTarget
from dbt_activate.delivery import HttpSession
from dbt_activate.destinations.google_sheets.auth import SCOPE, ServiceAccountToken, load_service_account
from dbt_activate.destinations.google_sheets.destination import GoogleSheetsDestination
from dbt_activate.destinations.google_sheets.grid import a1_range, column_letters, plan, quote_sheet
from dbt_activate.destinations.google_sheets.values import UnwritableValue, cell_value, key_text, row_cells
from dbt_activate.errors import ConfigError, DestinationError
from dbt_activate.testing.google_sheets.auth import new_service_account

TOKEN_URI = "https://oauth2.example.test/token"
ACCOUNT, PUBLIC_KEY = new_service_account(TOKEN_URI)


@pytest.mark.parametrize(("value", "cell"), [
    (None, ""), (True, True), (42, 42), (2**53 + 1, str(2**53 + 1)), (2.5, 2.5),
    (Decimal("1.10"), 1.1), (Decimal("12345678901234567890.01"), "12345678901234567890.01"), (Decimal("7"), 7),
    (dt.date(2024, 5, 1), "2024-05-01"), (dt.datetime(2024, 5, 1, 12, 0), "2024-05-01 12:00:00"),
    (dt.datetime(2024, 5, 1, 12, tzinfo=dt.timezone.utc), "2024-05-01 12:00:00+00:00"),
    (dt.timedelta(days=1, seconds=5), "P1DT5S"), (b"\x00\x01", "AAE="), ([1, "a"], '[1,"a"]'),
    ({"k": dt.date(2024, 1, 2)}, '{"k":"2024-01-02"}'), ("=1+1", "=1+1"),
])
def test_cell_values(value: Any, cell: Any) -> None:
    assert cell_value(value) == cell and type(cell_value(value)) is type(cell)


@pytest.mark.parametrize("value", [math.nan, math.inf, Decimal("NaN"), object()])
def test_values_no_cell_can_hold_are_refused(value: Any) -> None:
    with pytest.raises(UnwritableValue):
        cell_value(value)


def test_a_cell_over_50000_characters_rejects_the_record_naming_the_field() -> None:
    assert row_cells({"note": "x" * 50_000})["note"] == "x" * 50_000
    with pytest.raises(UnwritableValue, match=r"field 'note' has 50,001 characters.*at most 50,000"):
        row_cells({"id": 1, "note": "x" * 50_001})


def test_keys_match_whatever_way_sheets_reads_them_back() -> None:
    assert key_text(42) == key_text(42.0) == key_text("42") == "42"
    assert key_text(None) == key_text("") == ""


def test_a1_notation() -> None:
    assert [column_letters(i) for i in (0, 25, 26, 701, 702)] == ["A", "Z", "AA", "ZZ", "AAA"]
    assert quote_sheet("Bob's tab") == "'Bob''s tab'"
    [cells] = plan([], ["id", "name"], "id", Operation.UPSERT, [("1", {"id": 1, "name": "a"})]).writes[:1]
    assert a1_range("T", cells) == "'T'!A1:B2"  # header and the new row in one rectangle


GRID: list[list[Any]] = [["id", "name", "notes"], [1, "Ada", "hand-written"], [2, "Bob"], [3, "Cy"]]
FIELDS = ("id", "name")


def run_plan(operation: Operation, *records: tuple[int, str]) -> Any:
    return plan(GRID, FIELDS, "id", operation,
                [(str(i), {"id": i, "name": name}) for i, name in records])


def test_upsert_rewrites_changed_cells_only_and_adds_new_rows_at_the_bottom() -> None:
    planned = run_plan(Operation.UPSERT, (2, "Bobby"), (3, "Cy"), (9, "New"))
    assert planned.grid[2] == [2, "Bobby"] and planned.grid[4] == [9, "New"]
    assert [(w.row, w.col, w.values) for w in planned.writes] == [(2, 1, [["Bobby"]]), (4, 0, [[9, "New"]])]
    assert planned.grid[1][2] == "hand-written" and GRID[2] == [2, "Bob"]  # input untouched


def test_a_field_left_out_keeps_the_cell_of_an_existing_row_and_is_empty_in_a_new_one() -> None:
    # What the pipeline sends under `nulls: keep`: the NULL name is not in the record.
    planned = plan(GRID, FIELDS, "id", Operation.UPSERT, [("2", {"id": 2}), ("9", {"id": 9})])
    assert planned.grid[2] == [2, "Bob"] and planned.grid[4] == [9, ""]
    assert [(w.row, w.col, w.values) for w in planned.writes] == [(4, 0, [[9]])]  # row 2 untouched
    cleared = plan(GRID, FIELDS, "id", Operation.UPSERT, [("2", {"id": 2, "name": ""})])  # `nulls: clear`
    assert cleared.grid[2] == [2, ""]


@pytest.mark.parametrize(("operation", "skipped"), [
    (Operation.UPDATE, {"9": "no row with this key in the sheet"}),
    (Operation.CREATE, {"2": "row 3 of the sheet already has this key"}),
])
def test_update_and_create_skip_with_a_reason(operation: Operation, skipped: dict[str, str]) -> None:
    planned = run_plan(operation, (2, "Bobby"), (9, "New"))
    assert planned.skipped == skipped


def test_append_always_adds_rows() -> None:
    planned = run_plan(Operation.APPEND, (1, "again"), (1, "and again"))
    assert planned.grid[4:] == [[1, "again"], [1, "and again"]]


def test_delete_removes_rows_bottom_up_and_ignores_unknown_keys() -> None:
    planned = run_plan(Operation.DELETE, (1, ""), (3, ""), (9, ""))
    assert planned.deletes == [3, 1] and planned.writes == []
    assert planned.grid == [["id", "name", "notes"], [2, "Bob"]]


def test_clear_empties_mapped_cells_but_the_identity() -> None:
    planned = run_plan(Operation.CLEAR, (1, ""))
    assert planned.grid[1] == [1, "", "hand-written"]
    assert [(w.row, w.col, w.values) for w in planned.writes] == [(1, 1, [[""]])]


def test_a_missing_field_gets_a_header_column_and_an_empty_tab_gets_a_header() -> None:
    planned = plan([["id"], [1]], FIELDS, "id", Operation.UPSERT, [("1", {"id": 1, "name": "a"})])
    assert planned.grid == [["id", "name"], [1, "a"]]
    assert [(w.row, w.col, w.values) for w in planned.writes] == [(0, 1, [["name"], ["a"]])]
    assert plan([], FIELDS, "id", Operation.DELETE, [("1", {"id": 1})]).writes[0].values == [["id", "name"]]


def test_adjacent_rows_with_the_same_columns_are_one_range() -> None:
    planned = run_plan(Operation.UPSERT, (1, "A"), (2, "B"), (3, "C"))
    assert [(w.row, w.col, w.values) for w in planned.writes] == [(1, 1, [["A"], ["B"], ["C"]])]


# -- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "fragment"), [
    ({}, "give credentials_file"),
    ({"credentials_json": "{}", "credentials_file": "x.json"}, "not both"),
    ({"credentials_json": "not json"}, "sheet.credentials_json: is not JSON"),
    ({"credentials_json": {"type": "service_account"}}, "missing: client_email, private_key"),
    ({"credentials_json": {**ACCOUNT, "type": "authorized_user"}}, "is not a service-account key"),
    ({"credentials_file": "/nonexistent/sa.json"}, "sheet.credentials_file: cannot read"),
])
def test_credential_errors_name_the_key(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        load_service_account("sheet", config)


def test_the_assertion_is_an_rs256_jwt_google_accepts() -> None:
    token = ServiceAccountToken("sheet", ACCOUNT)
    claims = jwt.decode(token.assertion(now=1_700_000_000), certs=PUBLIC_KEY, verify=False)  # type: ignore[no-untyped-call]
    assert jwt.decode_header(token.assertion())["alg"] == "RS256"  # type: ignore[no-untyped-call]
    assert jwt.decode(token.assertion(), certs=PUBLIC_KEY, audience=TOKEN_URI)["iss"] == ACCOUNT["client_email"]  # type: ignore[no-untyped-call]
    assert claims == {"iss": ACCOUNT["client_email"], "scope": SCOPE, "aud": TOKEN_URI,
                      "iat": 1_700_000_000, "exp": 1_700_003_600}


def test_the_token_is_exchanged_once_and_cached() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"access_token": "ya29.abcdefgh", "expires_in": 3599})

    async def run() -> list[dict[str, str]]:
        token = ServiceAccountToken("sheet", ACCOUNT)
        async with HttpSession("sheet", transport=httpx.MockTransport(handler)) as session:
            return [await token.header(session), await token.header(session)]

    assert asyncio.run(run()) == [{"Authorization": "Bearer ya29.abcdefgh"}] * 2
    [call] = calls
    assert str(call.url) == TOKEN_URI
    assert b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" in call.content


def test_a_refused_grant_fails_with_googles_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_grant", "error_description": "Invalid JWT Signature."})

    async def run() -> None:
        async with HttpSession("sheet", transport=httpx.MockTransport(handler)) as session:
            await ServiceAccountToken("sheet", ACCOUNT).header(session)

    with pytest.raises(DestinationError, match="invalid_grant: Invalid JWT Signature") as caught:
        asyncio.run(run())
    assert not caught.value.retryable


# -- the destination against scripted answers ------------------------------------------------------

TARGET = SyncTarget("people_sheet", "People", Mode.UPSERT, (FieldSpec("id", "id"), FieldSpec("name", "name")),
                    ("id",))


def destination(handler: Any, **config: Any) -> GoogleSheetsDestination:
    return GoogleSheetsDestination("sheet", {"type": "google_sheets", "spreadsheet_id": "book",
                                             "credentials_json": json.dumps(ACCOUNT), **config},
                                   transport=httpx.MockTransport(handler))


def google(answers: dict[str, list[httpx.Response]], seen: list[str]) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "ya29.token-1234", "expires_in": 3599})
        key = f"{request.method} {request.url.path.split('/values/')[0]}"
        seen.append(key)
        return answers[key].pop(0)
    return handler


def test_a_400_rejects_the_batch_with_googles_message_and_the_tab_is_read_again() -> None:
    meta = {"sheets": [{"properties": {"sheetId": 0, "title": "People",
                                       "gridProperties": {"rowCount": 1000, "columnCount": 26}}}]}
    seen: list[str] = []
    refusal = {"error": {"code": 400, "message": "Invalid data[0]: bad range", "status": "INVALID_ARGUMENT"}}
    tab_then_rows = [httpx.Response(200, json=meta), httpx.Response(200, json={})]  # an empty tab: no "values"
    answers = {"GET /v4/spreadsheets/book": tab_then_rows * 2,
               "POST /v4/spreadsheets/book/values:batchUpdate": [httpx.Response(400, json=refusal),
                                                                 httpx.Response(200, json={})]}
    dest = destination(google(answers, seen))

    async def run() -> list[Any]:
        results = [await dest.write(TARGET, Batch(Operation.UPSERT, [Record("1", {"id": 1, "name": "a"})]))
                   for _ in range(2)]
        await dest.close()
        return results

    first, second = asyncio.run(run())
    assert first.rejected == {"1": "HTTP 400 INVALID_ARGUMENT: Invalid data[0]: bad range"}
    assert second.rejected == {}
    assert seen.count("GET /v4/spreadsheets/book") == 4  # tabs and rows, read again after the refusal


def test_a_spreadsheet_not_shared_fails_naming_the_account_to_share_with() -> None:
    denied = {"error": {"code": 403, "message": "The caller does not have permission", "status": "PERMISSION_DENIED"}}
    dest = destination(google({"GET /v4/spreadsheets/book": [httpx.Response(403, json=denied)]}, []))
    with pytest.raises(DestinationError, match=f"share the spreadsheet with {ACCOUNT['client_email']}"):
        asyncio.run(dest.write(TARGET, Batch(Operation.UPSERT, [Record("1", {"id": 1, "name": "a"})])))


def test_rows_with_an_empty_identity_are_rejected_before_sending() -> None:
    dest = destination(google({}, []))
    result = asyncio.run(dest.write(TARGET, Batch(Operation.UPSERT, [Record("1", {"id": None, "name": "a"})])))
    assert result.rejected == {"1": "the identity 'id' is empty: no row can be found by it"}


@pytest.mark.parametrize(("config", "fragment"), [
    ({"value_input": "formatted"}, "sheet.value_input: value_input must be one of raw, user_entered"),
    ({"batch_size": 10_001}, "sheet.batch_size"),
    ({"base_url": "ftp://x"}, "sheet.base_url"),
])
def test_config_errors(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        destination(google({}, []), **config)


def test_a_composite_identity_is_refused_naming_the_sync() -> None:
    two = SyncTarget("people_sheet", "People", Mode.UPSERT, TARGET.fields, ("id", "name"))
    with pytest.raises(ConfigError, match="sync people_sheet: a Google Sheets row is found by one column"):
        destination(google({}, [])).check_target(two)
    destination(google({}, [])).check_target(  # append never finds rows: any identity will do
        SyncTarget("log", "Log", Mode.APPEND, TARGET.fields, ("id", "name")))


def test_user_entered_is_sent_when_chosen() -> None:
    body = destination(google({}, []), value_input="user_entered").describe_request(
        TARGET, Batch(Operation.UPSERT, [Record("1", {"id": 1, "name": "=SUM(A1)"})]))["body"]
    assert body["valueInputOption"] == "USER_ENTERED"
    assert body["data"] == [{"range": "'People'!A2:B2", "majorDimension": "ROWS", "values": [[1, "=SUM(A1)"]]}]
