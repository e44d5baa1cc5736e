"""Salesforce destination, pure parts: value formatting, result parsing, SOQL, config checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from dbt_activate.delivery import UnencodableValue
from dbt_activate.destinations.salesforce.api import ApiUsage
from dbt_activate.destinations.salesforce.bulk import build_upload
from dbt_activate.destinations.salesforce.config import settings_from
from dbt_activate.destinations.salesforce.destination import SalesforceDestination
from dbt_activate.destinations.salesforce.results import (
    bulk_reason,
    item_results,
    lookup_key,
    lookup_queries,
    soql_literal,
)
from dbt_activate.destinations.salesforce.values import csv_cell, drop_nulls, format_record, format_value
from dbt_activate.errors import ConfigError
from tests.support.delivery import target

PARIS = dt.timezone(dt.timedelta(hours=2))


@pytest.mark.parametrize(("value", "sf_type", "expected"), [
    (dt.date(2024, 5, 1), "date", "2024-05-01"),
    (dt.datetime(2024, 5, 1, 23, 30, tzinfo=PARIS), "date", "2024-05-01"),  # its UTC date
    (dt.datetime(2024, 5, 2, 0, 30, tzinfo=PARIS), "date", "2024-05-01"),
    ("2024-05-01", "date", "2024-05-01"),
    (dt.datetime(2024, 5, 1, 10, 0, 5, 123456), "datetime", "2024-05-01T10:00:05.123Z"),  # naive = UTC
    (dt.datetime(2024, 5, 1, 12, 0, tzinfo=PARIS), "datetime", "2024-05-01T10:00:00.000Z"),
    (dt.date(2024, 5, 1), "datetime", "2024-05-01T00:00:00.000Z"),
    ("2024-05-01T12:00:00+02:00", "datetime", "2024-05-01T10:00:00.000Z"),
    (dt.time(9, 5, 7), "time", "09:05:07.000Z"),
    (True, "boolean", True),
    (0, "boolean", False),
    ("TRUE", "boolean", True),
    (42, "double", 42),
    (1.5, "currency", 1.5),
    (Decimal("12.50"), "double", 12.5),
    ("7.25", "percent", 7.25),
    (12345, "string", "12345"),
    (False, "string", "false"),
    (1.5, "textarea", "1.5"),
    (["Gold", "Silver"], "multipicklist", "Gold;Silver"),
    ("Gold;Silver", "multipicklist", "Gold;Silver"),
    (None, "double", None),
    (dt.date(2024, 5, 1), None, "2024-05-01"),  # no describe (plan): inferred from the value
    (dt.datetime(2024, 5, 1, 10, 0), None, "2024-05-01T10:00:00.000Z"),
    (Decimal("1.25"), None, 1.25),
])
def test_values_take_the_form_of_their_field_type(value: Any, sf_type: str | None, expected: Any) -> None:
    assert format_value(value, sf_type) == expected


@pytest.mark.parametrize(("value", "sf_type", "fragment"), [
    (float("nan"), "double", "nan"),
    (float("inf"), None, "inf"),
    (Decimal("NaN"), "currency", "NaN"),
    (float("-inf"), "string", "inf"),
    ("abc", "double", "not a number"),
    (True, "int", "boolean is not a number"),
    ("yes please", "boolean", "not a boolean"),
    ("01/05/2024", "date", "not a date"),
    ("tomorrow", "datetime", "not an ISO 8601"),
    ({"a": 1}, "string", "cannot be written"),
])
def test_values_salesforce_cannot_store_are_refused(value: Any, sf_type: str | None, fragment: str) -> None:
    with pytest.raises(UnencodableValue, match=fragment):
        format_value(value, sf_type)


def test_a_refused_value_names_its_field() -> None:
    with pytest.raises(UnencodableValue, match="field 'Score__c'"):
        format_record({"Ext__c": "A", "Score__c": float("nan")}, {"score__c": "double"})
    # field types are looked up case-insensitively, as Salesforce names are
    assert format_record({"Since__C": dt.datetime(2024, 1, 2, 3)}, {"since__c": "date"}) == {"Since__C": "2024-01-02"}


def test_nulls_are_dropped_for_keep_and_written_as_na_in_bulk_csv() -> None:
    assert drop_nulls({"A": None, "B": "", "C": 0, "D": False}) == {"C": 0, "D": False}
    assert [csv_cell(v) for v in (None, "", True, False, 1.5, "x,y")] == ["#N/A", "#N/A", "true", "false", "1.5",
                                                                         "x,y"]


def test_bulk_csv_leaves_missing_fields_empty_and_maps_rows_back_by_external_id() -> None:
    upload = build_upload("Ext__c", [("1", {"Ext__c": "A-1", "LastName": 'O"Hara, Jr', "Score__c": None}),
                                     ("2", {"LastName": "Byron", "Ext__c": "a-2"})])
    assert upload.body.decode() == 'Ext__c,LastName,Score__c\nA-1,"O""Hara, Jr",#N/A\na-2,Byron,\n'
    assert upload.keys == {"a-1": ("1",), "a-2": ("2",)}
    assert upload.rows == 2


def test_collection_results_map_to_records_by_position() -> None:
    results = item_results([
        {"id": "003A", "success": True, "errors": []},
        {"id": None, "success": False, "errors": [
            {"statusCode": "STRING_TOO_LONG", "message": "Last Name: data value too large", "fields": ["LastName"]},
            {"statusCode": "INVALID_EMAIL_ADDRESS", "message": "Email: invalid email address: x", "fields": []}]},
    ], expected=2)
    assert [r.success for r in results] == [True, False]
    assert results[0].record_id == "003A"
    assert results[1].codes == ("STRING_TOO_LONG", "INVALID_EMAIL_ADDRESS")
    assert results[1].reason == ("STRING_TOO_LONG: Last Name: data value too large (fields: LastName); "
                                 "INVALID_EMAIL_ADDRESS: Email: invalid email address: x")
    with pytest.raises(ValueError, match="expected 3 results"):
        item_results([{"success": True}], expected=3)
    with pytest.raises(ValueError, match="unreadable"):
        item_results([{"id": "x"}], expected=1)


@pytest.mark.parametrize(("sf_error", "reason"), [
    ("REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]:LastName --",
     "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)"),
    ("STRING_TOO_LONG:Last Name: data value too large: XXXX (max length=80):LastName --",
     "STRING_TOO_LONG: Last Name: data value too large: XXXX (max length=80) (fields: LastName)"),
    ("UNABLE_TO_LOCK_ROW:unable to obtain exclusive access to this record: --",
     "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access to this record"),
    ("", "Salesforce refused the record"),
])
def test_bulk_errors_read_as_code_message_and_fields(sf_error: str, reason: str) -> None:
    assert bulk_reason(sf_error) == reason


def test_soql_literals_are_escaped_and_numbers_unquoted() -> None:
    assert soql_literal("O'Brien\\x", numeric=False) == "'O\\'Brien\\\\x'"
    assert soql_literal("line\nbreak", numeric=False) == "'line\\nbreak'"
    assert soql_literal(42, numeric=True) == "42"
    assert soql_literal("4.50", numeric=True) == "4.50"
    assert soql_literal("abc", numeric=True) is None  # cannot match a number field: not queried


def test_lookups_are_chunked_deduplicated_and_sized_for_a_get() -> None:
    queries = lookup_queries("Contact", "Ext__c", [f"E{i}" for i in range(450)] + ["E1"], numeric=False)
    assert len(queries) == 3
    assert queries[0].startswith("SELECT Id, Ext__c FROM Contact WHERE Ext__c IN ('E0','E1',")
    assert sum(q.count("'") // 2 for q in queries) == 450
    long_values = ["x" * 3000 + str(i) for i in range(5)]
    assert all(len(q) < 9000 for q in lookup_queries("Contact", "Ext__c", long_values, numeric=False))
    assert lookup_key("ABC") == lookup_key("abc")
    assert lookup_key(42) == lookup_key(42.0) == lookup_key(Decimal("42.00")) == "42"


@pytest.mark.parametrize(("header", "usage"), [
    ("api-usage=10018/100000", ApiUsage(10018, 100000)),
    ("api-usage=25/5000, per-app-api-usage=17/250(appName=sample-app)", ApiUsage(25, 5000)),
    ("per-app-api-usage=17/250(appName=x)", None),
    (None, None),
])
def test_api_usage_is_read_from_sforce_limit_info(header: str | None, usage: ApiUsage | None) -> None:
    assert ApiUsage.parse(header) == usage


BASE = {"type": "salesforce", "instance_url": "https://acme.my.salesforce.com", "access_token": "00Dx!tok"}


@pytest.mark.parametrize(("config", "fragment"), [
    ({"type": "salesforce", "instance_url": "https://acme.my.salesforce.com"}, "set access_token"),
    ({"type": "salesforce", "access_token": "tok"}, "instance_url is required"),
    ({**BASE, "client_secret": "s"}, "OAuth needs client_id"),
    ({**BASE, "batch_size": 500}, "sf.batch_size: must be between 1 and 200"),
    ({**BASE, "bulk_threshold": -1}, "sf.bulk_threshold"),
    ({**BASE, "max_api_usage": 1.5}, "sf.max_api_usage"),
    ({**BASE, "api_version": "v40.0"}, "at least v46"),
    ({**BASE, "api_version": "latest"}, "sf.api_version"),
    ({**BASE, "instance_url": "acme.my.salesforce.com"}, "sf.instance_url: must start with https://"),
    ({**BASE, "base_url": "https://other.my.salesforce.com"}, "instance_url and base_url differ"),
    ({**BASE, "nulls": "wipe"}, "sf.nulls"),
    ({**BASE, "timeout": 0}, "sf.timeout"),
])
def test_config_errors_name_the_key(config: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        settings_from("sf", config)


def test_config_defaults_and_normalisation() -> None:
    s = settings_from("sf", {**BASE, "api_version": 61.0})
    assert (s.api_version, s.request_size, s.bulk_threshold, s.max_api_usage) == ("v61.0", 200, 10_000, 0.95)
    # NULLs are kept unless the destination or the sync says clear (base.Destination.clears_nulls).
    assert SalesforceDestination("sf", {**BASE, "api_version": 61.0}).clears_nulls(target()) is False
    assert SalesforceDestination("sf", {**BASE, "nulls": "clear"}).clears_nulls(target()) is True
    oauth = settings_from("sf", {"type": "salesforce", "client_id": "cid", "refresh_token": "r"})
    assert oauth.instance_url is None  # taken from the token response
    assert oauth.oauth is not None and oauth.oauth.grant == "refresh_token"
    assert oauth.oauth.token_url == "https://login.salesforce.com/services/oauth2/token"
    cc = settings_from("sf", {"type": "salesforce", "client_id": "cid", "client_secret": "s",
                              "login_url": "https://acme.my.salesforce.com/", "base_url": "http://127.0.0.1:1"})
    assert cc.oauth is not None and cc.oauth.grant == "client_credentials"
    assert cc.oauth.token_url == "https://acme.my.salesforce.com/services/oauth2/token"
    assert cc.instance_url == "http://127.0.0.1:1"
