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

from dbt_activate import spec
from dbt_activate.warehouse.dialect import Column
from dbt_activate.warehouse.registry import dialect_for
from tests.support import bigquery, fakesnow
from tests.support.redshift import redshift_database, start_proxy, write_profile

# The DuckDB and PostgreSQL package tests are in the default run; the dbt-redshift, -snowflake and
# -bigquery ones are slow (tests/conftest.py), run by CI.

REPO = Path(__file__).resolve().parents[2]
ACTIVATE_KEYS = {key.name for key in spec.ACTIVATE_KEYS}
# The syncs the sample declares, by their names (default <model>__<destination>__<object>).
SAMPLE_SYNCS = {
    "people__crm_files__people_ru": ("people", "crm_files", "upsert", "country = 'RU'"),
    "people__crm_files__people_fr": ("people", "crm_files", "mirror", "country = 'FR'"),
    "people_gb_csv": ("people", "crm_csv", "upsert", "country = 'GB'"),
    "people__crm_hubspot__contacts": ("people", "crm_hubspot", "mirror", "country = 'GB'"),
    "deals__crm_webhook__deals": ("deals", "crm_webhook", "upsert", "country = 'RU'"),
    "deals__crm_hubspot__deals": ("deals", "crm_hubspot", "mirror", "country = 'GB'"),
    "deals__crm_csv__deals_fr": ("deals", "crm_csv", "upsert", "country = 'FR'"),
    "deals__crm_files__deal_events_gb": ("deals", "crm_files", "append", "country = 'GB'"),
    "people_gb_customer_match": ("people", "google_ads", "mirror", "country = 'GB'"),
    "ad_conversions_gb": ("ad_conversions", "google_ads", "append", "country = 'GB'"),
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


def expected_fingerprint(texts: Sequence[str | None], adapter_type: str) -> str:
    if adapter_type in ("duckdb", "postgres"):  # one md5 over the texts, each after its byte length ('-': null)
        return md5("".join("-:" if t is None else f"{len(t.encode())}:{t}" for t in texts)).upper()
    if adapter_type == "bigquery":  # PostgreSQL's form in lower-case hex (TO_HEX)
        return md5("".join("-:" if t is None else f"{len(t.encode())}:{t}" for t in texts))
    if adapter_type == "snowflake":  # the same with Snowflake's length() in characters, lower-case MD5_HEX
        return md5("".join("-:" if t is None else f"{len(t)}:{t}" for t in texts))
    return md5("".join("-" if text is None else md5(text) for text in texts))


def dbt(*args: str, check: bool = True) -> list[RunResult]:
    """Run dbt in-process; fail the test unless it succeeded (or not ``check``). Returns the node results
    (none for deps)."""
    outcome = dbtRunner().invoke(list(args))
    assert outcome.success or not check, f"dbt {' '.join(args)} failed: {outcome.exception!r}"
    return list(outcome.result.results) if isinstance(outcome.result, RunExecutionResult) else []


def query(project: Path, profiles: Path, sql: str) -> list[dict[str, Any]]:
    """Rows of ``sql`` (Jinja allowed) through the project's own adapter, via `dbt show`."""
    results = dbt("show", "--inline", sql, "--limit", "-1", "--project-dir", str(project),
                  "--profiles-dir", str(profiles))
    table = results[0].agate_table
    assert table is not None
    # Snowflake reports unquoted names upper-case.
    return [dict(zip([c.lower() for c in table.column_names], row, strict=True)) for row in table.rows]


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


def install_package(project: Path) -> None:
    """The sample's packages.yml installs the repo root as a local package (offline: a symlink)."""
    assert "local:" in (project / "packages.yml").read_text()
    dbt("deps", "--project-dir", str(project))


def install_package_and_probes(project: Path, probe_sql: str = PROBE_SQL) -> None:
    install_package(project)
    (project / "models" / "fingerprint_probe.sql").write_text(probe_sql)
    (project / "models" / "fingerprint_check.sql").write_text(CHECK_SQL)


def assert_fingerprints_match_cli_rules(project: Path, profiles: Path, adapter_type: str,
                                        probe_texts: dict[int, tuple[str | None, ...]] = PROBE_TEXTS,
                                        types: Sequence[tuple[str, str]] | None = None) -> None:
    rows = query(project, profiles, "select * from {{ ref('fingerprint_check') }} order by id")
    assert [int(row["id"]) for row in rows] == sorted(probe_texts)
    for row in rows:
        texts = probe_texts[int(row["id"])]
        by_column = dict(zip(PROBE_COLUMNS, texts, strict=True))
        assert tuple(row[f"text_{c}"] for c in PROBE_COLUMNS) == texts
        assert row["row_fingerprint"] == expected_fingerprint(texts, adapter_type)
        assert row["label_id_fingerprint"] == expected_fingerprint([by_column["label"], by_column["id"]], adapter_type)
        assert row["untyped_fingerprint"] == expected_fingerprint([by_column["id"], by_column["label"]], adapter_type)
        label = by_column["label"]
        assert row["pair_key"] == (None if label is None else f"{by_column['id']}\x1f{label}")
    # Column order is part of the fingerprint; null, '' and a missing column all hash differently.
    assert rows[0]["row_fingerprint"] != rows[0]["label_id_fingerprint"]
    assert len({row["row_fingerprint"] for row in rows}) == len(rows)

    # The CLI's expressions, from the column types it reads (information_schema, or as given), on the same rows.
    if types is None:
        types = [(row["column_name"], row["data_type"]) for row in query(project, profiles, """
            select column_name, data_type from information_schema.columns
            where lower(table_name) = 'fingerprint_probe' and lower(table_schema) = lower('{{ target.schema }}')""")]
    columns = {name.lower(): Column(name, data_type) for name, data_type in types}
    dialect = dialect_for(adapter_type)
    cli_rows = query(project, profiles, f"""
        select id, {dialect.fingerprint([columns[c] for c in PROBE_COLUMNS])} as fp,
               {dialect.key_expression([columns["id"], columns["label"]])} as pair_key
        from {{{{ ref('fingerprint_probe') }}}} order by id""")
    assert [(r["fp"], r["pair_key"]) for r in cli_rows] == [(r["row_fingerprint"], r["pair_key"]) for r in rows]


# Rows with a duplicate key (1, 'a'), a null key part (3, null) and a null whole key; (2, 'b') is fine.
KEYS_SQL = """
select cast(1 as integer) as id, cast('a' as varchar) as code, cast('x' as varchar) as payload
union all select 1, 'a', 'y'
union all select 2, 'b', 'z'
union all select 3, null, 'n'
union all select null, 'c', 'm'
"""
KEYS_YML = """
version: 2
models:
  - name: key_probe
    data_tests:
      - dbt_activate.activate_primary_key:
          arguments: {columns: [id, code]}
          config: {store_failures: true, alias: key_probe_pair}
    columns:
      - name: id
        data_tests:
          - dbt_activate.activate_primary_key:
              config: {store_failures: true, alias: key_probe_id}
      - name: payload
        data_tests: [dbt_activate.activate_primary_key]
"""


# What activate_primary_key gives on KEYS_SQL: it fails on null and duplicate keys, one failing row
# per key (with how many rows share it), stored for quarantine.
KEY_TEST_OUTCOME = (
    {"dbt_activate_activate_primary_key_key_probe_id__code": ("fail", 3),
     "dbt_activate_activate_primary_key_key_probe_id": ("fail", 2),
     "dbt_activate_activate_primary_key_key_probe_payload": ("pass", 0)},
    [(1, "a", 2, "duplicate_key"), (3, None, 1, "null_key"), (None, "c", 1, "null_key")],
    [(1, 2, "duplicate_key"), (None, 1, "null_key")],
)


def primary_key_test_outcome(project: Path, profiles: Path) -> tuple[dict[str, tuple[str, Any]], list[Any], list[Any]]:
    """(status and failures per key test, the stored failing rows of the two-column and the one-column key)."""
    install_package(project)
    (project / "models" / "key_probe.sql").write_text(KEYS_SQL)
    (project / "models" / "key_probe.yml").write_text(KEYS_YML)
    results = dbt("build", "-s", "key_probe", "--project-dir", str(project), "--profiles-dir", str(profiles),
                  check=False)
    by_name = {r.node.name: (str(r.status), r.failures) for r in results if r.node.resource_type == "test"}
    pair = query(project, profiles, "select id, code, n_records, failure from {{ target.schema }}_dbt_test__audit"
                                    ".key_probe_pair order by id, code")
    single = query(project, profiles, "select id, n_records, failure from {{ target.schema }}_dbt_test__audit"
                                      ".key_probe_id order by id")
    return (by_name, [(r["id"], r["code"], int(r["n_records"]), r["failure"]) for r in pair],
            [(r["id"], int(r["n_records"]), r["failure"]) for r in single])


def assert_invocation_recorded(project: Path, profiles: Path, results: Sequence[RunResult]) -> None:
    """The on-run-end hook wrote one row per node of the invocation into <schema>_activate."""
    rows = query(project, profiles, """
        select invocation_id, command, unique_id, resource_type, status, execution_time, started_at,
               completed_at, generated_at, attached_node
        from {{ target.schema }}_activate.dbt_invocation_results""")
    expected = {r.node.unique_id: str(r.status) for r in results if r.node.resource_type != "operation"}
    assert {row["unique_id"]: row["status"] for row in rows} == expected
    assert {row["command"] for row in rows} == {"build"}
    assert len({row["invocation_id"] for row in rows}) == 1
    assert all(row["started_at"] <= row["completed_at"] <= row["generated_at"] for row in rows)
    assert all(float(row["execution_time"]) >= 0 for row in rows)
    tests = [row for row in rows if row["resource_type"] == "test"]
    assert tests and all(str(row["attached_node"]).split(".")[0] in ("model", "seed") for row in tests)


def test_sample_builds_and_declares_its_syncs(sample: Path) -> None:
    install_package(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(sample))
    statuses = {r.node.unique_id: str(r.status) for r in results}
    assert {"seed.activate_sample.drivers", "seed.activate_sample.leads", "seed.activate_sample.trips",
            "model.activate_sample.people", "model.activate_sample.deals"} <= set(statuses)
    assert set(statuses.values()) <= {"success", "pass"}, statuses
    # The package's primary-key test runs on both models (model-level with columns, and column-level).
    key_tests = {uid for uid in statuses if ".dbt_activate_activate_primary_key_" in uid}
    assert {uid.split(".")[2] for uid in key_tests} == {"dbt_activate_activate_primary_key_people_driver_id",
                                                        "dbt_activate_activate_primary_key_deals_lead_id",
                                                        "dbt_activate_activate_primary_key_ad_conversions_lead_id"}
    assert_invocation_recorded(sample, sample, results)
    assert (sample / "sample.duckdb").exists()

    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    destinations = yaml.safe_load((sample / "destinations.yml").read_text())
    declared: dict[str, tuple[str, str, str, str]] = {}
    for model in ("people", "deals", "ad_conversions"):
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
        select 'deals', country, count(*) from {{ ref('deals') }} group by country
        union all
        select 'ad_conversions', country, count(*) from {{ ref('ad_conversions') }} group by country""")
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


def test_primary_key_test_on_duckdb(sample: Path) -> None:
    assert primary_key_test_outcome(sample, sample) == KEY_TEST_OUTCOME


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
@pytest.mark.slow  # the DuckDB package tests are in the default run; each warehouse's in CI
def test_sample_and_fingerprint_macros_on_postgres(sample: Path, postgres_profiles: Path) -> None:
    install_package_and_probes(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(postgres_profiles))
    assert {str(r.status) for r in results} <= {"success", "pass"}
    assert not (sample / "sample.duckdb").exists()
    assert_fingerprints_match_cli_rules(sample, postgres_profiles, "postgres")
    assert_invocation_recorded(sample, postgres_profiles, results)


@pytest.mark.postgres
@pytest.mark.slow
def test_primary_key_test_on_postgres(sample: Path, postgres_profiles: Path) -> None:
    assert primary_key_test_outcome(sample, postgres_profiles) == KEY_TEST_OUTCOME


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


def test_folder_defaults_survive_dbt_meta_merge_and_reach_every_sync(sample: Path) -> None:
    """dbt merges `+meta` from dbt_project.yml shallowly with the model's own meta: `activate_defaults`
    sits beside the model's `activate` in the manifest and the CLI merges it into each sync."""
    from dbt_activate.dbt.artifacts import load_manifest
    from dbt_activate.spec import parse_manifest_syncs

    install_package(sample)
    config = yaml.safe_load((sample / "dbt_project.yml").read_text())
    config["models"]["activate_sample"]["+meta"] = {"activate_defaults": {"gate": "warn", "quarantine": True}}
    (sample / "dbt_project.yml").write_text(yaml.safe_dump(config))
    dbt("parse", "--project-dir", str(sample), "--profiles-dir", str(sample))
    syncs = parse_manifest_syncs(load_manifest(sample / "target"))
    assert {s.name for s in syncs} == set(SAMPLE_SYNCS)
    assert {(s.gate, s.quarantine) for s in syncs} == {("warn", True)}
    assert {s.where for s in syncs} == {where for *_, where in SAMPLE_SYNCS.values()}  # sync keys kept


@pytest.fixture
def snowflake_profiles(tmp_path: Path, fakesnow_port: int) -> Path:
    """A profiles dir whose activate_sample profile is dbt-snowflake against fakesnow's server."""
    profiles = tmp_path / "sf_profiles"
    profiles.mkdir()
    # Not "main": fakesnow's DESCRIBE TABLE (dbt's get_columns_in_relation) finds nothing there (DuckDB's own).
    output = fakesnow.profile_output(fakesnow_port, f"activate_pkg_{uuid.uuid4().hex[:10]}", schema="analytics")
    (profiles / "profiles.yml").write_text(yaml.safe_dump({"activate_sample": {"target": "sf",
                                                                               "outputs": {"sf": output}}}))
    return profiles


# fakesnow's TO_CHAR ignores the format for a TIMESTAMP_NTZ column (it casts it as DuckDB does), so its
# texts of `ts` differ from Snowflake's; the UTC conversion of TIMESTAMP_TZ, dates and the rest match
# PROBE_TEXTS. The macros and the CLI emit the same SQL either way (compared below), and the SQL itself
# is unit-tested against Snowflake's rules (tests/warehouse/test_snowflake.py).
FAKESNOW_PROBE_TEXTS = {
    1: (*PROBE_TEXTS[1][:2], "2024-05-01 12:30:45.123456", *PROBE_TEXTS[1][3:]),
    2: (*PROBE_TEXTS[2][:2], "2024-01-01 00:00:00", *PROBE_TEXTS[2][3:]),
    3: PROBE_TEXTS[3],
}


@pytest.mark.snowflake
def test_sample_and_fingerprint_macros_on_snowflake(sample: Path, snowflake_profiles: Path) -> None:
    install_package_and_probes(sample)
    results = dbt("build", "--project-dir", str(sample), "--profiles-dir", str(snowflake_profiles))
    assert {str(r.status) for r in results} <= {"success", "pass"}
    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "snowflake"
    assert "macro.dbt_activate.snowflake__fingerprint" in manifest["macros"]
    assert_fingerprints_match_cli_rules(sample, snowflake_profiles, "snowflake", FAKESNOW_PROBE_TEXTS)
    assert_invocation_recorded(sample, snowflake_profiles, results)



@pytest.fixture
def bigquery_profiles(tmp_path: Path, crucible_port: int) -> tuple[Path, str]:
    """A profiles dir whose activate_sample profile is dbt-bigquery against crucible's server, and its dataset."""
    profiles = tmp_path / "bq_profiles"
    profiles.mkdir()
    dataset = f"activate_pkg_{uuid.uuid4().hex[:10]}"
    output = bigquery.profile_output(crucible_port, dataset)
    (profiles / "profiles.yml").write_text(yaml.safe_dump({"activate_sample": {"target": "bq",
                                                                               "outputs": {"bq": output}}}))
    return profiles, dataset


# PROBE_SQL in GoogleSQL (no varchar, no timestamp with time zone): DATETIME is the wall-clock type,
# TIMESTAMP the instant.
BIGQUERY_PROBE_SQL = """
select cast(1 as int64) as id, true as flag, datetime '2024-05-01 12:30:45.123456' as ts,
       timestamp '2024-05-01 14:30:45.5+02' as tstz, 'Zoé' as label, 42 as n, cast(null as string) as missing,
       numeric '12.50' as amount, date '2024-05-01' as day
union all
select 2, false, datetime '2024-01-01 00:00:00', timestamp '2024-01-01 01:00:00+03', '', -7, null, numeric '0',
       date '1999-12-31'
union all
select 3, null, null, null, null, null, null, null, null
"""
# The emulator's CAST(NUMERIC AS STRING) keeps nine decimals (BigQuery: '12.5', '0'); the rest match
# PROBE_TEXTS. The macros and the CLI emit the same SQL either way (compared below).
CRUCIBLE_PROBE_TEXTS = {
    1: (*PROBE_TEXTS[1][:7], "12.500000000", PROBE_TEXTS[1][8]),
    2: (*PROBE_TEXTS[2][:7], "0.000000000", PROBE_TEXTS[2][8]),
    3: PROBE_TEXTS[3],
}


@pytest.mark.bigquery
def test_fingerprint_macros_and_invocation_hook_on_bigquery(sample: Path, bigquery_profiles: tuple[Path, str],
                                                          crucible_port: int) -> None:
    from dbt_activate.warehouse.connection import WarehouseConnection

    profiles, dataset = bigquery_profiles
    install_package_and_probes(sample, BIGQUERY_PROBE_SQL)
    # A test in the invocation (the hook records tests with their model), the package's own key test.
    (sample / "models" / "fingerprint_probe.yml").write_text(yaml.safe_dump({"version": 2, "models": [
        {"name": "fingerprint_probe",
         "columns": [{"name": "id", "data_tests": ["dbt_activate.activate_primary_key"]}]}]}))
    # The probes only: the sample's models are written in the SQL DuckDB and PostgreSQL share.
    results = dbt("build", "-s", "fingerprint_probe", "fingerprint_check", "--project-dir", str(sample),
                  "--profiles-dir", str(profiles))
    assert {str(r.status) for r in results} == {"success", "pass"}
    manifest = json.loads((sample / "target" / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "bigquery"
    assert "macro.dbt_activate.bigquery__fingerprint" in manifest["macros"]
    # The column types as the CLI reads them: from the table's schema (the emulator has no INFORMATION_SCHEMA).
    dialect = dialect_for("bigquery")
    conn = WarehouseConnection(bigquery.client(crucible_port), dialect)
    try:
        types = conn.query(dialect.columns_query(), [dataset, "fingerprint_probe", None, None])
    finally:
        conn.close()
    assert [name for name, _ in types] == list(PROBE_COLUMNS)
    assert_fingerprints_match_cli_rules(sample, profiles, "bigquery", CRUCIBLE_PROBE_TEXTS, types)
    assert_invocation_recorded(sample, profiles, results)
