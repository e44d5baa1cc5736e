"""The pymysql side of the ``mysql`` destination: connection settings, error codes, statement text.

Pure helpers apart from ``driver()`` (which imports pymysql lazily, so the package works without
the ``mysql`` extra until a mysql destination is used).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from dbt_activate.destinations.mysql.table import quote
from dbt_activate.errors import ConfigError

INSTALL_HINT = "pip install 'dbt-activate[mysql]' (or pip install pymysql)"
# Server error codes that blame the rows sent: NOT NULL, duplicate, out of range, truncated or
# incorrect value, too long, foreign key, no default, invalid JSON, CHECK, SIGNAL in a trigger.
ROW_CODES = frozenset({1048, 1062, 1216, 1217, 1263, 1264, 1265, 1292, 1364, 1366, 1367, 1406, 1411, 1451,
                       1452, 1586, 1644, 1690, 3140, 3819, 4025})
# Worth a retry: lock wait timeout, deadlock, too many connections, shutdown, killed, interrupted,
# and the client's lost-connection codes.
RETRY_CODES = frozenset({1040, 1053, 1205, 1213, 1317, 1927, 2003, 2006, 2013, 2055, 4031})
# On connect: wrong user or password, no access to the database, no such database.
CONFIG_CODES = frozenset({1044, 1045, 1049, 1698})


def driver() -> Any:
    try:
        import pymysql  # type: ignore[import-untyped,unused-ignore]  # no stubs installed
    except ImportError as exc:
        raise ConfigError(f"the mysql destination needs pymysql: {INSTALL_HINT}") from exc
    return pymysql


def error_code(exc: BaseException) -> int | None:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def error_message(exc: BaseException) -> str:
    args: tuple[Any, ...] = getattr(exc, "args", ())
    if len(args) >= 2 and isinstance(args[1], str) and args[1]:
        return args[1]
    return str(exc) or type(exc).__name__


def parse_dsn(dsn: str) -> dict[str, Any]:
    """``mysql://user:password@host:3306/database?connect_timeout=5`` -> pymysql.connect() arguments."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb", "mysql+pymysql"):
        raise ValueError("a dsn must be a URL like mysql://user:password@host:3306/database")
    params: dict[str, Any] = {}
    if parts.hostname:
        params["host"] = parts.hostname
    if parts.port:
        params["port"] = parts.port
    if parts.username:
        params["user"] = unquote(parts.username)
    if parts.password is not None:
        params["password"] = unquote(parts.password)
    if parts.path.strip("/"):
        params["database"] = unquote(parts.path.strip("/"))
    for key, value in parse_qsl(parts.query):
        params[key] = int(value) if value.isdigit() else value
    return params


def derived_table(names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> str:
    """``SELECT %s AS a, %s AS b UNION ALL SELECT %s, %s …``: the rows as a table, names on the first."""
    first = "SELECT " + ", ".join(f"%s AS {quote(n).replace('%', '%%')}" for n in names)
    rest = " UNION ALL SELECT " + ", ".join(["%s"] * len(names))
    return first + rest * (len(rows) - 1)


def _literal_size(value: Any) -> int:
    """About how many bytes ``value`` takes as a SQL literal (bytes are sent escaped, up to 2x)."""
    if value is None or isinstance(value, (bool, int, float)):
        return 8
    if isinstance(value, bytes):
        return 2 * len(value) + 3
    return 4 * len(str(value)) + 3  # UTF-8 up to 4 bytes a character, quotes, escapes


def split_rows(rows: list[tuple[Any, ...]], limit: int) -> list[list[tuple[Any, ...]]]:
    """``rows`` split so each statement stays under ``limit`` bytes (a single huge row stands alone)."""
    parts: list[list[tuple[Any, ...]]] = [[]]
    total = 0
    for row in rows:
        row_size = 16 + sum(_literal_size(v) + 24 for v in row)  # + separators, the column alias per value
        if parts[-1] and total + row_size > limit:
            parts.append([])
            total = 0
        parts[-1].append(row)
        total += row_size
    return parts


def flat(rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    return [v for row in rows for v in row]
