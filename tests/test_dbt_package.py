"""The sample dbt project and the dbt package (macros/): they build, and the macros hash like the CLI.

Everything runs in a temporary copy of the repository's dbt parts (dbt writes target/, logs/ and the
DuckDB file into the project), through dbt's own programmatic runner, against DuckDB and PostgreSQL.
The macros' output is checked twice: against values computed here with hashlib from the documented
rules, and against the CLI's own diff SQL (warehouse/dialect.py) run on the same rows, so drift on
either side fails this test.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg2
import pytest
import yaml
from dbt.artifacts.schemas.run import RunExecutionResult, RunResult
from dbt.cli.main import dbtRunner

from dbt_activate.warehouse.dialect import Column, dialect_for
from tests.support.redshift import redshift_database, start_proxy, write_profile

REPO = Path(__file__).resolve().parents[1]
ACTIVATE_KEYS = {"destination", "object", "mode", "primary_key", "match", "fields", "where", "on_delete",
                 "name"}
# The syncs the sample declares, by their names (default <model>__<destination>__<object>).
SAMPLE_SYNCS = {
    "people__crm_files__people_ru": ("people", "crm_files", "upsert", "country = 'RU'"),
    "people__crm_files__people_fr": ("people", "crm_files", "mirror", "country = 'FR'"),
    "people_gb_csv": ("people", "crm_csv", "upsert", "country = 'GB'"),
    "people__crm_hubspot__contacts": ("people", "crm_hubspot", "mirror", "country = 'GB'"),
    "deals__crm_webhook__deals": ("deals", "crm_webhook", "upsert", "country = 'RU'"),
    "deals__crm_csv__deals_fr": ("deals", "crm_csv", "upsert", "country = 'FR'"),
    "deals__crm_files__deal_events_gb": ("deals", "crm_files", "append", "country = 'GB'"),
}

PROBE_COLUMNS = ("id", "flag", "ts", "tstz", "label", "n", "missing", "amount", "day")
# One row per line, in portable SQL (DuckDB and PostgreSQL read these literals the same way).
PROBE_SQL = """
select cast(1 as integer) as id, cast(true as boolean) as flag,
       cast('2024-05-01 12:30:45.123456' as timestamp) as ts,
       cast('2024-05-01 14:30:45.5+02' as timestamp with time zone) as tstz,
       cast('Zoé' as varchar) as label, cast(42 as integer) as n, cast(null as varchar) as missing,
       cast(12.5 as numeric(10, 2)) as amount, cast('2024-05-01' as date) as day
union all
select 2, false, cast('2024-01-01 00:00:00' as timestamp),
       cast('2024-01-01 01:00:00+03' as timestamp with time zone),
       '', -7, null, cast(0 as numeric(10, 2)), cast('1999-12-31' as date)
union all
select 3, null, null, null, null, null, null, null, null
"""
# What the CLI's rules make of each probe value: booleans spelled out, timestamps in UTC with
# microseconds, everything else cast to text; None is SQL null.
PROBE_TEXTS: dict[int, tuple[str | None, ...]] = {
    1: ("1", "true", "2024-05-01T12:30:45.123456", "2024-05-01T12:30:45.500000", "Zoé", "42", None,
        "12.50", "2024-05-01"),
    2: ("2", "false", "2024-01-01T00:00:00.000000", "2023-12-31T22:00:00.000000", "", "-7", None,
        "0.00", "1999-12-31"),
    3: ("3", None, None, None, None, None, None, None, None),
}
CHECK_SQL = """
{%- set probe = ref('fingerprint_probe') -%}
select
    id,
    {{ dbt_activate.fingerprint(COLUMNS, probe) }} as row_fingerprint,
    {{ dbt_activate.fingerprint(['label', 'id'], probe) }} as label_id_fingerprint,
    {{ dbt_activate.fingerprint(['id', 'label']) }} as untyped_fingerprint,
    {{ dbt_activate.activate_key(['id', 'label'], probe) }} as pair_key,
    {%- for column in COLUMNS %}
    {{ dbt_activate.activate_key([column], probe) }} as text_{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
from {{ probe }}
""".replace("COLUMNS", repr(list(PROBE_COLUMNS)))


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def expected_fingerprint(texts: Sequence[str | None]) -> str:
    return md5("".join("-" if text is None else md5(text) for text in texts))


def dbt(*args: str) -> list[RunResult]:
    """Run dbt in-process; fail the test unless it succeeded. Returns the node results (none for deps)."""
    outcome = dbtRunner().invoke(list(args))
    assert outcome.success, f"dbt {' '.join(args)} failed: {outcome.exception!r}"
    return list(outcome.result.results) if isinstance(outcome.result, RunExecutionResult) else []


def query(project: Path, profiles: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` (Jinja allowed) through the project's own adapter, via `dbt show`."""
    results = dbt("show", "--inline", sql, "--limit", "-1", "--project-dir", str(project),
                  "--profiles-dir", str(profiles))
    table = results[0].agate_table
    assert table is not None
    return [dict(zip(table.column_names, row, strict=True)) for row in table.rows]


@pytest.fixture
def sample(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repo's dbt parts: package root (dbt_project.yml, macros/) with sample_project/ in it."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copy(REPO / "dbt_project.yml", root)
    shutil.copytree(REPO / "macros", root / "macros")
    leftovers = shutil.ignore_patterns("target", "logs", "dbt_packages", "package-lock.yml", "*.duckdb*",
                                       "activate_output")
    shutil.copytree(REPO / "sample_project", root / "sample_project", ignore=leftovers)
    project = root / "sample_project"
    # dbt-duckdb resolves a relative path against the working directory: keep both in the copy.
    monkeypatch.chdir(project)
    monkeypatch.setenv("ACTIVATE_SAMPLE_DUCKDB", str(project / "sample.duckdb"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    return project


def install_package_and_probes(project: Path) -> None:
    """Install the repo root as a local package (offline: dbt deps symlinks it) and add the probes."""
    (project / "packages.yml").write_text("packages:\n  - local: ../\n")
    dbt("deps", "--project-dir", str(project))
    (project / "models" / "fingerprint_probe.sql").write_text(PROBE_SQL)
    (project / "models" / "fingerprint_check.sql").write_text(CHECK_SQL)


def assert_fingerprints_match_cli_rules(project: Path, profiles: Path, adapter_type: str) -> None:
    rows = query(project, profiles, "select * from {{ ref('fingerprint_check') }} order by id")
    assert [int(row["id"]) for row in rows] == sorted(PROBE_TEXTS)
    for row in rows:
        texts = PROBE_TEXTS[int(row["id"])]
        by_column = dict(zip(PROBE_COLUMNS, texts, strict=True))
        assert tuple(row[f"text_{c}"] for c in PROBE_COLUMNS) == texts
        assert row["row_fingerprint"] == expected_fingerprint(texts)
        assert row["label_id_fingerprint"] == expected_fingerprint([by_column["label"], by_column["id"]])
        assert row["untyped_fingerprint"] == expected_fingerprint([by_column["id"], by_column["label"]])
        label = by_column["label"]
        assert row["pair_key"] == (None if label is None else f"{by_column['id']}\x1f{label}")
    # Column order is part of the fingerprint; null, '' and a missing column all hash differently.
    assert rows[0]["row_fingerprint"] != rows[0]["label_id_fingerprint"]
    assert len({row["row_fingerprint"] for row in rows}) == len(rows)

    # The CLI's expressions, from the column types it reads from information_schema, on the same rows.
    types = query(project, profiles, """
        select column_name, data_type from information_schema.columns
        where lower(table_name) = 'fingerprint_probe' and lower(table_schema) = lower('{{ target.schema }}')""")
    columns = {row["column_name"]: Column(row["column_name"], row["data_type"]) for row in types}
    dialect = dialect_for(adapter_type)
    cli_rows = query(project, profiles, f"""
        select id, {dialect.fingerprint([columns[c] for c in PROBE_COLUMNS])} as fp,
               {dialect.key_expression([columns["id"], columns["label"]])} as pair_key
        from {{{{ ref('fingerprint_probe') }}}} order by id""")
    assert [(r["fp"], r["pair_key"]) for r in cli_rows] == [(r["row_fingerprint"], r["pair_key"]) for r in rows]


def test_sample_builds_and_declares_its_syncs(sample: Path) -> None:
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(sample))
    statuses = {r.node.unique_id: str(r.status) for r in results}
    assert {"seed.activate_sample.drivers", "seed.activate_sample.leads", "seed.activate_sample.trips",
            "model.activate_sample.people", "model.activate_sample.deals"} <= set(statuses)
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    assert (sample / "sample.duckdb").exists()

    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    destinations = yaml.safe_load((sample / "destinations.yml").read_text())
    declared: dict[str, tuple[str, str, str, str]] = {}
    for model in ("people", "deals"):
        node = manifest["nodes"][f"model.activate_sample.{model}"]
        blocks = node["config"]["meta"]["activate"]
        columns = set(node["columns"])
        for block in blocks:
            assert set(block) <= ACTIVATE_KEYS, block
            assert block["destination"] in destinations
            keys = block["primary_key"] if isinstance(block["primary_key"], list) else [block["primary_key"]]
            fields = block["fields"]
            mapped = [] if fields == "auto" else list(fields)  # a list, or the keys of {column: field}
            assert set(keys) | set(block.get("match", {})) | set(mapped) <= columns, block
            name = block.get("name") or f"{model}__{block['destination']}__{block['object']}"
            declared[name] = (model, block["destination"], block["mode"], block["where"])
    assert declared == SAMPLE_SYNCS
    # The blocks are a mapping in one place and a list in another: both shapes of `fields` are shown.
    people_blocks = manifest["nodes"]["model.activate_sample.people"]["config"]["meta"]["activate"]
    assert {type(b["fields"]).__name__ for b in people_blocks} == {"str", "list", "dict"}

    counts = query(sample, sample, """
        select 'people' as model, country, count(*) as n from {{ ref('people') }} group by country
        union all
        select 'deals', country, count(*) from {{ ref('deals') }} group by country""")
    per_segment = {(row["model"], row["country"]): int(row["n"]) for row in counts}
    assert sum(n for (model, _), n in per_segment.items() if model == "people") == 60
    assert sum(n for (model, _), n in per_segment.items() if model == "deals") == 40
    for model, _, _, where in SAMPLE_SYNCS.values():
        country = where.split("'")[1]
        assert per_segment[(model, country)] > 0, f"{model} has no row for {where}"


def test_fingerprint_macros_on_duckdb(sample: Path) -> None:
    install_package_and_probes(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(sample))
    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    # Installing the package adds macros only: no model, seed or test of its own.
    assert not [n for n in manifest["nodes"].values() if n["package_name"] == "dbt_activate"]
    assert "macro.dbt_activate.duckdb__fingerprint" in manifest["macros"]
    assert "model.activate_sample.fingerprint_check" in {r.node.unique_id for r in results}
    assert_fingerprints_match_cli_rules(sample, sample, "duckdb")


@pytest.fixture
def postgres_profiles(tmp_path: Path) -> Iterator[Path]:
    """A profiles dir whose activate_sample profile points at a fresh PostgreSQL database."""
    database = f"activate_pkg_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'create database "{database}"')
    profiles = tmp_path / "pg_profiles"
    profiles.mkdir()
    output = {"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres",
              "password": "unused", "dbname": database, "schema": "main", "threads": 1}
    profile = {"activate_sample": {"target": "pg", "outputs": {"pg": output}}}
    (profiles / "profiles.yml").write_text(yaml.safe_dump(profile))
    try:
        yield profiles
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'drop database if exists "{database}" with (force)')
        admin.close()


@pytest.mark.postgres
def test_sample_and_fingerprint_macros_on_postgres(sample: Path, postgres_profiles: Path) -> None:
    install_package_and_probes(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(postgres_profiles))
    assert {str(r.status) for r in results} <= {"success", "pass"}
    assert not (sample / "sample.duckdb").exists()
    assert_fingerprints_match_cli_rules(sample, postgres_profiles, "postgres")


@pytest.fixture
def redshift_profiles(tmp_path: Path) -> Iterator[Path]:
    """A profiles dir whose activate_sample profile is dbt-redshift, through the proxy to PostgreSQL."""
    profiles = tmp_path / "rs_profiles"
    profiles.mkdir()
    with start_proxy() as proxy, redshift_database("activate_pkg_rs") as database:
        write_profile(profiles, proxy=proxy, database=database, schema="main", profile="activate_sample")
        yield profiles


@pytest.mark.redshift
def test_sample_and_fingerprint_macros_on_redshift(sample: Path, redshift_profiles: Path) -> None:
    install_package_and_probes(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(redshift_profiles))
    assert {str(r.status) for r in results} <= {"success", "pass"}
    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "redshift"
    assert_fingerprints_match_cli_rules(sample, redshift_profiles, "redshift")
