"""Google's normalisation and hashing, with the examples of its Customer Match and enhanced-conversions docs.

The oracle is the normalised text the docs prescribe (developers.google.com/google-ads/api/docs/
remarketing/audience-segments/customer-match/get-started, "Normalize and hash user-provided data"),
hashed here with hashlib: trimmed, lower-cased, gmail.com/googlemail.com periods removed, E.164.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from dbt_activate.destinations.google_ads.hashing import country_code, hashed_email, hashed_phone, hashed_text
from dbt_activate.destinations.google_ads.payload import Account, click_conversion, google_date_time, user_identifiers
from dbt_activate.destinations.pii import UnhashableValue


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(("raw", "normalised"), [
    ("jane.doe@gmail.com", "janedoe@gmail.com"),  # periods before gmail.com removed
    ("Jane.Doe@GoogleMail.com", "janedoe@googlemail.com"),
    ("  JANE.DOE@Example.COM \t", "jane.doe@example.com"),  # other domains keep their periods
    ("j.d.smith+ads@gmail.com", "jdsmith+ads@gmail.com"),  # only periods go, not the +tag
])
def test_emails_are_trimmed_lowercased_and_gmail_periods_removed(raw: str, normalised: str) -> None:
    assert hashed_email(raw) == sha(normalised)


@pytest.mark.parametrize(("raw", "code", "e164"), [
    ("+1 (650) 555-1234", None, "+16505551234"),
    ("+44 20 7946 0958", None, "+442079460958"),
    ("0044 20 7946 0958", None, "+442079460958"),  # international prefix 00
    ("020 7946 0958", "44", "+442079460958"),  # national number: the trunk 0 becomes the country code
    ("16505551234", None, "+16505551234"),  # digits that start with their country code
])
def test_phones_are_e164_with_and_without_country_code(raw: str, code: str | None, e164: str) -> None:
    assert hashed_phone(raw, code) == sha(e164)


def test_a_national_phone_without_a_country_code_is_refused_with_the_field_named() -> None:
    with pytest.raises(UnhashableValue, match=r"phone_number.*country code"):
        hashed_phone("020 7946 0958", None)
    with pytest.raises(UnhashableValue, match="not a phone number") as refused:
        hashed_phone("call me", None)
    assert "call me" not in str(refused.value)  # the reason never quotes the personal value


def test_an_already_hashed_column_is_sent_as_it_is() -> None:
    digest = sha("janedoe@gmail.com")
    assert hashed_email(digest.upper()) == digest
    assert hashed_phone(digest, None) == digest
    assert hashed_text(f"  {digest} ", "first_name") == digest


def test_names_are_trimmed_and_lowercased_countries_kept_in_clear() -> None:
    assert hashed_text("  Jane ", "first_name") == sha("jane")
    assert country_code("gb") == "GB"
    assert hashed_email(None) is None and hashed_email("   ") is None
    with pytest.raises(UnhashableValue, match="country_code"):
        country_code("GBR")


ACCOUNT = Account("1234567890", conversion_action="987", currency_code="EUR", phone_country_code="44")


def test_a_click_conversion_in_the_rest_json_mapping() -> None:
    when = dt.datetime(2026, 8, 1, 12, 32, 45, 123, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    body = click_conversion({"gclid": "Cj0K", "conversion_date_time": when, "conversion_value": 10.5,
                             "order_id": 77, "email": "Jane.Doe@gmail.com", "score": 3}, ACCOUNT)
    assert body == {"gclid": "Cj0K", "conversionAction": "customers/1234567890/conversionActions/987",
                    "conversionDateTime": "2026-08-01 12:32:45-08:00", "conversionValue": 10.5,
                    "currencyCode": "EUR", "orderId": "77",
                    "userIdentifiers": [{"hashedEmail": sha("janedoe@gmail.com")}]}


@pytest.mark.parametrize(("value", "expected"), [
    (dt.datetime(2026, 1, 2, 3, 4, 5), "2026-01-02 03:04:05+00:00"),  # no zone: UTC
    ("2026-01-02T03:04:05+02:00", "2026-01-02 03:04:05+02:00"),
    ("2026-01-02 03:04:05-05:00", "2026-01-02 03:04:05-05:00"),
])
def test_conversion_times_carry_their_zone(value: object, expected: str) -> None:
    assert google_date_time(value) == expected


def test_a_conversion_needs_exactly_one_click_id() -> None:
    with pytest.raises(UnhashableValue, match="exactly one of gclid"):
        click_conversion({"gclid": "a", "wbraid": "b", "conversion_date_time": "2026-01-02 03:04:05+00:00"}, ACCOUNT)


def test_customer_match_identifiers_hash_the_address_names() -> None:
    identifiers = user_identifiers({"email": "a@b.co", "phone_number": "07700 900123", "first_name": "Ada",
                                    "last_name": " Lovelace", "country_code": "gb", "postal_code": "SW1A 1AA"},
                                   ACCOUNT)
    assert identifiers == [
        {"hashedEmail": sha("a@b.co")}, {"hashedPhoneNumber": sha("+447700900123")},
        {"addressInfo": {"hashedFirstName": sha("ada"), "hashedLastName": sha("lovelace"), "countryCode": "GB",
                         "postalCode": "SW1A 1AA"}}]
    with pytest.raises(UnhashableValue, match="missing: country_code, postal_code"):
        user_identifiers({"first_name": "Ada", "last_name": "Lovelace"}, ACCOUNT)
