"""Finding the records of a batch that HubSpot refused whole, so every other record is written in the same run.

HubSpot's batch upsert and update answer one invalid or conflicting input with an error for the
entire batch, not a 207 naming it: a 400 ``VALIDATION_ERROR`` whose message lists the property and
the value (``Property values were not valid: [{"isValid":false,"message":"Email address
name@domain.x is invalid","error":"INVALID_EMAIL","name":"email"}]``, no input index;
Atlas-Authority/marketing-automation issue #174), or a 409 (airbytehq/airbyte PR #76340,
"it returns a 409 for the entire batch"; HubSpot community "Contacts API Batch Upsert return 409
instead of 207"). Left at that, one bad row would make the whole batch rejected, and since
rejected rows are retried every run, its good rows would never arrive.

So a refused batch (``results.refusal``) is taken apart, each part sent again through the same
session, under the run's rate limiter and retries:

1. When the answer names the offending value (an invalid email, the email a conflict is about),
   the inputs carrying it are settled with HubSpot's reason and the rest is sent again at once:
   one extra request per bad row. When the value is not certain (the message also lists allowed
   values), those inputs are sent apart to check, and the rest with them: two extra requests.
2. Otherwise the batch is split in halves, recursively, both halves in flight at once; a single
   input refused is settled with the reason. A bad row costs at most 2·⌈log2 n⌉ extra requests
   (14 for a batch of 100).

At most ``MAX_EXTRA_REQUESTS`` extra requests per batch: the records still unresolved then are
rejected with HubSpot's reason (they are retried next run), so a batch that is refused for a reason
no split can fix costs a bounded number of requests. Every extra request carries a note for the
``-v``/``--debug`` log: what was split or left out, and how many records remain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from dbt_activate.core.types import BatchResult, Operation
from dbt_activate.destinations.api import await_all
from dbt_activate.destinations.hubspot.results import (
    Prepared,
    Refusal,
    named_inputs,
    read_batch_response,
    refusal,
    settle,
)
from dbt_activate.errors import Redactor

MAX_EXTRA_REQUESTS = 30  # per batch: two rows found by halving a batch of 100, or 30 named by value
Send = Callable[[Prepared, str], Awaitable[httpx.Response]]


@dataclass
class Isolation:
    """One batch's write: sent whole, then taken apart only if HubSpot refuses it whole."""

    name: str
    operation: Operation
    result: BatchResult
    redactor: Redactor
    send: Send  # posts a (part of the) batch with a note for the debug log
    extra_left: int = MAX_EXTRA_REQUESTS

    async def write(self, prepared: Prepared, note: str = "") -> None:
        response = await self.send(prepared, note)
        refused = refusal(response, prepared, self.operation, self.redactor)
        if refused is None:
            read_batch_response(self.name, response, prepared, self.operation, self.result, self.redactor)
        else:
            await self._take_apart(prepared, refused)

    async def _take_apart(self, prepared: Prepared, refused: Refusal) -> None:
        keys = list(prepared.sent)
        named, certain = named_inputs(refused, prepared, self.redactor)
        parts: list[tuple[list[str], str]] = []
        if named and certain:
            for key, reason in named.items():
                settle([key], refused.category, reason, self.operation, self.result)
            rest = [k for k in keys if k not in named]
            if rest:
                parts.append((rest, f"HubSpot refused {_records(len(keys))} for a value it named: resending the "
                                    f"other {_records(len(rest))}, {_records(len(named))} settled with its reason"))
        elif named and len(named) < len(keys):
            rest = [k for k in keys if k not in named]
            parts.append((rest, f"HubSpot refused {_records(len(keys))}: resending {_records(len(rest))} "
                                f"without the {len(named)} its error seems to name"))
            parts.append((list(named), f"checking apart the {_records(len(named))} HubSpot's error seems to name"))
        else:
            half = (len(keys) + 1) // 2
            for number, part in enumerate((keys[:half], keys[half:]), start=1):
                parts.append((part, f"HubSpot refused {_records(len(keys))} without naming one: "
                                    f"half {number} of 2, {_records(len(part))}"))
        if len(parts) > self.extra_left:
            unresolved = [k for k in keys if k not in self.result.rejected and k not in self.result.skipped]
            reason = (f"{refused.reason} (HubSpot refused its batch whole; not isolated within "
                      f"{MAX_EXTRA_REQUESTS} extra requests, so it is retried next run)")
            settle(unresolved, "", reason, self.operation, self.result)  # rejected: never skip unchecked rows
            return
        self.extra_left -= len(parts)
        await await_all(self.write(prepared.subset(part), note) for part, note in parts)


def _records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"
