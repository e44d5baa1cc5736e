"""Every value codec refuses a value the same way: ``core.values.RejectedValue``, whose message is the
record's rejection reason, so a destination (and the engine) catches one error whatever the format."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dbt_activate.core.values import RejectedValue
from dbt_activate.delivery import to_json_value
from dbt_activate.destinations.google_sheets.values import cell_value
from dbt_activate.destinations.hubspot.payload import format_value
from dbt_activate.destinations.intercom.payload import value_of
from dbt_activate.destinations.pii import hashed
from dbt_activate.destinations.zendesk.payload import build_item

NAN = float("nan")


def _empty(text: str) -> str:
    return ""


CODECS: list[tuple[str, Callable[[], Any], str]] = [
    ("json", lambda: to_json_value(NAN), "not a JSON number"),
    ("json", lambda: to_json_value(object()), "cannot be sent as JSON"),
    ("hubspot", lambda: format_value(NAN), "not a number HubSpot can store"),
    ("intercom", lambda: value_of(NAN, "score"), "field 'score'"),
    ("zendesk", lambda: build_item("users", {"external_id": ""}, "external_id"), "identity field 'external_id'"),
    ("google_sheets", lambda: cell_value(NAN), "cannot be written to a cell"),
    ("pii", lambda: hashed("someone@example.com", "email", _empty), "field 'email'"),
]


@pytest.mark.parametrize(("codec", "encode", "reason"), CODECS, ids=[f"{c[0]}-{i}" for i, c in enumerate(CODECS)])
def test_every_codec_rejects_with_the_one_error(codec: str, encode: Callable[[], Any], reason: str) -> None:
    with pytest.raises(RejectedValue, match=reason):
        encode()
