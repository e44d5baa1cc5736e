"""The Google Ads requests we build and the emulator's field lists, checked against the v25 protos.

``shared/contracts/google-ads/protos`` (googleapis/googleapis @ f8291d2b) is the contract. protoc is
not installed here, so the messages' fields are read from the ``.proto`` text (``name = N;`` lines,
oneof members included) and every key of a REST body is checked as the proto3 JSON mapping names
it (lowerCamelCase of the field), recursively through message-typed fields. Skipped where the
contracts folder is not checked out next to the repository (``DBT_ACTIVATE_CONTRACTS`` points at it).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.delivery.jobs import JobPolling
from dbt_activate.destinations.google_ads.jobs import CustomerMatchJob, JobSettings
from dbt_activate.destinations.google_ads.payload import Account, click_conversion, user_identifiers
from dbt_activate.errors import Redactor
from dbt_activate.testing.google_ads import emulator

_ROOT = Path(__file__).resolve().parents[2]
_CANDIDATES = [Path(os.environ["DBT_ACTIVATE_CONTRACTS"])] if os.environ.get("DBT_ACTIVATE_CONTRACTS") else []
_CANDIDATES += [_ROOT.parent / "shared" / "contracts", _ROOT.parent.parent / "shared" / "contracts"]
PROTOS = next((c / "google-ads" / "protos" for c in _CANDIDATES if (c / "google-ads" / "protos").is_dir()), None)
pytestmark = pytest.mark.skipif(PROTOS is None, reason="shared/contracts/google-ads is not checked out")

_FIELD = re.compile(r"(?:optional\s+|repeated\s+)?([\w.]+)\s+(\w+)\s*=\s*\d+\s*(?:\[[^\]]*\])?\s*;")


def messages() -> dict[str, dict[str, str]]:
    """Message name -> {field name: type's last component}, from every v25 proto."""
    assert PROTOS is not None
    found: dict[str, dict[str, str]] = {}
    for path in (PROTOS / "google" / "ads" / "googleads" / "v25").rglob("*.proto"):
        text = re.sub(r"//[^\n]*", "", path.read_text())
        for start in re.finditer(r"^message (\w+) \{", text, re.MULTILINE):
            depth, end = 0, start.end() - 1
            for end in range(start.end() - 1, len(text)):
                depth += {"{": 1, "}": -1}.get(text[end], 0)
                if depth == 0:
                    break
            body = text[start.end():end]
            found[start.group(1)] = {name: kind.split(".")[-1] for kind, name in _FIELD.findall(body)}
    return found


MESSAGES = messages() if PROTOS is not None else {}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def problems(body: Any, message: str, where: str = "") -> list[str]:
    """Every key of ``body`` (recursively) that is not a field of the proto ``message``."""
    fields = {camel(f): kind for f, kind in MESSAGES[message].items()}
    found: list[str] = []
    for key, value in body.items():
        if key not in fields:
            found.append(f"{where or message}.{key} is not a field of {message}")
            continue
        kind = fields[key]
        for item in value if isinstance(value, list) else [value]:
            if kind in MESSAGES and isinstance(item, dict):
                found += problems(item, kind, f"{where or message}.{key}")
    return found


ACCOUNT = Account("1234567890", conversion_action="987", currency_code="EUR", phone_country_code="44")


def test_an_upload_click_conversions_body_follows_the_protos() -> None:
    conversion = click_conversion({"gclid": "Cj0", "conversion_date_time": dt.datetime(2026, 1, 2, 3, 4, 5),
                                   "conversion_value": 3.5, "order_id": "O-1", "email": "a@b.co",
                                   "phone_number": "+447700900123"}, ACCOUNT)
    assert problems({"conversions": [{**conversion, "consent": {"adUserData": "GRANTED"}}], "partialFailure": True},
                    "UploadClickConversionsRequest") == []


def test_customer_match_job_bodies_follow_the_protos() -> None:
    settings = JobSettings("v25", "1234567890", 10, JobPolling(1.0, 10.0), {"adUserData": "GRANTED"})
    job = CustomerMatchJob("ads", settings, send=None, redactor=Redactor())  # type: ignore[arg-type]
    assert problems(job.create_body("customers/1234567890/userLists/1"), "CreateOfflineUserDataJobRequest") == []
    identifiers = user_identifiers({"email": "a@b.co", "phone_number": "+447700900123", "first_name": "Ada",
                                    "last_name": "Lovelace", "country_code": "GB", "postal_code": "SW1A 1AA",
                                    "user_id": "crm-1"}, ACCOUNT)
    operations = {"operations": [{"create": {"userIdentifiers": identifiers}},
                                 {"remove": {"userIdentifiers": identifiers}}],
                  "enablePartialFailure": True}
    assert problems(operations, "AddOfflineUserDataJobOperationsRequest") == []


def test_a_misspelt_field_is_caught() -> None:
    found = problems({"conversions": [{"gclidd": "x"}]}, "UploadClickConversionsRequest")
    assert len(found) == 1 and found[0].startswith("UploadClickConversionsRequest.conversions.gclidd is not a field")


def test_the_emulators_field_lists_are_the_protos() -> None:
    assert {camel(f) for f in MESSAGES["ClickConversion"]} == emulator.CONVERSION_FIELDS
    assert {camel(f) for f in MESSAGES["UserIdentifier"]} == emulator.IDENTIFIER_FIELDS
    assert {camel(f) for f in MESSAGES["OfflineUserAddressInfo"]} == emulator.ADDRESS_FIELDS
