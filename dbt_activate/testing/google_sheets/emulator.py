"""Emulator of the Google Sheets API v4 (values and sheet structure) with its OAuth token endpoint.

Follows ``shared/contracts/SUMMARY.md`` §7, from the Sheets v4 Discovery document
(googleapis/google-api-python-client ``googleapiclient/discovery_cache/documents/sheets.v4.json``),
the limits page (developers.google.com/workspace/sheets/api/limits) and the service-account OAuth
guide (developers.google.com/identity/protocols/oauth2/service-account).

Emulated: ``POST /token`` (JWT-bearer grant, ``google_sheets_auth``); ``GET /v4/spreadsheets/{id}``
(tab properties); ``POST /v4/spreadsheets/{id}:batchUpdate`` with ``addSheet``, ``deleteDimension``
and ``appendDimension`` requests, applied in order and atomically; ``GET …/values/{range}``;
``PUT …/values/{range}`` (update); ``POST …/values:batchUpdate``, ``…/values/{range}:append`` and
``…/values/{range}:clear``; ``valueInputOption`` ``RAW``/``USER_ENTERED`` (required on writes).
Every request needs ``Authorization: Bearer`` with a token the endpoint issued (or ``token``).
A write is atomic: one invalid range or cell (over 50,000 characters, outside the grid) refuses
the whole request with ``400 {"error": {"code", "message", "status": "INVALID_ARGUMENT"}}``.
Throttling: 60 write requests per minute per user (``rate_limit=True``), reads in their own window
(``read_rate_limit``), over quota ``429`` ``RESOURCE_EXHAUSTED`` without ``Retry-After``.

Not emulated: formulas are stored, not evaluated; number and date formats; ``insertDataOption``
(append always inserts below the last row); protected ranges; Drive sharing (any trusted service
account may write any spreadsheet); the 10-million-cell workbook limit.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from dbt_activate.testing.google_sheets import store
from dbt_activate.testing.google_sheets.auth import exchange, new_service_account
from dbt_activate.testing.limits import Decision, RateLimit, RateLimitSpec
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

_SHEET = r"/v4/spreadsheets/(?P<id>[^/:]+)"
_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class GoogleSheetsEmulator(Emulator):
    """Google Sheets v4. ``spreadsheets``: ids to create, each with a ``Sheet1`` tab;
    ``service_accounts``: client_email -> public key PEM whose JWTs are verified (``None``: any)."""

    vendor = "google_sheets"
    default_rate_limit = RateLimit(60, 60.0)

    def __init__(self, *, spreadsheets: tuple[str, ...] = ("test-spreadsheet",),
                 service_accounts: Mapping[str, str] | None = None, token: str | None = None,
                 read_rate_limit: RateLimitSpec = None, **knobs: Any) -> None:
        super().__init__(token=token, **knobs)
        self.service_accounts = None if service_accounts is None else dict(service_accounts)
        self.tokens: set[str] = set()
        self.books: dict[str, list[store.Tab]] = {}
        self._next_id = 0
        for spreadsheet_id in spreadsheets:
            self.add_spreadsheet(spreadsheet_id)
        if read_rate_limit is not None:
            self.set_group_limit("read", RateLimit.parse(read_rate_limit, RateLimit(60, 60.0)))
        self.route("POST", r"/token", self._token, auth=False)
        self.route("GET", _SHEET, self._get_spreadsheet, group="read")
        self.route("POST", _SHEET + r":batchUpdate", self._batch_update, writes=True)
        self.route("GET", _SHEET + r"/values/(?P<range>[^:]+)", self._get_values, group="read")
        self.route("PUT", _SHEET + r"/values/(?P<range>[^:]+)", self._update_values, writes=True)
        self.route("POST", _SHEET + r"/values:batchUpdate", self._batch_update_values, writes=True)
        self.route("POST", _SHEET + r"/values/(?P<range>[^:]+):append", self._append_values, writes=True)
        self.route("POST", _SHEET + r"/values/(?P<range>[^:]+):clear", self._clear_values, writes=True)

    # -- test helpers --------------------------------------------------------------------------

    def add_spreadsheet(self, spreadsheet_id: str, tabs: tuple[str, ...] = ("Sheet1",)) -> None:
        with self.lock:
            self.books[spreadsheet_id] = []
            for title in tabs:
                self._add_tab(spreadsheet_id, title)

    def service_account(self, email: str = "activate@test-project.iam.gserviceaccount.com") -> dict[str, Any]:
        """A new service account this emulator trusts: its key file's JSON (``token_uri`` -> here)."""
        info, public_key = new_service_account(self.base_url + "/token", email)
        with self.lock:
            if self.service_accounts is None:
                self.service_accounts = {}
            self.service_accounts[email] = public_key
        return info

    def values(self, title: str, spreadsheet_id: str = "test-spreadsheet") -> list[list[Any]]:
        """The tab's rows as the API returns them (trailing empty cells and rows left out)."""
        with self.lock:
            return copy.deepcopy(self._tab(spreadsheet_id, title).values())

    def tab(self, title: str, spreadsheet_id: str = "test-spreadsheet") -> store.Tab:
        with self.lock:
            return self._tab(spreadsheet_id, title)

    # -- vendor shapes -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        token = self.bearer_token(request)
        if token is not None and (token in self.tokens or token == self.token):
            return None
        return self.error_response(ApiError(401, "Request had invalid authentication credentials. Expected "
                                                 "OAuth 2 access token, login cookie or other valid "
                                                 "authentication credential."))

    def error_response(self, err: ApiError) -> Response:
        status = err.code if err.code in _STATUS.values() else _STATUS.get(err.status, "UNKNOWN")
        return Response.json({"error": {"code": err.status, "message": err.message, "status": status}}, err.status)

    def throttled_response(self, decision: Decision) -> Response:
        kind = "Read" if decision.group == "read" else "Write"
        return self.error_response(ApiError(
            429, f"Quota exceeded for quota metric '{kind} requests' and limit '{kind} requests per minute per "
                 "user' of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'.",
            "RESOURCE_EXHAUSTED"))

    # -- routes --------------------------------------------------------------------------------

    def _token(self, request: Request) -> Response:
        with self.lock:
            keys = None if self.service_accounts is None else dict(self.service_accounts)
        response, token = exchange(request, self.base_url + "/token", keys)
        if token is not None:
            with self.lock:
                self.tokens.add(token)
        return response

    def _get_spreadsheet(self, request: Request) -> Response:
        with self.lock:
            tabs = self._book(request)
            return Response.json({"spreadsheetId": request.params["id"],
                                  "sheets": [{"properties": t.properties()} for t in tabs]})

    def _batch_update(self, request: Request) -> Response:
        requests = request.json_object().get("requests")
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "Must specify at least one request.")
        with self.lock:
            tabs = copy.deepcopy(self._book(request))  # applied to a copy: all or nothing
            replies = [self._structural(request.params["id"], tabs, i, r) for i, r in enumerate(requests)]
            self.books[request.params["id"]] = tabs
        return Response.json({"spreadsheetId": request.params["id"], "replies": replies})

    def _get_values(self, request: Request) -> Response:
        text = unquote(request.params["range"])
        with self.lock:
            area = store.parse_range(text)
            tab = self._find(self._book(request), area.title)
            return Response.json({"range": text, "majorDimension": "ROWS", **_maybe(store.read(tab, area))})

    def _update_values(self, request: Request) -> Response:
        body = request.json_object()
        parse = _value_input(request.arg("valueInputOption"))
        text = unquote(request.params["range"])
        return Response.json(self._write(request, [{"range": text, "values": body.get("values")}], parse)[0])

    def _batch_update_values(self, request: Request) -> Response:
        body = request.json_object()
        parse = _value_input(body.get("valueInputOption"))
        data = body.get("data")
        if not isinstance(data, list):
            raise ApiError(400, "Invalid value at 'data': expected a list of ValueRange")
        responses = self._write(request, data, parse)
        return Response.json({"spreadsheetId": request.params["id"], "totalUpdatedRows": sum(
            r["updatedRows"] for r in responses), "totalUpdatedCells": sum(r["updatedCells"] for r in responses),
            "totalUpdatedSheets": len({r["updatedRange"].rsplit("!", 1)[0] for r in responses}),
            "responses": responses})

    def _append_values(self, request: Request) -> Response:
        body = request.json_object()
        parse = _value_input(request.arg("valueInputOption"))
        with self.lock:
            area = store.parse_range(unquote(request.params["range"]))
            tab = self._find(self._book(request), area.title)
            below = len(tab.values())
            rows = body.get("values") or []
            start = f"'{tab.title}'!{store.column_letters(area.col)}{below + 1}"
            if below + len(rows) > tab.row_count:  # append inserts rows as needed
                tab.row_count = below + len(rows)
        [written] = self._write(request, [{"range": start, "values": rows}], parse)
        return Response.json({"spreadsheetId": request.params["id"], "updates": written})

    def _clear_values(self, request: Request) -> Response:
        text = unquote(request.params["range"])
        with self.lock:
            area = store.parse_range(text)
            store.clear(self._find(self._book(request), area.title), area)
        return Response.json({"spreadsheetId": request.params["id"], "clearedRange": text})

    # -- helpers -------------------------------------------------------------------------------

    def _write(self, request: Request, data: list[Any], parse: bool) -> list[dict[str, Any]]:
        """Write every ValueRange or none (checked on a copy first)."""
        with self.lock:
            tabs = copy.deepcopy(self._book(request))
            responses = []
            cells = 0
            for i, item in enumerate(data):
                if not isinstance(item, dict) or not isinstance(item.get("values"), list) or not all(
                        isinstance(r, list) for r in item["values"]):
                    raise ApiError(400, f"Invalid data[{i}]: values must be a list of rows")
                if item.get("majorDimension", "ROWS") != "ROWS":
                    raise ApiError(400, f"Invalid data[{i}]: only majorDimension ROWS is emulated")
                for row in item["values"]:
                    for value in row:
                        store.check_cell(value)
                area = store.parse_range(str(item.get("range") or ""))
                tab = self._find(tabs, area.title)
                updated = store.write(tab, area, item["values"], parse)
                cells += len(item["values"])
                responses.append({"spreadsheetId": request.params["id"], "updatedRange": item["range"],
                                  "updatedRows": len(item["values"]), "updatedCells": updated})
            self.count_records(cells)
            self.books[request.params["id"]] = tabs
        return responses

    def _structural(self, spreadsheet_id: str, tabs: list[store.Tab], i: int, item: Any) -> dict[str, Any]:
        if not isinstance(item, dict) or len(item) != 1:
            raise ApiError(400, f"Invalid requests[{i}]: exactly one request kind per entry")
        kind, spec = next(iter(item.items()))
        if kind == "addSheet":
            title = str(spec.get("properties", {}).get("title") or f"Sheet{len(tabs) + 1}")
            if any(t.title == title for t in tabs):
                raise ApiError(400, f"Invalid requests[{i}].addSheet: A sheet with the name \"{title}\" already "
                                    "exists. Please enter another name.")
            self._next_id += 1
            tab = store.Tab(self._next_id * 1000 + 7, title, len(tabs))
            tabs.append(tab)
            return {"addSheet": {"properties": tab.properties()}}
        if kind in ("deleteDimension", "appendDimension"):
            where = spec.get("range", spec)
            grid = next((t for t in tabs if t.sheet_id == where.get("sheetId")), None)
            if grid is None:
                raise ApiError(400, f"Invalid requests[{i}].{kind}: No grid with id: {where.get('sheetId')}")
            tab = grid
            rows = where.get("dimension") == "ROWS"
            if kind == "appendDimension":
                length = int(spec.get("length") or 0)
                if length < 1:
                    raise ApiError(400, f"Invalid requests[{i}].appendDimension: length must be > 0")
                if rows:
                    tab.row_count += length
                else:
                    tab.column_count += length
                return {}
            start, end = int(where.get("startIndex", 0)), int(where.get("endIndex", 0))
            size = tab.row_count if rows else tab.column_count
            if not 0 <= start < end <= size:
                raise ApiError(400, f"Invalid requests[{i}].deleteDimension: range {start}-{end} is outside the grid")
            if rows:
                del tab.cells[start:end]
                tab.row_count -= end - start
            else:
                for row in tab.cells:
                    del row[start:end]
                tab.column_count -= end - start
            return {}
        raise ApiError(400, f"Invalid requests[{i}]: {kind} is not emulated")

    def _add_tab(self, spreadsheet_id: str, title: str) -> None:
        self._next_id += 1
        tabs = self.books[spreadsheet_id]
        tabs.append(store.Tab(0 if not tabs else self._next_id * 1000 + 7, title, len(tabs)))

    def _book(self, request: Request) -> list[store.Tab]:
        found = self.books.get(request.params["id"])
        if found is None:
            raise ApiError(404, "Requested entity was not found.", "NOT_FOUND")
        return found

    def _find(self, tabs: list[store.Tab], title: str) -> store.Tab:
        for tab in tabs:
            if tab.title == title:
                return tab
        raise ApiError(400, f"Unable to parse range: {title}")

    def _tab(self, spreadsheet_id: str, title: str) -> store.Tab:
        return self._find(self.books[spreadsheet_id], title)


def _value_input(option: Any) -> bool:
    """True for USER_ENTERED; RAW is False; anything else (or none) is Sheets' 400."""
    if option not in ("RAW", "USER_ENTERED"):
        raise ApiError(400, "'valueInputOption' is required but not specified" if option in (None, "")
                       else f"Invalid valueInputOption: {option}")
    return bool(option == "USER_ENTERED")


def _maybe(rows: list[list[Any]]) -> dict[str, Any]:
    return {"values": rows} if rows else {}  # Google leaves "values" out for an empty range


def serve(port: int, host: str = "127.0.0.1", *,
          ready: Callable[[GoogleSheetsEmulator], None] | None = None, **options: Any) -> None:
    with GoogleSheetsEmulator(host=host, port=port, **options) as emulator:
        if ready is not None:
            ready(emulator)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
