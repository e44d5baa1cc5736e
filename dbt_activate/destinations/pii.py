"""Personal data sent to ad platforms: SHA-256 of a normalised value, computed before anything leaves.

Google Ads and Meta match people by the SHA-256 hex digest of their email address, phone number or
name, each normalised by the vendor's own rules (``google_ads/hashing.py``, ``meta/hashing.py``)
so the same person hashes the same on both sides. What the two share is here: the digest, the
recognition of a value the user already hashed in SQL (64 hexadecimal characters, sent as it is),
and the one error a value that cannot be normalised raises. The error names the field but never the
value: its text becomes the row's rejection reason, which goes to the results artifact, the console
and the ``sync_rejections`` table. What else the two platforms share (audiences, their members'
kept hashes) is in ``ad_platform``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from dbt_activate.core.values import RejectedValue
from dbt_activate.errors import ConfigError

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


UnhashableValue = RejectedValue  # a personal value that cannot be normalised (the message never holds it)


def is_sha256_hex(text: str) -> bool:
    """64 hexadecimal characters: a value the model already hashed."""
    return _SHA256_HEX.fullmatch(text) is not None


def sha256_hex(normalised: str) -> str:
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()


def as_text(value: Any, field: str) -> str | None:
    """A warehouse value as trimmed text; None for NULL or blank (the identifier is left out)."""
    if value is None:
        return None
    if isinstance(value, (bool, float)) or not isinstance(value, (str, int)):
        raise UnhashableValue(f"field {field!r}: expected text, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def hashed(value: Any, field: str, normalise: Callable[[str], str]) -> str | None:
    """SHA-256 hex of ``normalise(text)``; an already hashed value lower-cased as it is; None when blank."""
    text = as_text(value, field)
    if text is None:
        return None
    if is_sha256_hex(text):
        return text.lower()
    try:
        normalised = normalise(text)
    except UnhashableValue as exc:  # the normaliser says what is wrong; the reason names the field
        raise UnhashableValue(f"field {field!r}: {exc}") from None
    if not normalised:
        raise UnhashableValue(f"field {field!r}: nothing left after normalisation")
    return sha256_hex(normalised)


_PHONE_PUNCTUATION = re.compile(r"[\s\-.()/]")


def phone_digits(text: str, country_code: str | None) -> str:
    """A phone number as its international digits (country code first, no ``+``).

    ``+44 20 7946 0958`` and ``0044 20…`` carry their country code; a national number with its trunk
    ``0`` (``020 7946 0958``) gets ``country_code`` (the destination's ``phone_country_code``)
    instead of the ``0``, and is refused without one; any other number is taken to start with its
    country code, as both vendors document (``16505551212``). E.164 allows at most 15 digits.
    """
    compact = _PHONE_PUNCTUATION.sub("", text)
    international = compact.startswith(("+", "00"))
    digits = compact[1:] if compact.startswith("+") else compact[2:] if compact.startswith("00") else compact
    if not digits.isdigit() or not digits.isascii():
        raise UnhashableValue("not a phone number (only digits, spaces, dashes, dots, "
                              "parentheses and a leading + are allowed)")
    if not international and digits.startswith("0"):
        if not country_code:
            raise UnhashableValue("a national number without its country code; write it "
                                  "as +<country code><number>, or set phone_country_code on the destination")
        digits = country_code + digits.lstrip("0")
    digits = digits.lstrip("0")
    if not 7 <= len(digits) <= 15:
        raise UnhashableValue("a phone number has 7 to 15 digits with its country code "
                              f"(E.164), this one has {len(digits)}")
    return digits


def country_calling_code(name: str, config: Mapping[str, Any]) -> str | None:
    """The ``phone_country_code`` key: a calling code such as ``44`` or ``+1``."""
    raw = config.get("phone_country_code")
    if raw in (None, ""):
        return None
    code = str(raw).strip().lstrip("+")
    if not code.isdigit() or not 1 <= len(code) <= 3:
        raise ConfigError(f"must be a country calling code of 1-3 digits (44, +1), got {raw!r}",
                          location=f"{name}.phone_country_code")
    return code
