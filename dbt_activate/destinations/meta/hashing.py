"""Meta's normalisation of customer information, then SHA-256 (pure).

Conversions API ``user_data`` and Custom Audience payloads take these identifiers hashed
(developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters;
developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences, "Hashing and
normalization"). Each value is trimmed and lower-cased, then:

==============  =============  ==========================================================================
field           Meta key       normalisation before SHA-256
==============  =============  ==========================================================================
email           em / EMAIL     as is
phone_number    ph / PHONE     digits only, country code first, no ``+`` and no leading zeros
                               (``+1 (650) 555-1234`` -> ``16505551234``; ``pii.phone_digits``)
first_name      fn / FN        punctuation removed (letters of any script kept, UTF-8)
last_name       ln / LN        same
city            ct / CT        letters only: digits, spaces and punctuation removed (``Menlo Park`` -> ``menlopark``)
state           st / ST        same (a two-letter code is recommended)
postal_code     zp / ZIP       spaces removed, the part before a ``-`` (``94025-1234`` -> ``94025``)
country_code    country        two letters, ISO 3166-1 alpha-2 (``us``)
gender          ge / GEN       ``f`` or ``m``
date_of_birth   db             ``YYYYMMDD`` (audiences: DOBY, DOBM, DOBD)
external_id     external_id    as is (hashing is recommended, and done)
==============  =============  ==========================================================================

A value that already is a SHA-256 hex digest (64 hex characters) is sent as it is, lower-cased.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from dbt_activate.destinations.pii import UnhashableValue, hashed, phone_digits

_NOT_LETTER = re.compile(r"[\W\d_]+", re.UNICODE)


def _email(text: str) -> str:
    email = text.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or "." not in domain or " " in email:
        raise UnhashableValue("not an email address")
    return email


def _name(text: str) -> str:
    lowered = text.strip().lower()
    return "".join(c for c in lowered if not unicodedata.category(c).startswith(("P", "Z", "S")))


def _letters(text: str) -> str:
    return _NOT_LETTER.sub("", text.strip().lower())


def _postal(text: str) -> str:
    return re.sub(r"\s", "", text.lower()).split("-")[0]


def _country(text: str) -> str:
    code = text.strip().lower()
    if len(code) != 2 or not code.isalpha() or not code.isascii():
        raise UnhashableValue("a two-letter ISO 3166-1 country code is expected")
    return code


def _gender(text: str) -> str:
    first = text.strip().lower()[:1]
    if first not in ("f", "m"):
        raise UnhashableValue("gender must be f or m")
    return first


def _plain(text: str) -> str:
    return text.strip().lower()


def date_of_birth(value: Any) -> dt.date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise UnhashableValue("field 'date_of_birth': expected a date (YYYY-MM-DD)") from None


NORMALISERS: dict[str, Callable[[str], str]] = {
    "email": _email, "first_name": _name, "last_name": _name, "city": _letters, "state": _letters,
    "postal_code": _postal, "country_code": _country, "gender": _gender, "external_id": _plain,
}


def hashed_field(field: str, value: Any, phone_country_code: str | None) -> str | None:
    """The SHA-256 hex of ``field``'s normalised value; None when blank."""
    if field == "phone_number":
        return hashed(value, field, lambda text: phone_digits(text, phone_country_code))
    return hashed(value, field, NORMALISERS[field])
