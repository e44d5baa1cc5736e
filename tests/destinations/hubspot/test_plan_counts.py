"""`plan` counts the requests HubSpot's `write` makes (issue 18 §4): the oracle is `write` itself,
over ``httpx.MockTransport``, per operation and identity."""

from __future__ import annotations

import httpx
import pytest

from dbt_activate.core.types import Batch, Mode, Operation, Record
from tests.destinations.hubspot.test_unit import hubspot, recording, target, write


def _records(identity: str, n: int) -> list[Record]:
    return [Record(str(i), {identity: f"u{i}@example.com" if identity == "email" else 500 + i, "firstname": "A"})
            for i in range(n)]


@pytest.mark.parametrize(("operation", "identity", "per_batch"), [
    (Operation.DELETE, "email", 2),  # batch/read to learn the record IDs, then batch/archive
    (Operation.DELETE, "hs_object_id", 1),  # the identity is the record ID: batch/archive only
    (Operation.UPSERT, "email", 1),
    (Operation.CLEAR, "email", 1),
])
def test_planned_requests_are_the_requests_write_makes(operation: Operation, identity: str, per_batch: int) -> None:
    tgt = target(Mode.MIRROR, identity=(identity,), fields=(identity, "firstname"))
    read = {"status": "COMPLETE", "results": [{"id": str(500 + i), "properties": {"email": f"u{i}@example.com"}}
                                              for i in range(3)]}
    handler, seen = recording(httpx.Response(200, json=read))
    write(hubspot(handler), Batch(operation, _records(identity, 3)), tgt)
    assert len(seen) == per_batch
    # 250 records in batches of 100: three batches.
    assert hubspot(handler).planned_requests(tgt, operation, 250) == 3 * per_batch
