"""Redshift for tests: the real driver and dbt-redshift against the local PostgreSQL, via the proxy.

Pieces, usable on their own or as pytest fixtures:

- ``start_proxy()`` starts a :class:`RedshiftProxy` in front of the local PostgreSQL, in this
  process; ``proxy_process()`` runs one in a child process (benchmarks, libpq cancel requests).
- ``redshift_database()`` creates a uniquely named database with the Redshift compatibility
  objects (``REDSHIFT_COMPAT_SQL``) and drops it afterwards.
- ``connect()`` opens a ``redshift_connector`` connection through the proxy with the options
  that work against PostgreSQL (``ssl=False``; any password under trust auth).
- ``write_profile()`` writes a ``type: redshift`` profiles.yml pointing at the proxy
  (``sslmode: disable`` is required, see the proxy's docstring).

Fixture usage: add ``pytest_plugins = ["tests.support.redshift"]`` to ``tests/conftest.py`` (or
import the fixtures into a test module), then::

    @pytest.mark.redshift
    def test_something(redshift_proxy: RedshiftProxy, redshift_db: str) -> None:
        conn = connect(redshift_proxy, redshift_db)
        ...

``redshift_proxy`` is session-scoped (one listener for the whole run; each client connection is
relayed independently), ``redshift_db`` is a fresh database per test.

What the compatibility objects cover (they live in ``pg_catalog`` like Redshift's own, so they
resolve whatever the search_path): what dbt-redshift itself queries outside its ``datasharing``
mode, ``pg_get_late_binding_view_cols()`` (``get_columns_in_relation``: every incremental run,
``docs generate``), ``pg_catalog.svv_external_columns`` and ``svv_table_info`` (catalog); the
functions its macros emit, ``getdate()`` (``current_timestamp()``, snapshots) and ``len()``
(``length()``); and ``nvl()`` and ``convert_timezone()``, common in Redshift SQL.

Not handled, so not testable this way (each fails in PostgreSQL with a syntax or "does not
exist" error): ``datasharing: true`` (``SHOW TABLES`` / ``SHOW COLUMNS``); table options
``dist``/``sort``/``backup`` (``diststyle``, ``sortkey``, ``backup no``), materialized views
(``auto refresh``), late-binding views (``bind: false``, ``with no schema binding``);
``dbt.dateadd``/``dbt.datediff`` (``dateadd(day, ...)``: the bare date part reads as a column),
``dbt.listagg`` (``listagg ... within group``), ``sysdate``; types ``super``, ``varbyte``,
``geography``, ``hllsketch``; ``COPY``/``UNLOAD`` from and to S3; ``stl_``/``stv_``/``svl_``
tables; IAM and Identity Center authentication (they need AWS before the wire protocol).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg2
import pytest
import redshift_connector

from tests.support import servers
from tests.support.redshift_proxy import RedshiftProxy

UPSTREAM = ("127.0.0.1", 5432)
REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "postgres"

REDSHIFT_COMPAT_SQL = """
-- Objects in pg_catalog need this (a superuser setting since PostgreSQL 12); reset below.
set allow_system_table_mods = on;

-- Redshift lists the columns of late-binding views (WITH NO SCHEMA BINDING) here. PostgreSQL
-- has no such views, so the honest answer is no rows; callers give a column definition list.
create or replace function pg_catalog.pg_get_late_binding_view_cols() returns setof record
language sql stable as $$
    select null::name, null::name, null::name, null::varchar, null::int where false
$$;

-- Spectrum external tables: none in PostgreSQL.
create or replace view pg_catalog.svv_external_columns as
select null::name as schemaname, null::name as tablename, null::name as columnname,
       null::text as external_type, null::int as columnnum, null::int as part_key
where false;

-- One row per user table, PostgreSQL statistics standing in for Redshift's where they exist.
create or replace view pg_catalog.svv_table_info as
select current_database()::text as database, n.nspname::text as schema, c.oid::int as table_id,
       c.relname::text as "table", 'N'::text as encoded, 'AUTO(EVEN)'::text as diststyle,
       null::text as sortkey1, 0::int as max_varchar, null::text as sortkey1_enc,
       0::int as sortkey_num, (pg_total_relation_size(c.oid) / 1048576)::bigint as size,
       0::numeric(10, 4) as pct_used, 0::bigint as empty, null::numeric(5, 2) as unsorted,
       0::numeric(5, 2) as stats_off, greatest(c.reltuples, 0)::numeric(38, 0) as tbl_rows,
       null::numeric(19, 2) as skew_sortkey1, null::numeric(19, 2) as skew_rows
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname not like 'pg\\_toast%';

-- dbt-redshift renders current_timestamp() as getdate(): the start of the current statement,
-- as a timestamp without time zone and without fractional seconds.
create or replace function pg_catalog.getdate() returns timestamp
language sql stable as $$ select date_trunc('second', statement_timestamp())::timestamp $$;

-- dbt-redshift renders length() as len().
create or replace function pg_catalog.len(text) returns int
language sql immutable strict as $$ select length($1) $$;

-- Common in Redshift SQL (models, dbt packages), absent from PostgreSQL.
create or replace function pg_catalog.nvl(anycompatible, anycompatible) returns anycompatible
language sql immutable as $$ select coalesce($1, $2) $$;
create or replace function pg_catalog.convert_timezone(text, text, timestamp) returns timestamp
language sql stable strict as $$ select ($3 at time zone $1) at time zone $2 $$;
create or replace function pg_catalog.convert_timezone(text, timestamp) returns timestamp
language sql stable strict as $$ select ($2 at time zone 'UTC') at time zone $1 $$;

reset allow_system_table_mods;
"""


class ProxyAddress(Protocol):
    """Where a proxy listens: a :class:`RedshiftProxy` or a :class:`ProxyProcess`."""

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...


@dataclass(frozen=True)
class ProxyProcess:
    host: str
    port: int
    pid: int


def start_proxy(upstream: tuple[str, int] = UPSTREAM) -> RedshiftProxy:
    """A started proxy in front of ``upstream``; the caller closes it (or uses ``with``)."""
    return RedshiftProxy(upstream=upstream).start()


@contextmanager
def proxy_process(upstream: tuple[str, int] = UPSTREAM) -> Iterator[ProxyProcess]:
    """The proxy in a child process, for what an in-process proxy cannot do: benchmarks (no GIL
    shared with the code under test) and libpq's ``PQcancel`` (psycopg2 ``conn.cancel()``), which
    holds the GIL while it waits for the proxy and so deadlocks an in-process one."""
    command = [sys.executable, "-m", "tests.support.redshift_proxy", "--upstream", f"{upstream[0]}:{upstream[1]}"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield ProxyProcess(host="127.0.0.1", port=port, pid=process.pid)
    finally:
        servers.stop(process, 5)
        if process.stdout is not None:
            process.stdout.close()


def unique_name(prefix: str = "dbt_activate_rs") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def _admin(database: str = "postgres") -> Any:
    # Administration goes straight to PostgreSQL: CREATE/DROP DATABASE are not what is under test.
    conn = psycopg2.connect(host=UPSTREAM[0], port=UPSTREAM[1], user=ADMIN_USER, dbname=database)
    conn.autocommit = True
    return conn


def install_compat(database: str) -> None:
    """Create the Redshift compatibility objects (``REDSHIFT_COMPAT_SQL``) in ``database``."""
    conn = _admin(database)
    try:
        with conn.cursor() as cur:
            cur.execute(REDSHIFT_COMPAT_SQL)
    finally:
        conn.close()


@contextmanager
def redshift_database(prefix: str = "dbt_activate_rs", *, compat: bool = True) -> Iterator[str]:
    """Create a fresh database (with the compatibility objects unless ``compat=False``), yield its
    name, and drop it, even while connections are still open."""
    name = unique_name(prefix)
    admin = _admin()
    try:
        with admin.cursor() as cur:
            cur.execute(f'create database "{name}"')
        try:
            if compat:
                install_compat(name)
            yield name
        finally:
            with admin.cursor() as cur:
                cur.execute(f'drop database if exists "{name}" with (force)')
    finally:
        admin.close()


def connect(proxy: ProxyAddress, database: str, **options: Any) -> Any:
    """A ``redshift_connector`` connection through ``proxy``. ``ssl=False`` is required: the proxy
    refuses TLS, and the driver would verify against the Redshift CA bundle anyway."""
    kwargs: dict[str, Any] = {
        "host": proxy.host,
        "port": proxy.port,
        "user": ADMIN_USER,
        "password": "unused-under-trust-auth",  # the driver insists on a password for user auth
        "database": database,
        "ssl": False,
        "timeout": 30,
    }
    return redshift_connector.connect(**(kwargs | options))


def write_profile(
    profiles_dir: Path,
    *,
    proxy: ProxyAddress,
    database: str,
    schema: str,
    profile: str = "dbt_activate_test",
    threads: int = 1,
) -> Path:
    """Write ``profiles.yml`` with one ``dev`` target of ``type: redshift`` through ``proxy``."""
    path = profiles_dir / "profiles.yml"
    path.write_text(
        f"{profile}:\n"
        "  target: dev\n"
        "  outputs:\n"
        "    dev:\n"
        "      type: redshift\n"
        f"      host: {proxy.host}\n"
        f"      port: {proxy.port}\n"
        f"      user: {ADMIN_USER}\n"
        "      password: unused-under-trust-auth\n"
        f"      dbname: {database}\n"
        f"      schema: {schema}\n"
        "      sslmode: disable\n"
        "      connect_timeout: 30\n"
        f"      threads: {threads}\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def redshift_proxy() -> Iterator[RedshiftProxy]:
    """One proxy for the whole test session."""
    with start_proxy() as proxy:
        yield proxy


@pytest.fixture
def redshift_db() -> Iterator[str]:
    """A fresh database with the Redshift compatibility objects, dropped after the test."""
    with redshift_database() as name:
        yield name
