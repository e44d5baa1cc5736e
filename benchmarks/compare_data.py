"""The contacts model of the peer comparison: generate, mutate (seeded) and read back, in DuckDB or PostgreSQL.

The raw table ``raw_contacts`` is what a pipeline loaded; the dbt model ``contacts`` (a table) is what
every tool syncs. Values are derived from the row number and the seed, so a run is reproducible.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# Email is the key (HubSpot's idProperty); names, country, lead score, plan, timestamps, ten more mixed types.
COLUMNS = ("email", "first_name", "last_name", "country", "lead_score", "plan", "created_at", "updated_at",
           "company", "job_title", "city", "phone", "is_customer", "mrr", "seats", "signup_date", "last_login_at",
           "nps")

ROWS_SQL = """
select 'contact' || i || '@example.com' as email,
       'First' || (i % 997) as first_name,
       'Last' || (i % 1009) as last_name,
       (array['GB', 'FR', 'DE', 'US', 'RU', 'ES'])[1 + i % 6] as country,
       cast((i * 37) % 100 as integer) as lead_score,
       (array['free', 'starter', 'pro', 'enterprise'])[1 + i % 4] as plan,
       timestamp '2024-01-01 00:00:00' + (i % 10000) * interval '1 minute' as created_at,
       timestamp '2025-01-01 00:00:00' + (i % 50000) * interval '1 second' as updated_at,
       'Company ' || (i % 5003) as company,
       (array['Engineer', 'Manager', 'Director', 'Analyst', 'Founder'])[1 + i % 5] as job_title,
       (array['London', 'Paris', 'Berlin', 'New York', 'Kazan', 'Madrid'])[1 + i % 6] as city,
       '+44 7' || lpad(cast(i % 1000000000 as varchar), 9, '0') as phone,
       i % 3 = 0 as is_customer,
       cast((i % 100000) / 100.0 as numeric(10, 2)) as mrr,
       cast(1 + i % 250 as integer) as seats,
       date '2023-01-01' + cast(i % 900 as integer) as signup_date,
       timestamp '2026-01-01 00:00:00' + (i % 86400) * interval '1 second' as last_login_at,
       cast(i % 11 as integer) as nps
"""
ROW_NUMBERS = {"duckdb": "from range({start}, {stop}) t(i)",
               "postgres": "from generate_series({start}, {stop} - 1) t(i)"}


@dataclass(frozen=True)
class Mutation:
    changed: int
    deleted: int
    inserted: int


def _hash(column: str, seed: int) -> str:
    # A seeded, portable scramble of the row number (no md5 needed): ((i * a + seed * b) mod p).
    return f"(({column} * 2654435761 + {seed} * 40503) % 1000003)"


class Warehouse:
    """A DuckDB file or a PostgreSQL database holding ``raw_contacts`` and the model ``contacts``."""

    def __init__(self, kind: str, root: Path, pg_database: str = "") -> None:
        self.kind, self.root, self.pg_database = kind, root, pg_database
        self.schema = "main" if kind == "duckdb" else "analytics"
        self.duckdb_path = root / "warehouse.duckdb"

    # -- connections -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        if self.kind == "duckdb":
            import duckdb

            con = duckdb.connect(str(self.duckdb_path))
            try:
                yield con
            finally:
                con.close()
        else:
            import psycopg2

            con = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=self.pg_database)
            con.autocommit = True
            try:
                yield con
            finally:
                con.close()

    def execute(self, *statements: str) -> None:
        with self.connect() as con:
            cur = con.cursor()
            for sql in statements:
                cur.execute(sql)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.connect() as con:
            cur = con.cursor()
            cur.execute(sql)
            return list(cur.fetchall())

    # -- the data ----------------------------------------------------------------------------------

    def generate(self, rows: int) -> None:
        raw = f"{self.schema}.raw_contacts"
        self.execute(f"create schema if not exists {self.schema}", f"drop table if exists {raw}",
                     f"create table {raw} as {ROWS_SQL} {ROW_NUMBERS[self.kind].format(start=1, stop=rows + 1)}")

    def mutate(self, rows: int, seed: int) -> Mutation:
        """1% of rows changed (lead score, plan, updated_at), 0.1% deleted, 0.1% inserted; seeded."""
        raw = f"{self.schema}.raw_contacts"
        number = "cast(substr(email, 8, strpos(email, '@') - 8) as bigint)"
        changed_where = f"{_hash(number, seed)} % 100 = 0"
        deleted_where = f"{_hash(number, seed)} % 1000 = 1"
        inserted = max(1, rows // 1000)
        changed = self.query(f"select count(*) from {raw} where {changed_where}")[0][0]
        deleted = self.query(f"select count(*) from {raw} where {deleted_where}")[0][0]
        top = self.query(f"select max({number}) from {raw}")[0][0]
        self.execute(
            f"update {raw} set lead_score = (lead_score + 7) % 100, plan = 'enterprise', "
            f"updated_at = timestamp '2026-06-01 12:00:00' where {changed_where}",
            f"delete from {raw} where {deleted_where}",
            f"insert into {raw} {ROWS_SQL} {ROW_NUMBERS[self.kind].format(start=top + 1, stop=top + 1 + inserted)}",
        )
        return Mutation(int(changed), int(deleted), inserted)

    def model_rows(self) -> dict[str, tuple[str, str]]:
        """email -> (lead_score, plan) of the model, the fields the correctness check compares."""
        return {e: (str(s), p) for e, s, p in self.query(f"select email, lead_score, plan from {self.schema}.contacts")}

    # -- the dbt project that builds the model -----------------------------------------------------

    def write_dbt_project(self, activate: list[dict[str, Any]]) -> None:
        (self.root / "models").mkdir(parents=True, exist_ok=True)
        (self.root / "dbt_project.yml").write_text(yaml.safe_dump(
            {"name": "compare", "version": "1.0", "config-version": 2, "profile": "compare",
             "models": {"compare": {"+materialized": "table"}}}))
        output: dict[str, Any] = (
            {"type": "duckdb", "path": str(self.duckdb_path), "schema": "main", "threads": 1}
            if self.kind == "duckdb" else
            {"type": "postgres", "host": "127.0.0.1", "port": 5432, "user": "postgres", "password": "",
             "dbname": self.pg_database, "schema": "analytics", "threads": 1})
        (self.root / "profiles.yml").write_text(yaml.safe_dump(
            {"compare": {"target": "dev", "outputs": {"dev": output}}}))
        (self.root / "models" / "contacts.sql").write_text(
            f"select * from {self.schema}.raw_contacts\n")
        (self.root / "models" / "schema.yml").write_text(yaml.safe_dump(
            {"version": 2, "models": [{"name": "contacts", "config": {"meta": {"activate": activate}}}]}))
