"""The sync's `nulls` key end to end: a NULL never wipes a destination value unless the sync says clear.

One DuckDB model feeds, in one run, a PostgreSQL table, a MySQL table, Braze (a NULL is left out of
the request) and HubSpot (the type formats NULLs itself; its destination says keep, the sync says
clear), each once with `nulls: keep` (or the default) and once with `nulls: clear`. Customer 2's name
then becomes NULL in the model: the kept copies still hold the name, the cleared ones do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.braze.emulator import BrazeEmulator
from dbt_activate.testing.hubspot.emulator import HubSpotEmulator
from dbt_activate.testing.hubspot.schema import HubSpotProperty
from tests.conformance.harness_mysql import HOST, PORT, mysql_database
from tests.e2e.project import COLUMNS, Project, customer, fresh_database

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

BRAZE_KEY = "braze-nulls-key-0f1e2d3c4b5a69788796a5b4"
HUBSPOT_TOKEN = "hubspot-nulls-token"
ROWS = [customer(i) for i in range(1, 5)]
SENT = ["customer_id", "email", "full_name", "country"]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    with fresh_database("act_nulls") as destination_db:
        yield Project(tmp_path, "duckdb", destination_db=destination_db)


@pytest.fixture
def mysql() -> Iterator[tuple[Any, str]]:
    with mysql_database("act_nulls") as found:
        yield found


def _block(destination: str, obj: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"destination": destination, "object": obj, "primary_key": "customer_id", "fields": SENT,
            "name": name, **extra}


def _mysql_names(db: tuple[Any, str], table: str) -> dict[int, str | None]:
    admin, database = db
    with admin.cursor() as cur:
        cur.execute(f"SELECT customer_id, full_name FROM `{database}`.`{table}` ORDER BY customer_id")
        return {int(r[0]): r[1] for r in cur.fetchall()}


def test_a_null_keeps_the_destination_value_unless_the_sync_says_clear(
        project: Project, mysql: tuple[Any, str]) -> None:
    properties = tuple(HubSpotProperty(c) for c in COLUMNS if c != "email")
    with BrazeEmulator(token=BRAZE_KEY) as braze, \
            HubSpotEmulator(token=HUBSPOT_TOKEN, properties={"contacts": properties}) as hubspot:
        activate = [
            _block("ops_db", "crm.kept", "pg_keep"),  # the default is keep
            _block("ops_db", "crm.cleared", "pg_clear", nulls="clear"),
            _block("ops_mysql", "kept", "mysql_keep", nulls="keep"),
            _block("ops_mysql", "cleared", "mysql_clear", nulls="clear"),
            _block("engage", "users", "braze_keep"),
            _block("crm", "contacts", "hubspot_clear", match={"email": "email"}, nulls="clear"),
        ]
        destinations = {
            "ops_db": {"type": "postgres", "dsn": f"host=127.0.0.1 port=5432 user=postgres "
                                                  f"dbname={project.destination_db}", "create_table": True},
            "ops_mysql": {"type": "mysql", "host": HOST, "port": PORT, "user": "root", "password": "",
                          "database": mysql[1], "create_table": True},
            "engage": {"type": "braze", "api_key": BRAZE_KEY, "base_url": braze.base_url, "timeout": 10},
            # The destination keeps NULLs; the sync's `nulls: clear` wins for its sync.
            "crm": {"type": "hubspot", "access_token": HUBSPOT_TOKEN, "base_url": hubspot.base_url,
                    "nulls": "keep", "timeout": 10},
        }
        project.write(ROWS, activate, destinations)
        project.dbt("build")
        first = project.activate("run")
        assert first.returncode == 0, first.stderr[-3000:]

        project.write_rows([{**r, "full_name": None} if r["customer_id"] == 2 else r for r in ROWS])
        project.dbt("build")
        second = project.activate("run")
        assert second.returncode == 0, second.stderr[-3000:]
        assert {r["sync"]: r["counts"]["changed"] for r in project.results()["results"]} == {
            "pg_keep": 1, "pg_clear": 1, "mysql_keep": 1, "mysql_clear": 1, "braze_keep": 1, "hubspot_clear": 1}

        names = {name: dict(project.destination_rows(f"crm.{name}", ["customer_id", "full_name"]))
                 for name in ("kept", "cleared")}
        assert names["kept"][2] == "Customer 2" and names["cleared"][2] is None
        assert names["kept"][3] == names["cleared"][3] == "Customer 3"  # other rows untouched
        assert _mysql_names(mysql, "kept")[2] == "Customer 2"
        assert _mysql_names(mysql, "cleared")[2] is None
        assert (braze.user("2") or {}).get("full_name") == "Customer 2"
        contact = next(r["properties"] for r in hubspot.records("contacts")
                       if r["properties"]["email"] == "user2@example.com")
        assert contact.get("full_name") in ("", None)

        # A new row with a NULL gets no value either way (there is nothing to keep).
        project.write_rows([*ROWS, {**customer(5), "full_name": None}])
        project.dbt("build")
        assert project.activate("run").returncode == 0
        assert dict(project.destination_rows("crm.kept", ["customer_id", "full_name"]))[5] is None
        assert "full_name" not in (braze.user("5") or {"full_name": "missing user"})
        assert braze.user("5") is not None
    assert braze.errors == [] and hubspot.errors == []


def test_nulls_on_a_destination_where_every_record_is_new_is_a_config_error(project: Project) -> None:
    project.write(ROWS, [_block("hook", "customers", "hook_sync", nulls="keep")],
                  {"hook": {"type": "webhook", "url": "http://127.0.0.1:9/hook"}})
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "models/schema.yml: customers.config.meta.activate[0].nulls" in proc.stderr
    assert "webhook" in proc.stderr


def test_an_unknown_nulls_value_names_the_key(project: Project) -> None:
    project.write(ROWS, [_block("ops_db", "crm.kept", "pg_keep", nulls="wipe")])
    project.dbt("build")
    proc = project.activate("run")
    assert proc.returncode == 2
    assert "customers.config.meta.activate[0].nulls: 'wipe' is not one of keep, clear" in proc.stderr
