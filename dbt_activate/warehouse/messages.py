"""The warehouse's own words in an error, not only the adapter's title line.

Some adapters wrap the driver's error in one of dbt's, whose first line is a generic title
("Database Error"): dbt-spark's cursor raises ``Database Error`` with the cause
(``PARSE_SYNTAX_ERROR near …``) on the following lines. Keeping only the first line dropped the only
useful part, so the message keeps every line but the titles, and falls back to the exception's cause
when nothing else is left.
"""

from __future__ import annotations

# dbt's exception titles (dbt_common.exceptions): they name a category, never what went wrong.
GENERIC_TITLES = frozenset({"Runtime Error", "Compilation Error", "Database Error", "Parsing Error",
                            "Internal Error", "Dbt Error", "Failed to connect", "Connection Error"})
_MAX_CHARS = 2000


def warehouse_message(exc: BaseException) -> str:
    """The substance of ``exc``: its lines without dbt's titles, joined; else its cause's."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines = [line.strip() for line in str(current).splitlines() if line.strip()]
        substance = [line for line in lines if line not in GENERIC_TITLES]
        if substance:
            text = " ".join(substance)
            return text if len(text) <= _MAX_CHARS else text[:_MAX_CHARS] + "…"
        current = current.__cause__ or current.__context__
    return type(exc).__name__
