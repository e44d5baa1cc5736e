"""Control endpoints under ``/_emulator/`` for an emulator running in another process.

Benchmarks and the demo run ``python -m dbt_activate.testing <vendor>`` and still need what tests
get from the Python object. These paths are not the vendor's: they need no credential, are not
counted, and never meet a fault or a limiter.

- ``GET  /_emulator/counters``         -> the ``Counts`` as JSON
- ``POST /_emulator/counters/reset``
- ``GET  /_emulator/records/{object}`` -> ``emu.records(object)``; the webhook receiver keeps one store
  for every path: its current records, whatever ``{object}``
- ``POST /_emulator/knobs``            body ``{"latency": 0.05, "rate_limit": "100/10", "daily_limit": null}``
- ``POST /_emulator/faults``           body ``{"kind": "status_5xx", "count": 2, "status": 502, "path": "…"}``
- ``DELETE /_emulator/faults``
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from dbt_activate.testing.faults import Fault
from dbt_activate.testing.messages import Response

if TYPE_CHECKING:
    from dbt_activate.testing.server import Emulator

PREFIX = "/_emulator/"
_KNOBS = ("latency", "rate_limit", "daily_limit")


def control(emulator: Emulator, method: str, path: str, body: bytes) -> Response:
    try:
        payload: Any = json.loads(body) if body else {}
        return _route(emulator, method, path[len(PREFIX):].strip("/"), payload)
    except (ValueError, TypeError, KeyError) as exc:
        return Response.json({"error": str(exc)}, 400)


def _route(emulator: Emulator, method: str, what: str, payload: Any) -> Response:
    if (method, what) == ("GET", "counters"):
        return Response.json(asdict(emulator.counters))
    if (method, what) == ("POST", "counters/reset"):
        emulator.reset_counters()
        return Response.empty()
    if method == "GET" and what.startswith("records/"):
        records = getattr(emulator, "records", None)
        if isinstance(records, Mapping):  # one store for every object (the webhook receiver): its records
            with emulator.lock:
                return Response.json(list(records.values()))
        if not callable(records):
            return Response.json({"error": f"{emulator.vendor} has no records accessor"}, 404)
        return Response.json(records(what.removeprefix("records/")))
    if (method, what) == ("POST", "knobs"):
        for name in _KNOBS:
            if name in payload:
                setattr(emulator, name, payload[name])
        return Response.json({"latency": emulator.latency, "daily_limit": emulator.daily_limit,
                              "rate_limit": asdict(emulator.rate_limit) if emulator.rate_limit else None})
    if (method, what) == ("POST", "faults"):
        options = {k: v for k, v in payload.items() if k != "count"}
        if "fail_indexes" in options:
            options["fail_indexes"] = tuple(options["fail_indexes"])
        emulator.inject(Fault(**options), int(payload.get("count", 1)))
        return Response.json({"pending": emulator.pending_faults})
    if (method, what) == ("DELETE", "faults"):
        emulator.clear_faults()
        return Response.empty()
    return Response.json({"error": f"unknown control endpoint {method} {PREFIX}{what}"}, 404)
