"""Capture every HTTP exchange a connector makes, answered by an emulator in process.

``EmulatorTransport`` is an ``httpx`` transport that hands each request to an emulator's
``dispatch`` (the same entry point its HTTP server calls) instead of a socket, and records the
request and the response as an ``Exchange``. The connector under test is the real one, built with
``transport=``; only the socket is left out, so a scenario of dozens of requests takes milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

from dbt_activate.testing.server import Emulator


@dataclass(frozen=True)
class Exchange:
    """One request as the connector sent it and the emulator's answer."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int
    response_headers: dict[str, str]
    response_body: bytes
    response_type: str
    operation: str = field(default="", compare=False)  # the sync operation that made it, for messages

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    def __str__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.query)
        return f"[{self.operation}] {self.method} {self.path}{'?' + query if query else ''} -> {self.status}"


class EmulatorTransport(httpx.AsyncBaseTransport):
    """Requests go to ``emulator.dispatch`` in process; every exchange lands in ``exchanges``."""

    def __init__(self, emulator: Emulator, exchanges: list[Exchange], operation: str = "") -> None:
        self.emulator, self.exchanges, self.operation = emulator, exchanges, operation

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        headers = {name.lower(): value for name, value in request.headers.items()}
        answer = self.emulator.dispatch(request.method, target, headers, body)
        if answer is None:  # an injected drop: what a closed connection looks like to httpx
            raise httpx.RemoteProtocolError("the emulator closed the connection", request=request)
        response_headers = dict(answer.headers)
        if answer.content_type:
            response_headers["content-type"] = answer.content_type
        path, _, query = target.partition("?")
        self.exchanges.append(Exchange(
            request.method, path, tuple(parse_qsl(query, keep_blank_values=True)), headers, body, answer.status,
            {k.lower(): v for k, v in response_headers.items()}, answer.body,
            answer.content_type.split(";")[0].strip(), self.operation))
        return httpx.Response(answer.status, headers=response_headers, content=answer.body, request=request)
