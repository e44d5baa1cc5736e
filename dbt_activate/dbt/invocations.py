"""The dbt invocations the package's `on-run-end` hook recorded in the state schema.

``{{ dbt_activate.record_invocation(results) }}`` (macros/record_invocation.sql) writes one row per
node of every dbt invocation into ``<state schema>.dbt_invocation_results``. ``run --from-warehouse``
reads the latest invocation from there instead of target/run_results.json, for jobs that have no
target/ of the dbt run (dbt Cloud, a separate CI job). The manifest still comes from target/ (or the
dbt Cloud artifacts): `dbt parse` writes it without touching the warehouse.
"""

from __future__ import annotations

from dbt_activate.dbt.artifacts import RunResults
from dbt_activate.errors import ArtifactsError
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import Dialect

TABLE = "dbt_invocation_results"
SCHEMA_VERSION = "activate_invocations/v1"
HOOK = "on-run-end: [\"{{ dbt_activate.record_invocation(results) }}\"]"


def latest(conn: WarehouseConnection, dialect: Dialect, schema: str) -> RunResults:
    """The most recently recorded invocation, as run results."""
    table = dialect.table(schema, TABLE)
    if not conn.columns(schema, TABLE):
        raise ArtifactsError(f"--from-warehouse: no dbt invocation recorded in {table}. Add `{HOOK}` to "
                             "dbt_project.yml (with the dbt_activate package installed) and run `dbt build`.")
    newest = conn.query(f"select invocation_id, command, generated_at from {table} "
                        "order by generated_at desc limit 1")
    if not newest:
        raise ArtifactsError(f"--from-warehouse: {table} is empty: run `dbt build` with `{HOOK}`.")
    invocation_id, command, generated_at = newest[0]
    rows = conn.query(f"select unique_id, status, message, relation_name from {table} "
                      f"where invocation_id = {dialect.placeholder}", [str(invocation_id)])
    statuses: dict[str, str] = {}
    messages: dict[str, str] = {}
    relations: dict[str, str] = {}
    for unique_id, status, message, relation in rows:
        uid = str(unique_id)
        statuses[uid] = str(status or "").lower()
        if message:
            messages[uid] = str(message)
        if relation and uid.startswith("test."):
            relations[uid] = str(relation)
    return RunResults(schema_version=SCHEMA_VERSION, invocation_id=str(invocation_id), command=str(command or ""),
                      generated_at=str(generated_at), statuses=statuses, messages=messages, relations=relations)
