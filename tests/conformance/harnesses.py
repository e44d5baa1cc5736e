"""The destination harnesses the conformance suite runs; add yours to ``HARNESSES`` (see ``base.py``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import pkgutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from dbt_activate.core.types import FieldSpec, Record
from dbt_activate.delivery import encode_record
from dbt_activate.destinations.base import Destination
from dbt_activate.destinations.file.destination import FileDestination
from dbt_activate.destinations.hubspot.destination import HubSpotDestination
from dbt_activate.destinations.hubspot.payload import format_value
from dbt_activate.destinations.pipedrive.destination import PipedriveDestination
from dbt_activate.destinations.postgres.destination import PostgresDestination
from dbt_activate.destinations.salesforce.destination import SalesforceDestination
from dbt_activate.destinations.salesforce.values import format_record
from dbt_activate.destinations.webhook.destination import WebhookDestination
from dbt_activate.testing import (
    HubSpotEmulator,
    HubSpotProperty,
    PipedriveEmulator,
    PipedriveField,
    SalesforceEmulator,
    SalesforceField,
)
from dbt_activate.testing.webhook.emulator import WebhookReceiver
from tests.conformance.base import SECRET, WRONG_SECRET, Harness


def person(i: int) -> dict[str, Any]:
    """Record ``i`` of the generic destinations: one value of each common type."""
    return {"id": i, "name": f"Name {i}", "score": i * 1.5, "vip": i % 2 == 0,
            "signed_up": dt.date(2024, 1, 1 + i % 28)}


class WebhookHarness(Harness):
    name = "webhook"
    destination: ClassVar[type[Destination]] = WebhookDestination
    fields = ("id", "name", "score", "vip", "signed_up")
    secret = SECRET
    REFUSED: ClassVar[dict[str, str]] = {"13": "refused by the receiver"}

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with WebhookReceiver(token=SECRET, reject_keys=self.REFUSED) as self.hook:
            yield
        assert self.hook.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "webhook", "url": self.hook.url, "headers": {"Authorization": f"Bearer {SECRET}"},
                "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return person(i)

    def expected(self, record: Record) -> dict[str, Any]:
        return encode_record(record.values)  # JSON: dates as ISO 8601 text

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.hook.records.items()}

    def read_appended(self) -> list[dict[str, Any]]:
        return list(self.hook.events)

    def bad_record(self, i: int) -> Record | None:
        return self.record(13)

    def fail_next_write(self) -> bool:
        self.hook.fail_next(503)
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"headers": {"Authorization": f"Bearer {WRONG_SECRET}"}}

    def echo_secret_next(self) -> bool:
        self.hook.fail_next(500, body=f"upstream refused Authorization: Bearer {SECRET}")
        return True

    def requests_seen(self) -> int | None:
        return self.hook.counters.requests


class FileHarness(Harness):
    """The file destination writes every operation as a line; reading back replays the lines."""

    name = "file"
    destination: ClassVar[type[Destination]] = FileDestination
    fields = ("id", "name", "score", "vip", "signed_up")

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with tempfile.TemporaryDirectory(prefix="conformance_file_") as root:
            self.root = Path(root)
            yield

    def config(self) -> dict[str, Any]:
        return {"type": "file", "path": str(self.root)}

    def values(self, i: int) -> dict[str, Any]:
        return person(i)

    def expected(self, record: Record) -> dict[str, Any]:
        return encode_record(record.values)

    def _lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for path in sorted(self.root.rglob("*.jsonl"))
                for line in path.read_text(encoding="utf-8").splitlines()]

    def read_back(self) -> dict[str, dict[str, Any]]:
        state: dict[str, dict[str, Any]] = {}
        for line in self._lines():
            op, key, record = line["operation"], line["key"], line["record"]
            if op == "delete":
                state.pop(key, None)
            elif op == "clear":
                state[key] = {**dict.fromkeys(self.fields), **record}
            elif op != "append":
                state[key] = record
        return state

    def read_appended(self) -> list[dict[str, Any]]:
        return [line["record"] for line in self._lines() if line["operation"] == "append"]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, score=float("nan"))

    def requests_seen(self) -> int | None:
        return len(list(self.root.rglob("*")))  # files and directories created


class PostgresHarness(Harness):
    name = "postgres"
    destination: ClassVar[type[Destination]] = PostgresDestination
    fields = ("id", "name", "score", "vip", "signed_up")
    secret = SECRET
    marks = (pytest.mark.postgres,)
    DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    TYPES: ClassVar[dict[str, str]] = {"id": "integer", "name": "text", "score": "double precision",
                                       "vip": "boolean", "signed_up": "date"}

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        psycopg2 = pytest.importorskip("psycopg2")
        try:
            self.admin = psycopg2.connect(self.DSN, connect_timeout=5)
        except psycopg2.OperationalError as exc:
            pytest.skip(f"PostgreSQL not reachable: {exc}")
        self.admin.autocommit = True
        schema = f"conformance_{uuid.uuid4().hex[:12]}"
        self.app = f"conformance_{uuid.uuid4().hex[:8]}"
        self.object = f"{schema}.people"
        try:
            yield
        finally:
            self._sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            self.admin.close()

    def _sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.admin.cursor() as cur:
            cur.execute(statement, params or None)
            return list(cur.fetchall()) if cur.description else []

    def config(self) -> dict[str, Any]:
        # Local PostgreSQL trusts every connection: the password is only there to be kept secret.
        return {"type": "postgres", "dsn": f"{self.DSN} application_name={self.app}", "password": SECRET,
                "create_table": True}

    def field_specs(self) -> tuple[FieldSpec, ...]:
        return tuple(FieldSpec(f, f, self.TYPES[f]) for f in self.fields)

    def values(self, i: int) -> dict[str, Any]:
        return person(i)

    def read_back(self) -> dict[str, dict[str, Any]]:
        exists = self._sql("SELECT to_regclass(%s)", (self.object,))
        if exists[0][0] is None:
            return {}
        rows = self._sql(f"SELECT {', '.join(self.fields)} FROM {self.object} ORDER BY id")
        return {str(r[0]): dict(zip(self.fields, r, strict=True)) for r in rows}

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, name="nul\x00byte")  # PostgreSQL text cannot hold a NUL character

    def fail_next_write(self) -> bool:
        killed = self._sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                           (self.app,))
        return bool(killed) and all(r[0] for r in killed)

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"dsn": f"host=127.0.0.1 port=5432 user=no_such_role_conformance password={WRONG_SECRET} "
                       "dbname=postgres"}


class HubSpotHarness(Harness):
    name = "hubspot"
    destination: ClassVar[type[Destination]] = HubSpotDestination
    object = "contacts"
    identity = "email"
    fields = ("email", "firstname", "score", "is_vip", "signup_date", "last_seen", "flavours")
    mutable_field = "firstname"
    max_batch_size = 100
    secret = SECRET
    PROPERTIES: ClassVar[list[HubSpotProperty]] = [
        HubSpotProperty("score", "number"), HubSpotProperty("is_vip", "bool"),
        HubSpotProperty("signup_date", "date"), HubSpotProperty("last_seen", "datetime"),
        HubSpotProperty("flavours", "enumeration", ("chocolate", "strawberry", "vanilla"), multiple=True),
    ]

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with HubSpotEmulator(token=SECRET, properties={"contacts": self.PROPERTIES}) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "hubspot", "access_token": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"email": f"user{i}@example.com", "firstname": f"Name {i}", "score": i * 1.5, "is_vip": i % 2 == 0,
                "signup_date": dt.date(2024, 1, 1 + i % 28), "last_seen": dt.datetime(2025, 6, 1, 12, i % 60),
                "flavours": ["chocolate", "vanilla"][: 1 + i % 2]}

    def expected(self, record: Record) -> dict[str, Any]:
        formatted = {k: format_value(v) for k, v in record.values.items()}
        return {k: v for k, v in formatted.items() if v not in (None, "")}  # HubSpot shows set values only

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        return {"email": record.values["email"]}

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {r["properties"]["email"].removeprefix("user").partition("@")[0]: r["properties"]
                for r in self.emu.records("contacts")}

    def moved_identity(self, i: int) -> Any | None:
        return f"user{i}@moved.example.com"

    def stored_identities(self) -> list[Any]:
        return [r["properties"].get("email") for r in self.emu.records("contacts")]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, flavours=["mint"])  # not one of the property's options

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", status=502)
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"access_token": WRONG_SECRET}


class SalesforceHarness(Harness):
    name = "salesforce"
    destination: ClassVar[type[Destination]] = SalesforceDestination
    object = "Contact"
    identity = "Ext__c"
    fields = ("Ext__c", "LastName", "Score__c", "Vip__c", "Since__c", "Seen__c")
    mutable_field = "LastName"
    max_batch_size = 200  # sObject Collections
    secret = SECRET
    FIELDS: ClassVar[list[SalesforceField]] = [
        SalesforceField("Ext__c", external_id=True), SalesforceField("Score__c", "double"),
        SalesforceField("Vip__c", "boolean"), SalesforceField("Since__c", "date"),
        SalesforceField("Seen__c", "datetime"),
    ]
    TYPES: ClassVar[dict[str, str]] = {"ext__c": "string", "lastname": "string", "score__c": "double",
                                       "vip__c": "boolean", "since__c": "date", "seen__c": "datetime"}

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with SalesforceEmulator(token=SECRET, fields={"Contact": self.FIELDS}) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "salesforce", "instance_url": self.emu.base_url, "access_token": SECRET, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"Ext__c": f"E-{i}", "LastName": f"Name {i}", "Score__c": i * 1.5, "Vip__c": i % 2 == 0,
                "Since__c": dt.date(2024, 1, 1 + i % 28), "Seen__c": dt.datetime(2025, 6, 1, 12, i % 60)}

    def expected(self, record: Record) -> dict[str, Any]:
        formatted = format_record(record.values, self.TYPES)  # dates ISO, datetimes UTC with Z
        return {k: v for k, v in formatted.items() if v is not None}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        # LastName is required on Contact, so Salesforce cannot empty it: CLEAR leaves it.
        return {"Ext__c": record.values["Ext__c"], "LastName": record.values["LastName"]}

    def read_back(self) -> dict[str, dict[str, Any]]:
        return {r["Ext__c"].partition("-")[2]: {f: r[f] for f in self.fields if f in r}
                for r in self.emu.records("Contact")}

    def moved_identity(self, i: int) -> Any | None:
        return f"M-{i}"

    def stored_identities(self) -> list[Any]:
        return [r.get("Ext__c") for r in self.emu.records("Contact")]

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, LastName="X" * 81)  # STRING_TOO_LONG, refused by Salesforce per record

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path="/composite/")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"access_token": WRONG_SECRET}


class PipedriveHarness(Harness):
    """Persons found by email, with custom fields mapped by their names (one record per request)."""

    name = "pipedrive"
    destination: ClassVar[type[Destination]] = PipedriveDestination
    object = "persons"
    identity = "email"
    fields = ("email", "name", "Score", "Signed up", "Tier")
    secret = SECRET
    CUSTOM: ClassVar[list[PipedriveField]] = [PipedriveField("Score", "double"), PipedriveField("Signed up", "date"),
                                              PipedriveField("Tier", "enum", ("Gold", "Silver"))]

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        with PipedriveEmulator(token=SECRET, custom_fields={"persons": self.CUSTOM}) as self.emu:
            yield
        assert self.emu.errors == []

    def config(self) -> dict[str, Any]:
        return {"type": "pipedrive", "api_token": SECRET, "base_url": self.emu.base_url, "timeout": 5}

    def values(self, i: int) -> dict[str, Any]:
        return {"email": f"user{i}@example.com", "name": f"Name {i}", "Score": i * 1.5,
                "Signed up": dt.date(2024, 1, 1 + i % 28), "Tier": "Gold" if i % 2 else "Silver"}

    def expected(self, record: Record) -> dict[str, Any]:
        return {**record.values, "Signed up": record.values["Signed up"].isoformat()}

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        # Pipedrive refuses an empty name, so CLEAR keeps it along with the email it matched.
        return {"email": record.values["email"], "name": record.values["name"], "Score": None,
                "Signed up": None, "Tier": None}

    def read_back(self) -> dict[str, dict[str, Any]]:
        keys = {f.name: self.emu.field_key("persons", f.name) for f in self.CUSTOM}
        tier = {i: label for i, label in self.emu.fields["persons"][keys["Tier"]].options}
        found: dict[str, dict[str, Any]] = {}
        for person in self.emu.records("persons"):
            email = person["emails"][0]["value"]
            custom = person["custom_fields"]
            found[email.removeprefix("user").partition("@")[0]] = {
                "email": email, "name": person["name"], "Score": custom.get(keys["Score"]),
                "Signed up": custom.get(keys["Signed up"]), "Tier": tier.get(custom.get(keys["Tier"]))}
        return found

    def bad_record(self, i: int) -> Record | None:
        return self.record(i, Tier="Bronze")  # not an option of the enum field

    def moved_identity(self, i: int) -> Any | None:
        return f"user{i}@moved.example.com"

    def stored_identities(self) -> list[Any]:
        return [p["emails"][0]["value"] for p in self.emu.records("persons")]

    def fail_next_write(self) -> bool:
        self.emu.inject("status_5xx", path=r"^/api/v2/persons$")
        return True

    def bad_credentials(self) -> dict[str, Any] | None:
        return {"api_token": WRONG_SECRET}


def _harness_modules() -> list[type[Harness]]:
    """Harnesses of the other destinations: each ``harness_<kind>.py`` here exposes ``HARNESSES``."""
    found: list[type[Harness]] = []
    for module in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda m: m.name):
        if module.name.startswith("harness_"):
            found.extend(importlib.import_module(f"tests.conformance.{module.name}").HARNESSES)
    return found


HARNESSES: list[type[Harness]] = [WebhookHarness, FileHarness, PostgresHarness, HubSpotHarness, SalesforceHarness,
                                  PipedriveHarness, *_harness_modules()]
