"""``http``: a declarative destination for any JSON REST API, described in destinations.yml.

Configuration (``destinations.yml``)::

    crm_api:
      type: http
      base_url: https://api.example.com/v1
      headers: {Authorization: "Bearer {{ env_var('CRM_TOKEN') }}"}   # values are secrets
      batch_size: 50
      rate_limit: {requests: 10, per_seconds: 1}
      requests:                       # one entry per operation the syncs need
        upsert:                       # upsert | update | create | append | delete | clear
          method: POST
          path: /contacts/batch
          body: '{"contacts": {{ records | tojson }}}'
          errors_path: "$.errors[*]"
          error_key_path: "$.email"
          error_message_path: "$.message"
        delete:
          method: DELETE
          path: "/contacts/{{ record.email | urlencode }}"
          per_record: true
          ok_statuses: [404]          # already gone

``requests`` is a deferred key: destinations.yml renders ``env_var()`` everywhere else when it is
read and leaves the request templates to this destination, which renders them per request (keep
credentials in ``headers``).
A batch request's templates see ``records`` (the batch's records, values JSON-ready: dates ISO
8601, decimals as numbers when exact, binary as base64) and ``keys``; a ``per_record`` request's
see ``record`` and ``key``; both see ``sync``, ``object``, ``operation`` and ``run_id``. Without a
``body`` the records (or the record) are sent as JSON; a DELETE has no body unless one is given.
A record whose identity changed (``Record.previous``: a new email under the same primary key)
brings the identity last sent: ``previous`` in a ``per_record`` request (``none`` otherwise), e.g.
``path: "/contacts/{{ (previous or record).email | urlencode }}"`` to update the record the API
has under the old value; ``previous_by_key`` (key -> identity, moved records only) in a batch's.

Responses are read by ``http_results.py``: per-record errors by JSONPath, statuses that mean
done or skipped, and ``HttpSession`` for the rest (429 and 5xx retried with backoff, honouring
``Retry-After``; 401/403 fail the sync). Every key is checked when the destination is built, so a
bad template or JSONPath is a ``ConfigError`` naming ``destinations.yml: <name>.requests.<op>.<key>``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from dbt_activate.core.types import Batch, BatchResult, Mode, Operation, SyncTarget
from dbt_activate.delivery import UnencodableValue, credential_values, encode_record
from dbt_activate.destinations.api import ApiDestination, header_values
from dbt_activate.destinations.base import ConfigKey
from dbt_activate.destinations.http.request import RequestSpec, parse_requests
from dbt_activate.destinations.http.results import Reply, read_reply
from dbt_activate.destinations.http.template import SOURCE, to_json
from dbt_activate.errors import ConfigError, DestinationError

# The operations each mode sends; removals (on_delete) add DELETE or CLEAR at run time.
_MODE_OPERATIONS = {
    Mode.UPSERT: (Operation.UPSERT,), Mode.MIRROR: (Operation.UPSERT, Operation.DELETE),
    Mode.UPDATE: (Operation.UPDATE,), Mode.CREATE: (Operation.CREATE,), Mode.APPEND: (Operation.APPEND,),
}
_DESCRIBED_REQUESTS = 10  # per_record batches: plan shows the first few requests


class HttpDestination(ApiDestination):
    kind = "http"
    description = "Any JSON REST API: requests per operation from templates, per-record errors by JSONPath."
    deferred_keys = ("requests",)
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("base_url", str, required=True, help="Origin and base path of the API (http or https)."),
        ConfigKey("requests", dict, required=True,
                  help="Operation (upsert, update, create, append, delete, clear) -> request: method, path, "
                       "body, per_record, errors_path, error_key_path, error_message_path, … (see README)."),
        ConfigKey("headers", dict, default={}, secret=True,
                  help="Headers of every request, e.g. Authorization; their values are treated as secrets."),
    )
    batch_size = 100

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.headers = header_values(self.settings.get('headers'), location=f"{SOURCE}: {name}.headers",
                                     problem="must be a mapping of header name to value")
        self.requests = parse_requests(name, self.settings.get("requests"))

    def resolve_base_url(self, name: str, config: Mapping[str, Any]) -> str:
        base_url = str(config.get("base_url") or "")
        scheme = urlsplit(base_url).scheme
        if scheme not in ("http", "https"):
            raise ConfigError(f"must start with http:// or https://, got scheme {scheme!r}",
                              location=f"{SOURCE}: {name}.base_url")
        return base_url.rstrip("/")

    def secrets(self) -> list[str]:
        """Header values (and the token inside ``Bearer <token>``) and credentials inside base_url."""
        found = credential_values(self.config.get("headers") or {}, all_headers=True)
        parts = urlsplit(str(self.config.get("base_url") or ""))
        if parts.password:
            found.append(parts.password)
        found.extend(v for _, v in parse_qsl(parts.query) if len(v) >= 8)
        return found

    # -- the seam -------------------------------------------------------------------------------

    def check_target(self, target: SyncTarget) -> None:
        where = f"http destination {self.name!r}, sync {target.sync_name!r}"
        missing = [op.value for op in _MODE_OPERATIONS[target.mode] if op not in self.requests]
        if missing:
            raise ConfigError(f"{where}: mode {target.mode.value!r} needs requests.{missing[0]} in {SOURCE} "
                              f"(configured: {', '.join(op.value for op in self.requests)})")
        for op, spec in self.requests.items():
            if spec.key_field and spec.key_field not in (*target.field_names, *target.identity):
                raise ConfigError(f"{where}: requests.{op.value}.key_field {spec.key_field!r} is not a field of "
                                  f"the sync (fields: {', '.join(target.field_names)})")

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        spec = self._spec(target, batch.operation)
        result = BatchResult()
        sent = self._encoded(batch, result)
        previous = _previous(batch)
        key_field = spec.key_field or (target.identity[0] if len(target.identity) == 1 else None)
        session = self.session()
        for group in ([[item] for item in sent] if spec.per_record else [sent] if sent else []):
            method, path, body = self._render(spec, target, group, previous)
            headers = {**spec.headers}
            if body is not None and not any(name.lower() == "content-type" for name in headers):
                headers["Content-Type"] = spec.content_type
            # Same request, same key: a retried batch carries the key of its first attempt.
            headers["Idempotency-Key"] = hashlib.sha256(f"{method} {path}\n".encode() + (body or b"")).hexdigest()[:32]
            response = await session.request(method, path, content=body, headers=headers)
            reply = Reply(response.status_code, response.reason_phrase, response.text)
            read_reply(spec, reply, [k for k, _ in group], [v for _, v in group], key_field, result, self.redactor)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        spec = self._spec(target, batch.operation)
        sent = self._encoded(batch, BatchResult())
        groups = [[item] for item in sent][:_DESCRIBED_REQUESTS] if spec.per_record else [sent]
        described = []
        for group in groups:
            method, path, body = self._render(spec, target, group, _previous(batch))
            text = body.decode() if body is not None else None
            shown: Any = json.loads(text) if text is not None and spec.is_json else text
            described.append({"method": method, "url": self.redactor(self.base_url.rstrip("/") + path),
                              "body": shown})
        return {"operation": batch.operation.value, "requests": described}

    def estimate_requests(self, operation: Operation, records: int) -> int:
        spec = self.requests.get(operation)
        if spec is not None and spec.per_record:
            return records
        return super().estimate_requests(operation, records)

    # -- helpers --------------------------------------------------------------------------------

    def _spec(self, target: SyncTarget, operation: Operation) -> RequestSpec:
        spec = self.requests.get(operation)
        if spec is None:
            raise DestinationError(f"http destination {self.name!r}, sync {target.sync_name!r}: the sync needs "
                                   f"operation {operation.value!r} but {SOURCE} has no "
                                   f"{self.name}.requests.{operation.value}; add it (or change on_delete)")
        return spec

    @staticmethod
    def _encoded(batch: Batch, result: BatchResult) -> list[tuple[str, dict[str, Any]]]:
        """(key, JSON-ready values) of each record; those JSON cannot carry are rejected here."""
        sent: list[tuple[str, dict[str, Any]]] = []
        for record in batch.records:
            try:
                sent.append((record.key, encode_record(record.values)))
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
        return sent

    def _render(self, spec: RequestSpec, target: SyncTarget, group: Sequence[tuple[str, dict[str, Any]]],
                previous: Mapping[str, dict[str, Any]]) -> tuple[str, str, bytes | None]:
        context: dict[str, Any] = {"sync": target.sync_name, "object": target.object,
                                   "operation": spec.operation.value, "run_id": target.run_id}
        if spec.per_record:
            context.update(key=group[0][0], record=group[0][1], previous=previous.get(group[0][0]))
        else:
            context.update(keys=[k for k, _ in group], records=[v for _, v in group],
                           previous_by_key={k: previous[k] for k, _ in group if k in previous})
        path = spec.path.render(context).strip() if spec.path is not None else ""
        if urlsplit(path).scheme:
            # Headers carry credentials: they go to base_url's host only.
            raise DestinationError(f"{SOURCE}: {spec.location}.path must be a path under base_url, not a URL")
        if path and not path.startswith(("/", "?")):
            path = "/" + path
        if spec.body is not None:
            text: str | None = spec.body.render(context)
        elif spec.method == "DELETE":
            text = None
        else:
            text = to_json(context["record"] if spec.per_record else context["records"])
        if text is not None and spec.is_json:
            try:
                json.loads(text)
            except ValueError as exc:
                raise DestinationError(f"{SOURCE}: {spec.location}.body did not render to JSON ({exc}); fix the "
                                       "template or set content_type") from None
        return spec.method, path, text.encode() if text is not None else None

    def session_headers(self) -> Mapping[str, str]:
        return {"Accept": "application/json", **self.headers}


def _previous(batch: Batch) -> dict[str, dict[str, Any]]:
    """The identity last sent of each record whose identity changed, JSON-ready, by key."""
    return {r.key: encode_record(r.previous) for r in batch.records if r.previous is not None}
