"""``google_sheets``: write a model to a tab of a Google spreadsheet, one row per record.

Configuration (``destinations.yml``)::

    finance_sheet:
      type: google_sheets
      spreadsheet_id: 1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms   # from the sheet's URL (required)
      credentials_file: ~/.config/gcloud/activate-sa.json            # a service-account key file, or:
      # credentials_json: "{{ env_var('GOOGLE_SA_JSON') }}"         # the key file's content (secret)
      value_input: raw                    # raw (default) | user_entered
      rate_limit: {requests: 60, per_seconds: 60}                   # default: 60 writes/min per user
      batch_size: 1000                    # rows per request

Share the spreadsheet with the service account's ``client_email`` (Editor). A sync's ``object`` is
the tab's name; a tab that does not exist is created. Row 1 holds the field names; a mapped field
missing from it gets a new column at the end, and columns added by hand are left alone. The
identity (``match``, else the primary key) must be one field: its column finds a record's row.

Requests (Sheets API v4, contracts SUMMARY §7; limits from
developers.google.com/workspace/sheets/api/limits): on the first batch of a sync,
``GET /v4/spreadsheets/{id}`` (tabs) and ``GET …/values/{tab}`` (the rows); the rows are then kept
in memory, as the sync is the only writer of its tab and batches run one at a time. Per batch one
``POST …/values:batchUpdate`` with every changed cell range, which Sheets applies atomically (all or
nothing); before it, when needed, one ``POST /v4/spreadsheets/{id}:batchUpdate`` with
``deleteDimension`` (``mirror`` and ``on_delete: delete`` remove rows) and ``appendDimension`` (a
tab is 1,000 rows until grown, and a write past its end is refused). How each operation finds and
changes rows is in ``google_sheets_grid``; values are formatted as ``google_sheets_values`` says
(``RAW`` by default so data never turns into formulas; cells over 50,000 characters reject their
record). A failed request drops the kept rows, so the retry reads the tab again.

Limits: 60 write requests per minute per user (the default ``rate_limit``; 300 per project), a 429
is retried with backoff (Google sends no ``Retry-After``); 2 MB per request is Google's
recommendation (10 MB the documented hard limit), which 1,000 rows of 20 short fields stay under.
A 400 rejects the batch's records with Google's message (they are retried next run); 403/404 fail
the sync (the spreadsheet is missing or not shared with the account).

A changed identity (``Record.previous``: a new value under the same primary key) rewrites the row
of the old value, new value included; a row that already has the new value rejects the record
(``google_sheets_grid``).

Every mode is supported. ``mirror`` keeps the tab equal to the model: changed rows are rewritten in
place, new ones added at the bottom and rows that left the model deleted; rows the sync never wrote
(keys it never saw) are left alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import quote

import httpx

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, SyncTarget
from dbt_activate.delivery import JSON_HEADERS, HttpSession, body_snippet
from dbt_activate.destinations.api import ApiDestination, clip_reason, one_of
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.google_sheets.auth import ServiceAccountToken, load_service_account
from dbt_activate.destinations.google_sheets.grid import Grid, a1_range, plan, quote_sheet
from dbt_activate.destinations.google_sheets.values import Cell, UnwritableValue, key_text, row_cells
from dbt_activate.errors import ConfigError, DestinationError, Redactor

DEFAULT_BASE_URL = "https://sheets.googleapis.com"
VALUE_INPUT = {"raw": "RAW", "user_entered": "USER_ENTERED"}
MAX_BATCH = 10_000
_GROW_ROWS = 1000  # rows added at a time when a tab is full, so growing is rare


@dataclass
class _Tab:
    sheet_id: int
    rows: int  # grid size, not rows used
    cols: int
    grid: Grid


class GoogleSheetsDestination(ApiDestination):
    kind = "google_sheets"
    null_handling = Nulls.OMIT
    description = "A tab of a Google spreadsheet: a header row and one row per record (Sheets API v4)."
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("spreadsheet_id", str, required=True,
                  help="The spreadsheet's id: the part of its URL between /d/ and /edit."),
        ConfigKey("credentials_file", str,
                  help="Path to a service-account key file (JSON); share the spreadsheet with its client_email."),
        ConfigKey("credentials_json", (str, dict), secret=True,
                  help="The service-account key file's content, e.g. from env_var(); instead of credentials_file."),
        ConfigKey("value_input", str, default="raw",
                  help="raw: cells hold the values as they are (default); user_entered: Sheets parses them as "
                       "typed in the UI (dates become dates, and text starting with = becomes a formula)."),
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "rate_limit": ", Sheets' write quota per user.",
        "batch_size": f"Rows per request, 1-{MAX_BATCH:,}; keep requests under Google's 2 MB recommendation.",
    }
    modes = frozenset(Mode)
    default_base_url = DEFAULT_BASE_URL
    default_timeout = 60.0
    max_batch_size = MAX_BATCH
    batch_size = 1000
    max_concurrency = 1  # row numbers shift under concurrent writes
    rate_limit = RateLimit(60, 60.0)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.spreadsheet_id = self.settings.text("spreadsheet_id")
        if not self.spreadsheet_id:
            raise ConfigError("spreadsheet_id is required", location=f"{name}.spreadsheet_id")
        self.value_input = VALUE_INPUT[one_of(name, "value_input", self.settings.text("value_input"),
                                              tuple(VALUE_INPUT))]
        self.account = load_service_account(name, config)
        self.token = ServiceAccountToken(name, self.account)
        self.redactor = Redactor(self.secrets())  # again: the key file's secrets are known now
        self._tabs: dict[str, _Tab] = {}

    def session_options(self) -> Mapping[str, Any]:
        return {"max_connections": 1, "response_hook": self._refused}

    def secrets(self) -> list[str]:
        found = super().secrets()
        account = getattr(self, "account", None) or {}
        found.extend(str(account[k]) for k in ("private_key", "private_key_id") if account.get(k))
        raw = self.config.get("credentials_json")
        if isinstance(raw, Mapping):
            found.append(json.dumps(raw))
        return found

    def check_target(self, target: SyncTarget) -> None:
        if not target.object.strip() or len(target.object) > 100:
            raise ConfigError(f"object must be a tab name of 1-100 characters, got {target.object!r}",
                              location=_where(target))
        if len(target.identity) != 1 and target.mode is not Mode.APPEND:  # append never looks rows up
            raise ConfigError(f"a Google Sheets row is found by one column; the identity has "
                              f"{len(target.identity)} ({', '.join(target.identity)})", location=_where(target))

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        result = BatchResult()
        identity = _identity(target)
        records: list[tuple[str, Mapping[str, Cell]]] = []
        previous: dict[str, Cell] = {}  # identity cells last sent, of records whose identity changed
        for record in batch.records:
            try:
                cells = row_cells(record.values)
                if record.previous is not None:
                    previous[record.key] = row_cells({identity: record.previous.get(identity)})[identity]
            except UnwritableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            if batch.operation is not Operation.APPEND and not key_text(cells.get(identity)):
                result.rejected[record.key] = f"the identity {identity!r} is empty: no row can be found by it"
                continue
            records.append((record.key, cells))
        if not records:
            return result
        try:
            await self._apply(target, batch.operation, records, result, previous)
        except BaseException:
            self._tabs.pop(target.object, None)  # the tab may have changed: read it again on retry
            raise
        return result

    async def close(self) -> None:
        self._tabs.clear()
        await super().close()

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        base = f"{self.base_url}/v4/spreadsheets/{quote(self.spreadsheet_id, safe='')}"
        fields = target.field_names
        identity = _identity(target)
        if batch.operation is Operation.DELETE:
            keys = [r.values.get(identity) for r in batch.records]
            return {"method": "POST", "url": f"{base}:batchUpdate",
                    "body": {"requests": [{"deleteDimension": {"range": {"dimension": "ROWS"}}}]},
                    "rows": f"the rows of tab {target.object!r} whose {identity!r} is one of {keys}"}
        records = []
        for record in batch.records:
            try:
                records.append((record.key, row_cells(record.values)))
            except UnwritableValue:
                continue
        planned = plan([list(fields)], fields, identity, batch.operation, records)  # as if the tab were empty
        return {"method": "POST", "url": f"{base}/values:batchUpdate", "body": self._values_body(target, planned)}

    # -- requests ------------------------------------------------------------------------------

    async def _apply(self, target: SyncTarget, operation: Operation, records: list[tuple[str, Mapping[str, Cell]]],
                     result: BatchResult, previous: Mapping[str, Cell]) -> None:
        tab = await self._tab(target.object)
        planned = plan(tab.grid, target.field_names, _identity(target), operation, records, previous)
        result.skipped.update({k: v for k, v in planned.skipped.items()})
        result.rejected.update(planned.rejected)
        structural: list[dict[str, Any]] = [
            {"deleteDimension": {"range": {"sheetId": tab.sheet_id, "dimension": "ROWS",
                                           "startIndex": row, "endIndex": row + 1}}}
            for row in planned.deletes]
        if planned.rows_needed > tab.rows:
            grow = max(planned.rows_needed - tab.rows, _GROW_ROWS)
            structural.append({"appendDimension": {"sheetId": tab.sheet_id, "dimension": "ROWS", "length": grow}})
        if planned.cols_needed > tab.cols:
            structural.append({"appendDimension": {"sheetId": tab.sheet_id, "dimension": "COLUMNS",
                                                   "length": planned.cols_needed - tab.cols}})
        sent = {key for key, _ in records} - set(planned.skipped) - set(planned.rejected)
        if structural and not await self._post(":batchUpdate", {"requests": structural}, sent, result):
            return
        tab.rows += sum(r["appendDimension"]["length"] for r in structural
                        if r.get("appendDimension", {}).get("dimension") == "ROWS") - len(planned.deletes)
        tab.cols = max(tab.cols, planned.cols_needed)
        if planned.writes and not await self._post("/values:batchUpdate", self._values_body(target, planned),
                                                   sent, result):
            self._tabs.pop(target.object, None)
            return
        tab.grid = planned.grid

    def _values_body(self, target: SyncTarget, planned: Any) -> dict[str, Any]:
        return {"valueInputOption": self.value_input,
                "data": [{"range": a1_range(target.object, w), "majorDimension": "ROWS", "values": w.values}
                         for w in planned.writes]}

    async def _post(self, path: str, body: Mapping[str, Any], sent: set[str], result: BatchResult) -> bool:
        """POST to the spreadsheet; False when Google refused the batch (its records are rejected)."""
        session = self.session()
        response = await session.request(
            "POST", f"/v4/spreadsheets/{quote(self.spreadsheet_id, safe='')}{path}",
            content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            headers={**JSON_HEADERS, **await self.token.header(session)})
        if response.status_code == 200:
            return True
        reason = clip_reason(self.redactor(_google_error(response)))
        if 400 <= response.status_code < 500:
            result.rejected.update(dict.fromkeys(sent, reason))
            return False
        raise DestinationError(f"{self.name}: POST {path} answered {reason}")

    async def _tab(self, title: str) -> _Tab:
        """The tab's id, size and rows: kept from earlier batches, else read (and created if missing)."""
        if title in self._tabs:
            return self._tabs[title]
        session = self.session()
        base = f"/v4/spreadsheets/{quote(self.spreadsheet_id, safe='')}"
        meta = await self._get(session, base, {"fields": "sheets.properties"})
        found = next((s["properties"] for s in meta.get("sheets", [])
                      if s.get("properties", {}).get("title") == title), None)
        if found is None:
            response = await session.request(
                "POST", f"{base}:batchUpdate", headers={**JSON_HEADERS, **await self.token.header(session)},
                content=json.dumps({"requests": [{"addSheet": {"properties": {"title": title}}}]}).encode())
            if response.status_code != 200:
                raise DestinationError(self.redactor(f"{self.name}: cannot create tab {title!r}: "
                                                     f"{_google_error(response)}"))
            found = response.json()["replies"][0]["addSheet"]["properties"]
        values = await self._get(session, f"{base}/values/{quote(quote_sheet(title), safe='')}",
                                 {"majorDimension": "ROWS", "valueRenderOption": "UNFORMATTED_VALUE"})
        grid = found.get("gridProperties", {})
        tab = _Tab(int(found.get("sheetId", 0)), int(grid.get("rowCount", 1000)), int(grid.get("columnCount", 26)),
                   [list(r) for r in values.get("values", [])])
        self._tabs[title] = tab
        return tab

    async def _get(self, session: HttpSession, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        response = await session.request("GET", path, params=params, headers=await self.token.header(session))
        try:
            data = response.json() if response.status_code == 200 else None
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise DestinationError(self.redactor(f"{self.name}: GET {path.split('/values/')[0]} answered "
                                                 f"{_google_error(response)}"))
        return data

    def _refused(self, response: httpx.Response) -> None:
        """403/404 mean the spreadsheet is missing or not shared: say so, with the account to share with."""
        if response.status_code in (403, 404) and response.request.url.path.startswith("/v4/"):
            raise DestinationError(self.redactor(
                f"{self.name}: spreadsheet {self.spreadsheet_id!r}: {_google_error(response)}; check "
                f"spreadsheet_id and share the spreadsheet with {self.token.email} as Editor"))


def _google_error(response: httpx.Response) -> str:
    """``HTTP 400 INVALID_ARGUMENT: <message>`` from Google's ``{"error": {code, message, status}}``."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict):
        return f"HTTP {response.status_code} {error.get('status') or ''}: {error.get('message') or ''}".strip()
    return f"HTTP {response.status_code}: {body_snippet(response)}"


def _identity(target: SyncTarget) -> str:
    """The key column: the identity's field (append: its first, only used to index rows)."""
    return target.identity[0] if target.identity else target.field_names[0]


def _where(target: SyncTarget) -> str:
    return f"sync {target.sync_name}"
