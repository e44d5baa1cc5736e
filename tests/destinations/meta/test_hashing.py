"""Meta's normalisation and hashing, with the examples of its customer information parameters docs.

The oracle is the normalised text Meta's table prescribes (developers.facebook.com/docs/marketing-api/
conversions-api/parameters/customer-information-parameters), hashed here with hashlib.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import pytest

from dbt_activate.destinations.meta.hashing import hashed_field
from dbt_activate.destinations.meta.payload import EventDefaults, audience_row, audience_schema, server_event
from dbt_activate.destinations.pii import UnhashableValue


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("field", "raw", "normalised"), [
    ("email", "  John_Smith@Gmail.com ", "john_smith@gmail.com"),  # trimmed, lower-cased; gmail periods kept
    ("email", "jane.doe@gmail.com", "jane.doe@gmail.com"),
    ("phone_number", "+1 (616) 954-78 88", "16169547888"),  # digits only, country code first
    ("phone_number", "16505551212", "16505551212"),
    ("phone_number", "0044 20 7946 0958", "442079460958"),  # leading zeros of the 00 prefix dropped
    ("first_name", "Mary-Ann", "maryann"),  # punctuation removed
    ("first_name", "Valéry", "valéry"),  # UTF-8 letters kept
    ("city", "Menlo Park", "menlopark"),
    ("state", "CA", "ca"),
    ("postal_code", "94025-1234", "94025"),
    ("postal_code", "SW1A 1AA", "sw1a1aa"),
    ("country_code", "US", "us"),
    ("gender", "Female", "f"),
    ("external_id", " CUST-42 ", "cust-42"),
])
def test_values_are_normalised_as_meta_documents(field: str, raw: str, normalised: str) -> None:
    assert hashed_field(field, raw, None) == sha(normalised)


def test_a_national_phone_takes_the_configured_country_code() -> None:
    assert hashed_field("phone_number", "020 7946 0958", "44") == sha("442079460958")
    with pytest.raises(UnhashableValue, match="country code"):
        hashed_field("phone_number", "020 7946 0958", None)


def test_an_already_hashed_column_is_sent_as_it_is() -> None:
    digest = sha("john_smith@gmail.com")
    assert hashed_field("email", digest.upper(), None) == digest
    assert hashed_field("phone_number", digest, None) == digest


NOW = time.time()


def test_a_server_event_hashes_user_data_and_takes_its_id_from_the_key() -> None:
    event = server_event("order-7", {"event_name": "Purchase", "event_time": int(NOW) - 60,
                                     "email": "Ada@Example.com", "phone_number": "+44 7700 900123",
                                     "date_of_birth": dt.date(1990, 2, 16), "fbp": "fb.1.1.1",
                                     "value": 12.5, "currency": "EUR"}, EventDefaults())
    assert event == {"event_name": "Purchase", "event_time": int(NOW) - 60, "event_id": "order-7",
                     "action_source": "system_generated",
                     "user_data": {"em": [sha("ada@example.com")], "ph": [sha("447700900123")],
                                   "db": [sha("19900216")], "fbp": "fb.1.1.1"},
                     "custom_data": {"value": 12.5, "currency": "EUR"}}


def test_events_older_than_seven_days_are_rejected_with_that_reason() -> None:
    old = dt.datetime.fromtimestamp(NOW - 8 * 86400, dt.timezone.utc)
    with pytest.raises(UnhashableValue, match="older than 7 days"):
        server_event("1", {"event_name": "Lead", "event_time": old, "email": "a@b.co"}, EventDefaults(), now=NOW)


def test_an_audience_row_follows_the_multi_key_schema() -> None:
    schema = audience_schema(("customer_id", "last_name", "email", "country_code", "date_of_birth"))
    assert schema == ["EMAIL", "LN", "COUNTRY", "DOBY", "DOBM", "DOBD"]
    row = audience_row({"email": "A@B.co", "last_name": None, "country_code": "GB",
                        "date_of_birth": "1990-02-16"}, schema, None)
    assert row == [sha("a@b.co"), "", sha("gb"), sha("1990"), sha("02"), sha("16")]
