"""Spark for tests: the Thrift JDBC/ODBC server (HiveServer2 protocol) shipped in the ``pyspark``
wheel, which dbt-spark's ``method: thrift`` (PyHive) talks to, started on a free port of 127.0.0.1.

Measured with pyspark 4.0.x on Java 17: up in about 9 s, 1 to 1.5 GB of memory, so one server per
test session. Its warehouse and metastore (embedded Derby) live in a temporary directory removed at
the end. Without Delta (its jars come from Maven, unreachable offline) tables are Parquet/Hive tables:
no DELETE, UPDATE or MERGE, no ``information_schema``, double-quoted identifiers are parse errors;
that is the path dbt-activate's Spark dialect takes there (warehouse/spark.py).

``spark_home()`` is the pyspark folder (None when pyspark or java is missing); ``profile_output()``
is the dbt-spark target; ``connect()`` opens a PyHive connection as dbt-spark does.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.support import servers

_MAIN_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"
_START_SECONDS = 300


def spark_home() -> Path | None:
    """pyspark's folder, which holds bin/spark-submit and the jars; None without pyspark or java."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None or shutil.which("java") is None:
        return None
    return Path(spec.origin).parent


def _accepts_queries(port: int) -> bool:
    """The port is open before the session manager is: wait for a query to go through."""
    try:
        conn = connect(port)
    except Exception:
        return False
    try:
        cur = conn.cursor()
        cur.execute("select 1")
        cur.fetchall()
        return True
    except Exception:
        return False
    finally:
        conn.close()


@contextmanager
def thrift_server(home: Path) -> Iterator[int]:
    """Start the Thrift server from ``home`` (pyspark's folder) on a free port; yield the port; stop it."""
    port = servers.free_port()
    work = Path(tempfile.mkdtemp(prefix="activate-spark-"))
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(work / "logs"),
           "SPARK_LOCAL_DIRS": str(work / "local"), "SPARK_LOCAL_IP": "127.0.0.1"}
    env.pop("PYSPARK_PYTHON", None)
    command = [
        str(home / "bin" / "spark-submit"), "--class", _MAIN_CLASS, "--driver-memory", "1g",
        "--conf", f"spark.sql.warehouse.dir={work / 'warehouse'}",
        "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={work}",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=4",
        "--hiveconf", f"hive.server2.thrift.port={port}",
        "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
        "--hiveconf", f"javax.jdo.option.ConnectionURL=jdbc:derby:;databaseName={work / 'metastore'};create=true",
        "spark-internal",
    ]
    try:
        with servers.serving("the Spark Thrift server", command, port, ready=_accepts_queries,
                             start_seconds=_START_SECONDS, poll_seconds=0.5, stop_seconds=30,
                             log=work / "server.log", cwd=work, env=env, start_new_session=True):
            yield port
    finally:
        shutil.rmtree(work, ignore_errors=True)


def profile_output(port: int, schema: str) -> dict[str, Any]:
    return {"type": "spark", "method": "thrift", "host": "127.0.0.1", "port": port, "schema": schema,
            "threads": 1, "connect_retries": 0}


def connect(port: int) -> Any:
    from pyhive import hive

    return hive.connect(host="127.0.0.1", port=port, username="activate")


def query(port: int, sql: str) -> list[tuple[Any, ...]]:
    conn = connect(port)
    try:
        cur = conn.cursor()
        cur.execute(sql)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()
