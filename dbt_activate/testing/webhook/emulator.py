"""``WebhookReceiver``: a local endpoint that speaks the ``webhook`` destination's contract.

It accepts ``POST``/``PUT`` on any path, checks the payload shape, keeps what it was sent (``requests``)
and the resulting records (``records``, ``events``), and answers like a well-behaved receiver:
``200 {"accepted": n, "rejected": [...], "skipped": [...]}``, where ``update`` of an unknown key and
``create`` of a known key come back as skipped. Knobs, all changeable while it runs::

    with WebhookReceiver(reject_keys={"13"}) as hook:
        hook.fail_next(500)                      # next request: HTTP 500
        hook.fail_next(429, retry_after=1)       # ... then a 429 with Retry-After: 1
        hook.drop_next()                         # ... then a closed connection, no answer
        hook.latency = 0.05                      # seconds before every answer
        WebhookDestination("hook", {"type": "webhook", "url": hook.url})

Rate limits, daily quotas and random faults come from the emulator base (``server.py``).
``serve(port)`` runs one until interrupted, for ``python -m dbt_activate.testing webhook``.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.server import Emulator

OPERATIONS = frozenset({"upsert", "update", "create", "append", "delete", "clear"})


@dataclass(frozen=True)
class ReceivedRequest:
    """One request that reached the receiver's handler (past authentication and rate limits)."""

    method: str
    path: str
    headers: Mapping[str, str]  # names in lower case
    payload: Any  # the parsed JSON body (None if it was not JSON)
    status: int

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class _Failure:
    status: int
    retry_after: float | None
    body: str


class WebhookReceiver(Emulator):
    """See the module docstring. ``token``: require ``Authorization: Bearer <token>`` (off by default);
    ``required_headers``: other headers that must be present with these values (else 401)."""

    vendor = "webhook"

    def __init__(
        self,
        *,
        reject_keys: Iterable[str] | Mapping[str, str] = (),
        token: str | None = None,
        required_headers: Mapping[str, str] | None = None,
        path: str = "/hook",
        **options: Any,
    ) -> None:
        super().__init__(token=token, **options)
        self.path = path
        self.reject_keys: dict[str, str] = (
            dict(reject_keys) if isinstance(reject_keys, Mapping)
            else dict.fromkeys(reject_keys, "rejected by the test receiver"))
        self.required_headers = dict(required_headers or {})
        self.requests: list[ReceivedRequest] = []
        self.records: dict[str, dict[str, Any]] = {}  # key -> current record, after every operation
        self.events: list[dict[str, Any]] = []  # appended records, in arrival order
        self._failures: deque[_Failure] = deque()
        self._failures_lock = threading.Lock()
        self.route("POST", r"/.*", self._receive, writes=True)
        self.route("PUT", r"/.*", self._receive, writes=True)

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def fail_next(self, status: int, n: int = 1, *, retry_after: float | None = None, body: str = "") -> None:
        """Answer the next ``n`` requests with ``status`` (and ``Retry-After``, ``body`` if given)."""
        with self._failures_lock:
            self._failures.extend([_Failure(status, retry_after, body)] * n)

    def drop_next(self, n: int = 1) -> None:
        """Close the connection of the next ``n`` requests without answering (nothing is stored)."""
        self.inject("drop", count=n)

    def payloads(self) -> list[Any]:
        """Payloads of the requests that were acknowledged (2xx), in arrival order."""
        with self.lock:
            return [r.payload for r in self.requests if 200 <= r.status < 300]

    def authenticate(self, request: Request) -> Response | None:
        for name, value in self.required_headers.items():
            if request.header(name) != value:
                return self.error_response(ApiError(401, f"missing or wrong {name} header", "UNAUTHORIZED"))
        return super().authenticate(request)

    def _receive(self, request: Request) -> Response:
        with self._failures_lock:
            failure = self._failures.popleft() if self._failures else None
        try:
            payload = json.loads(request.body)
        except ValueError:
            payload = None
        if failure is not None:
            headers = {} if failure.retry_after is None else {"Retry-After": f"{failure.retry_after:g}"}
            response = Response.text(failure.body or f"injected failure {failure.status}", failure.status)
            response.headers.update(headers)
        else:
            try:
                response = Response.json(self._apply(_checked(payload)))
            except ApiError as err:
                response = self.error_response(err)
        with self.lock:
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.requests.append(ReceivedRequest(request.method, request.path, headers, payload, response.status))
        return response

    def _apply(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        rejected: list[dict[str, str]] = []
        skipped: list[dict[str, str]] = []
        with self.lock:
            self.count_records(len(records))
            for item in records:
                key, operation, values = str(item["key"]), item["operation"], item["record"]
                if key in self.reject_keys:
                    rejected.append({"key": key, "reason": self.reject_keys[key]})
                elif operation == "update" and key not in self.records:
                    skipped.append({"key": key, "reason": "no such record"})
                elif operation == "create" and key in self.records:
                    skipped.append({"key": key, "reason": "record exists"})
                elif operation == "append":
                    self.events.append(dict(values))
                elif operation == "delete":
                    self.records.pop(key, None)
                elif operation == "clear":
                    cleared = dict.fromkeys(self.records.get(key, {}))
                    self.records[key] = {**cleared, **values}
                else:
                    self.records[key] = {**self.records.get(key, {}), **values}
        accepted = len(records) - len(rejected) - len(skipped)
        return {"accepted": accepted, "rejected": rejected, "skipped": skipped}


def _checked(payload: Any) -> list[dict[str, Any]]:
    """The records of a payload that follows the contract; the receiver's 400 otherwise."""
    if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
        raise ApiError(400, "body must be a JSON object with a 'records' list", "INVALID_PAYLOAD")
    for field in ("sync", "object", "operation"):
        if not isinstance(payload.get(field), str):
            raise ApiError(400, f"body needs a string {field!r}", "INVALID_PAYLOAD")
    records: list[dict[str, Any]] = payload["records"]
    for index, item in enumerate(records):
        if not (isinstance(item, dict) and "key" in item and isinstance(item.get("record"), dict)
                and item.get("operation") in OPERATIONS):
            raise ApiError(400, f"records[{index}] must be {{key, operation, record}}", "INVALID_PAYLOAD")
    return records


def serve(port: int, host: str = "127.0.0.1", *,
          ready: Callable[[WebhookReceiver], None] | None = None, **options: Any) -> None:
    """Run a receiver on ``host:port`` until interrupted; ``ready`` is called once it listens."""
    with WebhookReceiver(host=host, port=port, **options) as receiver:
        if ready is not None:
            ready(receiver)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a user stops it
            threading.Event().wait()
