"""How much memory DuckDB may take inside dbt-activate's process, and how that grows.

DuckDB runs inside this process, so its buffer pool is dbt-activate's memory: by default it may take
80% of RAM and keeps what it took until the process ends (the diff of a 10M-row model took 2.3 GB).
dbt-activate's own DuckDB connections start with a small memory limit and two threads, so joins and
aggregates spill to DuckDB's temp directory, and raise the limit (x2) only when a statement runs out
of memory, up to DuckDB's default: a model too big for the start limit costs time, never a failure.
Before a diff the limit is raised to what a snapshot of that many rows needs (``memory_for_rows``), so
a big model does not pay for statements that run out of memory first (10M rows: 38 s -> 22 s).
``DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT`` / ``DBT_ACTIVATE_DUCKDB_THREADS`` set the start values
(``default`` leaves DuckDB's own). Measurements: benchmarks/README.md, Memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from dbt_activate.errors import WarehouseError

# At 1M rows the diff needs 32-48 MB with two threads; 64 MB keeps the whole process under 300 MB.
DUCKDB_MEMORY_LIMIT = "64MB"
DUCKDB_THREADS = 2
_MEMORY_GROWTH = 2
# The diff's join and group by took 61-122 MiB too little and 244 MiB enough at 10M rows (two threads):
# 32 bytes per snapshot row, with headroom. Below 2M rows the start limit is already enough.
DIFF_BYTES_PER_ROW = 32
_SIZE = re.compile(r"^\s*([0-9.]+)\s*(bytes|B|KiB|MiB|GiB|TiB|KB|MB|GB|TB)?\s*$")
_UNITS = {"bytes": 1, "B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40,
          "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def size_bytes(text: str) -> int | None:
    """A DuckDB memory size as DuckDB prints it (``61.0 MiB``) or takes it (``64MB``), in bytes."""
    match = _SIZE.match(text)
    return int(float(match.group(1)) * _UNITS[match.group(2) or "bytes"]) if match else None


def duckdb_tuning(environ: Mapping[str, str] = os.environ) -> tuple[str | None, int | None]:
    """(start memory limit, threads) for dbt-activate's DuckDB connections; None keeps DuckDB's own."""
    limit = environ.get("DBT_ACTIVATE_DUCKDB_MEMORY_LIMIT", "").strip() or DUCKDB_MEMORY_LIMIT
    threads_text = environ.get("DBT_ACTIVATE_DUCKDB_THREADS", "").strip()
    if threads_text.lower() == "default":
        threads = None
    elif threads_text:
        if not threads_text.isdigit() or int(threads_text) < 1:
            raise WarehouseError(f"DBT_ACTIVATE_DUCKDB_THREADS must be a positive integer or 'default', "
                                 f"not {threads_text!r}")
        threads = int(threads_text)
    else:
        threads = min(DUCKDB_THREADS, os.cpu_count() or 1)
    return (None if limit.lower() == "default" else limit), threads


def physical_memory() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not on every platform (Windows)
        return None


def next_memory_limit(current: int, physical: int | None = None) -> int | None:
    """The limit after a statement ran out of ``current`` bytes; None: back to DuckDB's default.

    DuckDB's default (80% of RAM) is what the process would have used without a limit; where RAM
    is unknown (Windows), the first shortage goes straight back to it.
    """
    physical = physical if physical is not None else physical_memory()
    wanted = current * _MEMORY_GROWTH
    return None if physical is None or wanted >= physical * 8 // 10 else wanted


def memory_for_rows(rows: int, current: int, physical: int | None = None) -> int | None:
    """The limit to set before diffing a snapshot of ``rows`` rows; None: ``current`` is enough.

    Never more than DuckDB's default (80% of RAM, where RAM is known).
    """
    physical = physical if physical is not None else physical_memory()
    wanted = rows * DIFF_BYTES_PER_ROW
    if physical is not None:
        wanted = min(wanted, physical * 8 // 10)
    return wanted if wanted > current else None
