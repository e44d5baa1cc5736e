"""Rows -> Google Ads API v25 REST bodies (pure): click conversions and Customer Match user data.

REST uses the protos' JSON mapping: lowerCamelCase field names
(``shared/contracts/google-ads/protos``, ``services/conversion_upload_service.proto``
``ClickConversion``; ``common/offline_user_data.proto`` ``UserData``, ``UserIdentifier``,
``OfflineUserAddressInfo``). Personal values are normalised and hashed here (``google_ads_hashing``),
so nothing built in this module carries them in clear.

Click conversions (``object: conversions``), per mapped field:

=======================  ==========================================================================
``gclid``, ``gbraid``,   the click; exactly one of them per row
``wbraid``
``conversion_action``    a resource name (``customers/1234567890/conversionActions/987``) or the
                         action's id; default: the destination's ``conversion_action``
``conversion_date_time`` when it converted: a timestamp (one without a zone is read as UTC) or text,
                         sent as ``yyyy-mm-dd hh:mm:ss+hh:mm``
``conversion_value``     a number; ``currency_code`` three letters (default: the destination's)
``order_id``             the transaction id Google de-duplicates conversions by
``email``,               hashed into ``userIdentifiers`` (enhanced conversions for leads)
``phone_number``
=======================  ==========================================================================

Customer Match (``object: <user list id>``): ``email``, ``phone_number``, ``first_name`` +
``last_name`` + ``country_code`` + ``postal_code`` (an address identifier needs all four) and
``user_id`` (``thirdPartyUserId``, for CRM-id lists). Other mapped fields are not sent.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dbt_activate.destinations.google_ads.hashing import (
    country_code,
    hashed_email,
    hashed_phone,
    hashed_text,
    postal_code,
)
from dbt_activate.destinations.pii import UnhashableValue

CLICK_IDS = ("gclid", "gbraid", "wbraid")
CONVERSION_FIELDS = (*CLICK_IDS, "conversion_action", "conversion_date_time", "conversion_value",
                     "currency_code", "order_id", "email", "phone_number")
ADDRESS_FIELDS = ("first_name", "last_name", "country_code", "postal_code")
USER_FIELDS = ("email", "phone_number", *ADDRESS_FIELDS, "user_id")
PERSONAL_FIELDS = frozenset({"email", "phone_number", "first_name", "last_name"})
_GOOGLE_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[+-]\d\d:\d\d")
_ACTION_ID = re.compile(r"\d+")


@dataclass(frozen=True)
class Account:
    """What the bodies need of the destination's config."""

    customer_id: str
    conversion_action: str | None = None
    currency_code: str | None = None
    phone_country_code: str | None = None


def conversion_action_name(value: str, customer_id: str) -> str:
    """An action id -> its resource name; a resource name is kept."""
    text = value.strip()
    if _ACTION_ID.fullmatch(text):
        return f"customers/{customer_id}/conversionActions/{text}"
    if re.fullmatch(r"customers/\d+/conversionActions/\d+", text):
        return text
    raise UnhashableValue("field 'conversion_action': expected customers/<id>/conversionActions/<id> or an id")


def google_date_time(value: Any) -> str:
    """A timestamp as Google wants it: ``yyyy-mm-dd hh:mm:ss+hh:mm`` in the value's own zone (UTC if none)."""
    if isinstance(value, str):
        text = value.strip()
        if _GOOGLE_TIME.fullmatch(text):
            return text
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise UnhashableValue("field 'conversion_date_time': not a timestamp") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if not isinstance(value, dt.datetime):
        raise UnhashableValue(f"field 'conversion_date_time': expected a timestamp, got {type(value).__name__}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return str(value.replace(microsecond=0).isoformat(sep=" "))


def _number(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise UnhashableValue(f"field {field!r}: expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise UnhashableValue(f"field {field!r}: {value} is not a number Google accepts")
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def click_conversion(values: Mapping[str, Any], account: Account) -> dict[str, Any]:
    """One ``ClickConversion``; a row that cannot be one raises ``UnhashableValue`` with the reason."""
    clicks = {f: _text(values.get(f)) for f in CLICK_IDS}
    given = [f for f, v in clicks.items() if v]
    if len(given) != 1:
        raise UnhashableValue("a conversion needs exactly one of gclid, gbraid and wbraid, got "
                              f"{', '.join(given) or 'none'}")
    conversion: dict[str, Any] = {given[0]: clicks[given[0]]}
    action = _text(values.get("conversion_action")) or account.conversion_action
    if not action:
        raise UnhashableValue("no conversion_action: map a conversion_action column or set conversion_action "
                              "on the destination")
    conversion["conversionAction"] = conversion_action_name(action, account.customer_id)
    when = values.get("conversion_date_time")
    if when is None:
        raise UnhashableValue("field 'conversion_date_time' is empty: Google needs when the conversion happened")
    conversion["conversionDateTime"] = google_date_time(when)
    if values.get("conversion_value") is not None:
        conversion["conversionValue"] = _number(values["conversion_value"], "conversion_value")
    currency = _text(values.get("currency_code")) or account.currency_code
    if currency:
        if len(currency) != 3 or not currency.isalpha():
            raise UnhashableValue("field 'currency_code': a three-letter ISO 4217 code is expected")
        conversion["currencyCode"] = currency.upper()
    order_id = _text(values.get("order_id"))
    if order_id:
        conversion["orderId"] = order_id
    identifiers = _contact_identifiers(values, account)
    if identifiers:
        conversion["userIdentifiers"] = identifiers
    return conversion


def _contact_identifiers(values: Mapping[str, Any], account: Account) -> list[dict[str, Any]]:
    identifiers: list[dict[str, Any]] = []
    email = hashed_email(values.get("email"))
    if email:
        identifiers.append({"hashedEmail": email})
    phone = hashed_phone(values.get("phone_number"), account.phone_country_code)
    if phone:
        identifiers.append({"hashedPhoneNumber": phone})
    return identifiers


def user_identifiers(values: Mapping[str, Any], account: Account) -> list[dict[str, Any]]:
    """The ``userIdentifiers`` of one Customer Match member; none at all is an error."""
    identifiers = _contact_identifiers(values, account)
    address = {f: values.get(f) for f in ADDRESS_FIELDS if _text(values.get(f))}
    if address:
        missing = [f for f in ADDRESS_FIELDS if f not in address]
        if missing:
            raise UnhashableValue(f"an address identifier needs {', '.join(ADDRESS_FIELDS)}; missing: "
                                  f"{', '.join(missing)}")
        identifiers.append({"addressInfo": {
            "hashedFirstName": hashed_text(address["first_name"], "first_name"),
            "hashedLastName": hashed_text(address["last_name"], "last_name"),
            "countryCode": country_code(address["country_code"]),
            "postalCode": postal_code(address["postal_code"]),
        }})
    user_id = _text(values.get("user_id"))
    if user_id:
        identifiers.append({"thirdPartyUserId": user_id})
    if not identifiers:
        raise UnhashableValue(f"no identifier to match: every one of {', '.join(USER_FIELDS)} is empty")
    return identifiers
