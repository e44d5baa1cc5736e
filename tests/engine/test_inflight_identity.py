"""The in-flight log of a batch (stream._unsettled): a record whose identity changes is logged with
the identity it was last sent with, so a run that dies unanswered leaves the next one able to find it."""

from __future__ import annotations

from dbt_activate.core.changes import CHANGE, identity_json
from dbt_activate.core.types import Operation, Record
from dbt_activate.stream import _InFlight, _unsettled


def test_a_moved_record_is_logged_under_the_identity_last_sent() -> None:
    flight = _InFlight(Operation.UPSERT)
    flight.records += [Record("1", {"email": "new@x.io"}, previous={"email": "old@x.io"}),
                       Record("2", {"email": "b@x.io"})]
    flight.meta.update({"1": (CHANGE, "FP1", identity_json({"email": "new@x.io"})),
                        "2": (CHANGE, "FP2", identity_json({"email": "b@x.io"}))})
    assert list(_unsettled(flight)) == [(CHANGE, "1", '{"email":"old@x.io"}'), (CHANGE, "2", '{"email":"b@x.io"}')]
