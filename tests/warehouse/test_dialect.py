"""SQL generation per dialect. Redshift is the strictest target: every statement the engine emits
for it is checked here for constructs Redshift rejects, and the end-to-end tests run the same
statements through the real dbt-redshift adapter (against PostgreSQL via the protocol proxy)."""

from __future__ import annotations

import re

import pytest

from dbt_activate.state.journal import ACK_COLUMNS, REJECT_COLUMNS
from dbt_activate.warehouse.dialect import Column, snapshot_table_name
from dbt_activate.warehouse.registry import dialect_for

KEYS = [Column("id", "integer")]
FIELDS = [Column("id", "integer"), Column("is_vip", "boolean"), Column("seen_at", "timestamp with time zone"),
          Column("born", "timestamp without time zone"), Column("doc", "super"), Column("name", "character varying")]

# Constructs that Redshift rejects (or that silently misbehave there).
REDSHIFT_FORBIDDEN = [
    (r"\bon conflict\b", "ON CONFLICT does not exist in Redshift"),
    (r"::", "PostgreSQL-only cast syntax"),
    (r"\bjsonb?\b", "json/jsonb types do not exist in Redshift"),
    (r"\btext\b(?!\))", "prefer varchar(n): text is varchar(256) in Redshift"),
    (r"\bconcat\s*\(", "Redshift's CONCAT takes two arguments"),
    (r"\bilike any\b|\bdistinct on\b|\breturning\b|\bgenerate_series\b", "PostgreSQL-only syntax"),
    (r"cast\(\"is_vip\" as varchar\)", "casting a boolean to varchar errors on Redshift"),
    (r"cast\(\"doc\" as varchar\)", "casting SUPER to varchar yields NULL on Redshift"),
]


def _redshift_statements() -> list[str]:
    d = dialect_for("redshift")
    snap = d.table("analytics_activate", snapshot_table_name("people__hubspot__contacts"))
    return [
        d.diff_query('"db"."analytics"."people"', snap, KEYS, FIELDS, "country = 'FR'").sql,
        d.diff_query('"db"."analytics"."people"', snap, KEYS, FIELDS, None, include_changed=False,
                     include_removed=False, include_unchanged=True).sql,
        d.initial_query('"db"."analytics"."people"', KEYS, FIELDS, "country = 'FR'").sql,
        d.duplicate_keys_query('"db"."analytics"."people"', KEYS, None),
        d.snapshot_ddl(snap),
        d.stage_ddl("activate_stage_acks", ACK_COLUMNS),
        d.stage_ddl("activate_stage_rejects", REJECT_COLUMNS),
        *(s.text for s in d.apply_stage(snap, "activate_stage_acks", "2024-01-01 00:00:00")),
        d.columns_query(),
        d.create_schema("analytics_activate"),
    ]


@pytest.mark.parametrize(("pattern", "why"), REDSHIFT_FORBIDDEN)
def test_redshift_statements_avoid_constructs_redshift_rejects(pattern: str, why: str) -> None:
    for statement in _redshift_statements():
        assert not re.search(pattern, statement, re.IGNORECASE), f"{why}: {statement}"


def test_redshift_normalises_booleans_timestamps_and_super() -> None:
    d = dialect_for("redshift")
    assert d.normalized('"b"', "boolean") == "case when \"b\" then 'true' when not \"b\" then 'false' end"
    assert d.normalized('"t"', "timestamp with time zone") == \
        "to_char((\"t\" at time zone 'UTC'), 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
    assert d.normalized('"s"', "super") == 'json_serialize("s")'


def test_duckdb_uses_strftime_and_utc() -> None:
    d = dialect_for("duckdb")
    assert d.normalized('"t"', "TIMESTAMP WITH TIME ZONE") == "strftime(timezone('UTC', \"t\"), '%Y-%m-%dT%H:%M:%S.%f')"
    assert d.placeholder == "?"


def test_fingerprint_hashes_each_column_then_the_concatenation() -> None:
    fp = dialect_for("redshift").fingerprint([Column("a", "integer"), Column("b", "text")])
    assert fp == "md5(coalesce(md5(cast(\"a\" as varchar)), '-') || coalesce(md5(cast(\"b\" as varchar)), '-'))"


def test_composite_keys_join_parts_with_the_unit_separator() -> None:
    key = dialect_for("postgres").key_expression([Column("a", "integer"), Column("b", "text")])
    assert key == 'cast("a" as varchar) || chr(31) || cast("b" as varchar)'


def test_identifiers_are_quoted_and_unquotable_names_refused() -> None:
    d = dialect_for("postgres")
    assert d.quote('we"ird') == '"we""ird"'
    with pytest.raises(ValueError):
        d.quote("bad\x00name")
    with pytest.raises(ValueError):
        d.quote("")


def test_snapshot_table_names_fit_postgres_identifier_limit() -> None:
    name = snapshot_table_name("a" * 300)
    assert len(name) <= 63
    assert snapshot_table_name("x.y") != snapshot_table_name("x_y")
