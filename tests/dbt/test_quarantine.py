"""Quarantine SQL on a real in-process DuckDB: held-back rows are left out of both sides of the diff.

Also the failures-table checks (which columns name the rows) and the invocation table reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import duckdb
import pytest

from dbt_activate.core.types import FieldSpec, Mode
from dbt_activate.dbt import invocations
from dbt_activate.dbt.gating import Quarantine
from dbt_activate.dbt.quarantine import hold_back, key_pairs, split_relation
from dbt_activate.errors import ArtifactsError, ConfigError
from dbt_activate.spec import ResolvedSync, SyncSpec
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Column
from dbt_activate.warehouse.registry import dialect_for
from tests.warehouse.test_connection_duckdb import Handle

D = dialect_for("duckdb")


@pytest.fixture()
def conn() -> Iterator[WarehouseConnection]:
    database = duckdb.connect(":memory:")
    database.execute("create schema audit")
    database.execute("create table people as select * from (values (1, 'a@x', 'FR'), (2, 'broken', 'FR'), "
                     "(3, 'c@x', 'FR'), (4, 'bad', 'GB')) t(id, email, country)")
    # Whole failing rows, as a custom test stores them; and dbt's unique test's shape.
    database.execute("create table audit.valid_email as select * from people where email not like '%@%'")
    database.execute("create table audit.unique_id as select 3 as unique_field, 2 as n_records")
    database.execute("create table audit.accepted as select 'GB' as value_field, 1 as n_records")
    database.execute("create table snap (sync_key varchar, fingerprint varchar(32), record_identity varchar, "
                     "synced_at timestamp)")
    database.execute("insert into snap values ('1', 'old', null, null), ('2', 'old', null, null), "
                     "('3', 'old', null, null)")
    connection = WarehouseConnection(Handle(database), D)
    yield connection
    connection.close()


def _resolved(where: str | None = None) -> ResolvedSync:
    spec = SyncSpec(name="people_crm", model_id="model.shop.people", model_name="people", relation='"people"',
                    destination="crm", object="contacts", mode=Mode.MIRROR,
                    primary_key=("id",), match=(), fields=None, where=where, on_delete="delete",
                    location="models/schema.yml: people.config.meta.activate[0]", config_hash="h", quarantine=True)
    types = (("id", "integer"), ("email", "varchar"), ("country", "varchar"))
    return ResolvedSync(spec, tuple(FieldSpec(c, c, t) for c, t in types), ("id",), ("id",), types)


def _diff(conn: WarehouseConnection, rs: ResolvedSync, held: Any) -> dict[str, str]:
    keys = [Column("id", "integer")]
    fields = [Column(c, t) for c, t in rs.column_types]
    relation = held.relation(rs.spec.relation)
    sql = D.diff_query(relation, held.snapshot("snap", rs.spec.relation), keys, fields, rs.spec.where).sql
    return {str(row[1]): str(row[0]) for row in conn.query(sql)}


def test_held_back_rows_are_neither_sent_nor_removed(conn: WarehouseConnection) -> None:
    rs = _resolved()
    held = hold_back(conn, D, rs, [Quarantine("valid_email", '"audit"."valid_email"', "email")])
    assert held.rows == 2 and held.reason == "2 row(s) quarantined by failing test(s): valid_email"
    # 1 and 3 changed (fingerprint 'old'); 2 is held back although synced; 4 is held back although new.
    assert _diff(conn, rs, held) == {"1": "change", "3": "change"}


def test_segment_applies_to_the_count_and_dbt_unique_names_rows_by_unique_field(conn: WarehouseConnection) -> None:
    rs = _resolved(where="country = 'FR'")
    held = hold_back(conn, D, rs, [Quarantine("valid_email", '"audit"."valid_email"', "email"),
                                   Quarantine("unique_id", '"audit"."unique_id"', "id")])
    assert held.rows == 2  # 2 (email) and 3 (unique); 4 is outside the segment
    assert _diff(conn, rs, held) == {"1": "change"}


def test_a_failures_table_without_the_key_is_a_config_error(conn: WarehouseConnection) -> None:
    with pytest.raises(ConfigError, match=r"activate\[0\]\.quarantine: test accepted .*without the primary key"):
        hold_back(conn, D, _resolved(), [Quarantine("accepted", '"audit"."accepted"', "country")])
    with pytest.raises(ConfigError, match=r"does not exist"):
        hold_back(conn, D, _resolved(), [Quarantine("gone", '"audit"."gone"', None)])


def test_the_missing_key_is_named_as_the_activate_block_names_it(conn: WarehouseConnection) -> None:
    as_snowflake_reports_it = dataclasses.replace(_resolved(), key_columns=("ID",))
    with pytest.raises(ConfigError, match=r"without the primary key column\(s\) id: quarantine"):
        hold_back(conn, D, as_snowflake_reports_it, [Quarantine("accepted", '"audit"."accepted"', "country")])


@pytest.mark.parametrize(("name", "parts"), [
    ('"db"."main_dbt_test__audit"."t"', ("db", "main_dbt_test__audit", "t")),
    ('"we""ird"."s.x"."t"', ('we"ird', "s.x", "t")),
    ("audit.t", (None, "audit", "t")),
    # dbt-bigquery's relation_name: backticks, a hyphen in the project, backslash escapes.
    ("`local-project`.`act_1_dbt_test__audit`.`t`", ("local-project", "act_1_dbt_test__audit", "t")),
    ("`p`.`d`.`we\\`ird.t`", ("p", "d", "we`ird.t")),
])
def test_split_relation(name: str, parts: tuple[str | None, str, str]) -> None:
    assert split_relation(name) == parts


@pytest.mark.parametrize(("columns", "column_name", "keys", "pairs"), [
    (["ID", "email"], None, ["id"], [("id", "ID")]),
    (["a", "b", "n_records", "failure"], None, ["a", "b"], [("a", "a"), ("b", "b")]),
    (["unique_field", "n_records"], "id", ["id"], [("id", "unique_field")]),
    (["unique_field", "n_records"], "email", ["id"], None),  # unique on another column
    (["unique_field", "n_records"], "id", ["id", "b"], None),
    (["value_field", "n_records"], "id", ["id"], None),
])
def test_key_pairs(columns: list[str], column_name: str | None, keys: list[str],
                   pairs: list[tuple[str, str]] | None) -> None:
    assert key_pairs(Quarantine("t", "x.t", column_name), columns, keys) == pairs


def test_latest_recorded_invocation_is_read_as_run_results(conn: WarehouseConnection) -> None:
    with pytest.raises(ArtifactsError, match="no dbt invocation recorded"):
        invocations.latest(conn, D, "state")
    conn.execute("create schema state")
    conn.execute("create table state.dbt_invocation_results (invocation_id varchar, command varchar, "
                 "generated_at timestamp, unique_id varchar, status varchar, message varchar, relation_name varchar)")
    with pytest.raises(ArtifactsError, match="is empty"):
        invocations.latest(conn, D, "state")
    rows: list[tuple[Any, ...]] = [
        ("old", "build", "2026-01-01 00:00:00", "model.shop.people", "error", "boom", None),
        ("new", "build", "2026-01-02 00:00:00", "model.shop.people", "success", None, None),
        ("new", "build", "2026-01-02 00:00:00", "test.shop.t", "fail", "Got 1 result", '"db"."audit"."t"'),
    ]
    for row in rows:
        conn.execute("insert into state.dbt_invocation_results values (?, ?, cast(? as timestamp), ?, ?, ?, ?)",
                     list(row))
    results = invocations.latest(conn, D, "state")
    assert (results.invocation_id, results.command, results.is_build) == ("new", "build", True)
    assert results.statuses == {"model.shop.people": "success", "test.shop.t": "fail"}
    assert results.relations == {"test.shop.t": '"db"."audit"."t"'}
    assert results.messages == {"test.shop.t": "Got 1 result"}
