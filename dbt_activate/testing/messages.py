"""The request and response values the emulators' route handlers see and return."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from dbt_activate.testing.faults import Fault

# orjson parses and writes JSON 5-10x faster than the json module: the HubSpot emulator spent 40% of
# its CPU there, CPU that benchmarks and tests take from the client under test on the same cores.
# Where orjson refuses what json accepts (NaN literals, integers past 64 bits, non-text keys), the
# json module answers, so what the emulators accept and send is unchanged.
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def parse_json(body: bytes) -> Any:
    """``json.loads(body)``, through orjson where it can."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


def dump_json(payload: Any) -> bytes:
    """``json.dumps(payload, separators=(",", ":"), ensure_ascii=False)`` as UTF-8, but for float
    exponents (``1e-7`` for ``1e-07``: the same number) and NaN or ±Infinity, written as ``null``
    (json writes ``NaN``, which is not JSON; the clients under test never send one)."""
    try:
        return orjson.dumps(payload, option=_JSON_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class ApiError(Exception):
    """Raised by a route handler; the emulator renders it in its vendor's error shape."""

    def __init__(self, status: int, message: str, code: str = "", **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.extra = extra


def as_int(value: Any, name: str, default: int) -> int:
    """``value`` (from a query string or a JSON body) as an integer, else a 400 naming ``name``."""
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"{name} must be an integer, got {value!r}", "VALIDATION_ERROR") from None


@dataclass(frozen=True)
class Request:
    """One HTTP request as a route handler sees it; ``params`` are the route regex's groups."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    params: Mapping[str, str] = field(default_factory=dict)
    fault: Fault | None = None  # a ``partial`` fault the handler applies to some records

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int) -> int:
        """Query parameter ``name`` as an integer; anything else is the vendor's 400."""
        return as_int(self.arg(name), name, default)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body parsed as JSON; malformed JSON is the vendor's 400."""
        try:
            return parse_json(self.body or b"null")
        except ValueError as exc:
            raise ApiError(400, f"Invalid input JSON: {exc}", "INVALID_JSON") from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object (an empty body is ``{}``); any other JSON is the vendor's 400."""
        body = self.json()
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid input JSON: expected an object", "INVALID_JSON")
        return body

    def text(self) -> str:
        return self.body.decode("utf-8-sig")

    def fails(self, index: int, total: int) -> bool:
        """Must record ``index`` of ``total`` fail because a ``partial`` fault was injected?"""
        return self.fault is not None and self.fault.fails(index, total)


@dataclass
class Response:
    """A response; always sent with a Content-Length so keep-alive connections stay usable."""

    status: int
    body: bytes = b""
    content_type: str = "application/json;charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
        return cls(status, dump_json(payload), headers=dict(headers or {}))

    @classmethod
    def text(cls, text: str, status: int = 200, content_type: str = "text/plain;charset=utf-8") -> Response:
        return cls(status, text.encode("utf-8"), content_type)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        return cls(status, b"", "")
