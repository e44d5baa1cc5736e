"""The ``requests:`` section of an ``http`` destination: one request description per operation.

Parsed and compiled when the destination is built, so a bad template, JSONPath, method or key is
a ``ConfigError`` naming ``destinations.yml: <destination>.requests.<operation>.<key>`` before any
row is read. The fields of ``RequestSpec`` are the one table of keys (``REQUEST_KEYS``, with the YAML type
each accepts, which parsing checks, and what the key means).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from dbt_activate.core.types import Operation
from dbt_activate.destinations.http.template import SOURCE, Path, Template
from dbt_activate.errors import ConfigError

METHODS = ("POST", "PUT", "PATCH", "DELETE")


def _key(accepts: type | tuple[type, ...], meaning: str) -> dict[str, Any]:
    """The metadata of a ``RequestSpec`` field that is a key: what YAML type it accepts, what it means."""
    return {"accepts": accepts, "help": meaning}


@dataclass(frozen=True)
class RequestSpec:
    """One operation's request, compiled; every field with ``_key`` metadata is a key of the entry."""

    operation: Operation
    location: str  # "<destination>.requests.<operation>", for messages
    method: str = field(default="POST", metadata=_key(str, "POST (default), PUT, PATCH or DELETE."))
    path: Template | None = field(default=None, metadata=_key(
        str, "Template of the path after base_url; sees `record` when per_record, else `records`."))
    body: Template | None = field(default=None, metadata=_key(
        str, "Template of the body; default: the records (or the record) as JSON; none for DELETE."))
    per_record: bool = field(default=False, metadata=_key(bool, "One request per record instead of one per batch."))
    content_type: str = field(default="application/json", metadata=_key(
        str, "Content-Type of the body; default application/json (bodies are checked to be JSON)."))
    headers: Mapping[str, str] = field(default_factory=dict, metadata=_key(
        dict, "Extra headers for this request only."))
    success_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath that must find a true value in a 2xx body, else the request's records are rejected."))
    errors_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath to the per-record errors in a 2xx body, e.g. $.errors[*]."))
    skipped_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath to records the API skipped (e.g. update of an unknown id)."))
    error_key_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath inside one error item to the record's key, e.g. $.id."))
    error_index_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath inside one error item to the record's 0-based position in the request."))
    error_message_path: Path | None = field(default=None, metadata=_key(
        str, "JSONPath to the message, inside an error item, or in a non-2xx body."))
    key_field: str | None = field(default=None, metadata=_key(
        str, "Record field the error keys refer to; default the sync's identity field."))
    ok_statuses: frozenset[int] = field(default=frozenset(), metadata=_key(
        list, "Non-2xx statuses that mean done, e.g. [404] for a delete."))
    skip_statuses: frozenset[int] = field(default=frozenset(), metadata=_key(
        list, "Statuses that mean the record was skipped, e.g. [404] for an update."))

    @property
    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip().lower().endswith(("/json", "+json"))


# The keys of a request entry: name -> (accepted type, help).
REQUEST_KEYS: dict[str, tuple[type | tuple[type, ...], str]] = {
    f.name: (f.metadata["accepts"], f.metadata["help"]) for f in fields(RequestSpec) if f.metadata}


def parse_requests(name: str, raw: Any) -> dict[Operation, RequestSpec]:
    """``requests:`` -> one ``RequestSpec`` per configured operation."""
    where = f"{name}.requests"
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError("must map operations (upsert, update, create, append, delete, clear) to requests",
                          location=f"{SOURCE}: {where}")
    specs: dict[Operation, RequestSpec] = {}
    for op_name, entry in raw.items():
        try:
            operation = Operation(str(op_name))
        except ValueError:
            known = ", ".join(o.value for o in Operation)
            raise ConfigError(f"unknown operation {op_name!r} (known: {known})",
                              location=f"{SOURCE}: {where}.{op_name}") from None
        specs[operation] = _parse_one(operation, f"{where}.{op_name}", entry)
    return specs


def _parse_one(operation: Operation, where: str, entry: Any) -> RequestSpec:
    if not isinstance(entry, Mapping):
        raise ConfigError("must be a mapping (method, path, body, …)", location=f"{SOURCE}: {where}")
    for key, value in entry.items():
        spec = REQUEST_KEYS.get(key)
        if spec is None:
            raise ConfigError(f"unknown key {key!r} (known: {', '.join(sorted(REQUEST_KEYS))})",
                              location=f"{SOURCE}: {where}.{key}")
        if value is not None and not isinstance(value, spec[0]):
            raise ConfigError(f"must be a {_type_name(spec[0])}, got {type(value).__name__}",
                              location=f"{SOURCE}: {where}.{key}")
    method = str(entry.get("method") or "POST").upper()
    if method not in METHODS:
        raise ConfigError(f"must be one of {', '.join(METHODS)}, got {method!r}", location=f"{SOURCE}: {where}.method")

    def template(key: str) -> Template | None:
        value = entry.get(key)
        return Template(value, f"{where}.{key}") if isinstance(value, str) else None

    def path(key: str) -> Path | None:
        value = entry.get(key)
        return Path(value, f"{where}.{key}") if isinstance(value, str) and value.strip() else None

    def statuses(key: str) -> frozenset[int]:
        values = entry.get(key) or []
        if not all(isinstance(v, int) and 200 <= v < 600 for v in values):
            raise ConfigError("must be a list of HTTP status codes", location=f"{SOURCE}: {where}.{key}")
        return frozenset(values)

    headers = entry.get("headers") or {}
    return RequestSpec(
        operation=operation, location=where, method=method, path=template("path"), body=template("body"),
        per_record=bool(entry.get("per_record", False)),
        content_type=str(entry.get("content_type") or "application/json"),
        headers={str(k): str(v) for k, v in headers.items()},
        success_path=path("success_path"), errors_path=path("errors_path"), skipped_path=path("skipped_path"),
        error_key_path=path("error_key_path"), error_index_path=path("error_index_path"),
        error_message_path=path("error_message_path"), key_field=entry.get("key_field") or None,
        ok_statuses=statuses("ok_statuses"), skip_statuses=statuses("skip_statuses"),
    )


def _type_name(kind: type | tuple[type, ...]) -> str:
    return kind.__name__ if isinstance(kind, type) else " or ".join(t.__name__ for t in kind)
