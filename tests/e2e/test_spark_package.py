"""The dbt package on Spark: the macros' spark__ implementations (fingerprint, activate_key, the texts)
give what the CLI's Spark dialect computes on the same rows, and the on-run-end hook records the
invocation, through dbt-spark on the Thrift server (tests/support/spark.py)."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.spark import SparkDialect
from tests.e2e.test_dbt_package import CHECK_SQL, PROBE_COLUMNS, PROBE_TEXTS, REPO, dbt, md5, query
from tests.support import spark

pytestmark = pytest.mark.spark

# PROBE_SQL of test_dbt_package.py in Spark's types: `ts` a TIMESTAMP_NTZ (a wall-clock time), `tstz`
# a TIMESTAMP (Spark's instant, TIMESTAMP_LTZ), so the texts are PROBE_TEXTS.
SPARK_PROBE_SQL = """
select cast(1 as int) as id, true as flag, cast('2024-05-01 12:30:45.123456' as timestamp_ntz) as ts,
       cast('2024-05-01 14:30:45.5+02:00' as timestamp) as tstz, 'Zoé' as label, 42 as n,
       cast(null as string) as missing, cast(12.5 as decimal(10, 2)) as amount, cast('2024-05-01' as date) as day
union all
select 2, false, cast('2024-01-01 00:00:00' as timestamp_ntz), cast('2024-01-01 01:00:00+03:00' as timestamp),
       '', -7, null, cast(0 as decimal(10, 2)), cast('1999-12-31' as date)
union all
select 3, null, null, null, null, null, null, null, null
"""


def expected_fingerprint(texts: tuple[str | None, ...] | list[str | None]) -> str:
    """md5 over the texts, each after its length in characters ('-' for null): lower-case hex."""
    return md5("".join("-:" if t is None else f"{len(t)}:{t}" for t in texts))


@pytest.fixture
def spark_package(tmp_path: Path, spark_port: int, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, str]]:
    """A dbt project on Spark with the repo's package installed, its probe models and the hook."""
    package = tmp_path / "package"
    package.mkdir()
    shutil.copy(REPO / "dbt_project.yml", package)
    shutil.copytree(REPO / "macros", package / "macros")
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    schema = f"act_pkg_{uuid.uuid4().hex[:10]}"
    (project / "dbt_project.yml").write_text(yaml.safe_dump({
        "name": "spark_pkg", "version": "1.0", "config-version": 2, "profile": "spark_pkg",
        "models": {"spark_pkg": {"+materialized": "table"}},
        "on-run-end": ["{{ dbt_activate.record_invocation(results) }}"]}))
    (project / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": str(package)}]}))
    (project / "profiles.yml").write_text(yaml.safe_dump({"spark_pkg": {"target": "dev", "outputs": {
        "dev": spark.profile_output(spark_port, schema)}}}))
    (project / "models" / "fingerprint_probe.sql").write_text(SPARK_PROBE_SQL)
    (project / "models" / "fingerprint_check.sql").write_text(CHECK_SQL)
    monkeypatch.chdir(project)
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    try:
        yield project, schema
    finally:
        for name in (schema, f"{schema}_activate"):
            spark.query(spark_port, f"drop schema if exists {name} cascade")


def test_macros_match_the_cli_and_the_hook_records_the_invocation_on_spark(
        spark_package: tuple[Path, str], spark_port: int) -> None:
    project, schema = spark_package
    dbt("deps", "--project-dir", str(project))
    results = dbt("build", "--project-dir", str(project), "--profiles-dir", str(project))
    rows = query(project, project, "select * from {{ ref('fingerprint_check') }} order by id")
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

    # The CLI's expressions, from the types DESCRIBE gives, on the same rows through PyHive.
    dialect = SparkDialect()
    conn = WarehouseConnection(spark.connect(spark_port), dialect)
    try:
        columns = {name: name for name, _ in conn.columns(schema, "fingerprint_probe")}
        assert set(columns) == set(PROBE_COLUMNS)
        from dbt_activate.warehouse.dialect import Column

        typed = {name: Column(name, dtype) for name, dtype in conn.columns(schema, "fingerprint_probe")}
        cli = conn.query(f"select id, {dialect.fingerprint([typed[c] for c in PROBE_COLUMNS])}, "
                         f"{dialect.key_expression([typed['id'], typed['label']])} "
                         f"from {dialect.table(schema, 'fingerprint_probe')} order by id")
        assert conn.columns(schema, "no_such_table") == []
    finally:
        conn.close()
    assert [(r[1], r[2]) for r in cli] == [(r["row_fingerprint"], r["pair_key"]) for r in rows]

    recorded = query(project, project, "select unique_id, status, command, execution_time "
                                       "from {{ target.schema }}_activate.dbt_invocation_results")
    expected = {r.node.unique_id: str(r.status) for r in results if r.node.resource_type != "operation"}
    assert {row["unique_id"]: row["status"] for row in recorded} == expected
    assert {row["command"] for row in recorded} == {"build"}
    assert all(float(row["execution_time"]) >= 0 for row in recorded)
