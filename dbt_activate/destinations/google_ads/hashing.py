"""Google's normalisation of user-provided data, then SHA-256 (pure).

Customer Match and enhanced conversions take hashed identifiers only
(developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started,
"Normalize and hash user-provided data"; developers.google.com/google-ads/api/docs/conversions/enhance-conversions):

- every value is trimmed of leading and trailing whitespace and lower-cased before hashing;
- email addresses: for ``gmail.com`` and ``googlemail.com`` addresses, the periods of the part
  before the ``@`` are removed (``Jane.Doe@Gmail.com`` -> ``janedoe@gmail.com``);
- phone numbers in E.164: ``+``, country code, number (``+16505550123``; ``pii.phone_digits``);
- first name, last name and street address are hashed; country code and postal code are sent in
  clear (``OfflineUserAddressInfo``: ``country_code`` two letters, ISO 3166-1);
- SHA-256, as lower-case hexadecimal. A value that already is a SHA-256 hex digest (64 hex
  characters) is sent as it is (lower-cased): a model may hash in SQL.
"""

from __future__ import annotations

from typing import Any

from dbt_activate.destinations.pii import UnhashableValue, as_text, hashed, phone_digits

GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def normalise_email(text: str) -> str:
    email = text.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email:
        raise UnhashableValue("not an email address")
    if domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def normalise_text(text: str) -> str:
    return text.strip().lower()


def hashed_email(value: Any, field: str = "email") -> str | None:
    return hashed(value, field, normalise_email)


def hashed_phone(value: Any, country_code: str | None, field: str = "phone_number") -> str | None:
    return hashed(value, field, lambda text: "+" + phone_digits(text, country_code))


def hashed_text(value: Any, field: str) -> str | None:
    return hashed(value, field, normalise_text)


def country_code(value: Any, field: str = "country_code") -> str | None:
    text = as_text(value, field)
    if text is None:
        return None
    if len(text) != 2 or not text.isalpha() or not text.isascii():
        raise UnhashableValue(f"field {field!r}: a two-letter ISO 3166-1 country code is expected")
    return text.upper()


def postal_code(value: Any, field: str = "postal_code") -> str | None:
    return as_text(value, field)
