"""How the ``http`` destination reads one response into rejected and skipped records (pure).

=========================================  =================================================
status in ``ok_statuses``                  every record of the request is acknowledged
status in ``skip_statuses``                every record is skipped, with the API's message
2xx, ``success_path`` finds no true value  every record is rejected, with the API's message
2xx                                        acknowledged, except items at ``errors_path``
                                           (rejected) and ``skipped_path`` (skipped)
other 4xx                                  every record is rejected, with the API's message
1xx, 3xx                                   ``DestinationError``: nothing says what arrived
=========================================  =================================================

429, 5xx, 401 and 403 never get here: ``HttpSession`` raises for them (retry, or fail the sync).
An error item names its record by ``error_key_path`` (compared with the record's ``key_field``)
or ``error_index_path`` (position in the request). An item that names no record of the request,
or a configuration without either path, blames every record of the request: an error that cannot
be attributed must not let any record be marked as synced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_activate.core.types import BatchResult
from dbt_activate.destinations.api import clip_reason
from dbt_activate.destinations.http.request import RequestSpec
from dbt_activate.errors import DestinationError


@dataclass(frozen=True)
class Reply:
    """The parts of a response the rules look at."""

    status: int
    reason_phrase: str
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text) if self.text.strip() else None
        except ValueError:
            return None


def read_reply(spec: RequestSpec, reply: Reply, keys: Sequence[str], records: Sequence[Mapping[str, Any]],
               key_field: str | None, result: BatchResult, redact: Callable[[str], str] = str) -> None:
    """Record in ``result`` what ``reply`` says about the request that carried ``keys``/``records``."""
    body = reply.json()
    status = reply.status
    if status in spec.ok_statuses:
        return
    if status in spec.skip_statuses:
        result.skipped.update(dict.fromkeys(keys, redact(_reply_message(spec, reply, body))))
        return
    if 200 <= status < 300:
        if spec.success_path is not None and not any(spec.success_path.find(body)):
            reason = _reply_message(spec, reply, body, prefix="no success in the response")
            result.rejected.update(dict.fromkeys(keys, redact(reason)))
            return
        for path, outcome in ((spec.errors_path, result.rejected), (spec.skipped_path, result.skipped)):
            if path is None or body is None:
                continue
            for item in path.find(body):
                reason = redact(_item_message(spec, item))
                for key in _blamed(spec, item, keys, records, key_field):
                    if key not in result.rejected:
                        outcome[key] = reason
        return
    if 400 <= status < 500:
        result.rejected.update(dict.fromkeys(keys, redact(_reply_message(spec, reply, body))))
        return
    raise DestinationError(redact(f"{spec.location}: the API answered HTTP {status} {reply.reason_phrase}; "
                                  "redirects are not followed (use the final URL) and 1xx is not an answer"))


def _blamed(spec: RequestSpec, item: Any, keys: Sequence[str], records: Sequence[Mapping[str, Any]],
            key_field: str | None) -> list[str]:
    if spec.error_index_path is not None:
        index = spec.error_index_path.first(item)
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(keys):
            return [keys[index]]
        if isinstance(index, str) and index.isdigit() and int(index) < len(keys):
            return [keys[int(index)]]
    if spec.error_key_path is not None and key_field:
        wanted = spec.error_key_path.first(item)
        if wanted is not None:
            found = [k for k, r in zip(keys, records, strict=True) if _same(r.get(key_field), wanted)]
            if found:
                return found
    return list(keys)


def _same(value: Any, wanted: Any) -> bool:
    if value is None:
        return False
    return value == wanted or str(value) == str(wanted)


def _item_message(spec: RequestSpec, item: Any) -> str:
    found = spec.error_message_path.first(item) if spec.error_message_path is not None else None
    text = _text(found) if found is not None else _text(item)
    return clip_reason(text or "refused by the API")


def _reply_message(spec: RequestSpec, reply: Reply, body: Any, prefix: str = "") -> str:
    found = spec.error_message_path.first(body) if spec.error_message_path is not None and body is not None else None
    detail = _text(found) if found is not None else " ".join(reply.text.split())[:200]
    head = f"HTTP {reply.status} {reply.reason_phrase}".strip()
    return clip_reason(f"{prefix + ': ' if prefix else ''}{head}: {detail}" if detail else head)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
