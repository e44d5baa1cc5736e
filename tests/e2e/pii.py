"""The PII guarantee of the ad platform destinations, checked end to end (DESIGN §4, issue 21).

With ``google_ads`` and ``meta``, no raw email, phone number or name may leave the process or be
written anywhere: not in a request (``Recording`` keeps every request an emulator received, headers
and body), not on stdout/stderr (``-v`` logs included), not in ``plan --samples``, the results
artifact, the journal or the state tables, where only their hashes may be.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from dbt_activate.testing.server import Emulator
from tests.e2e.project import Project, customer

E = TypeVar("E", bound=Emulator)


def recording(kind: type[E]) -> type[E]:
    """``kind`` with every request it receives kept as text in ``seen`` (method, target, headers, body)."""

    class Recording(kind):  # type: ignore[valid-type,misc]
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.seen: list[str] = []

        def dispatch(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Any:
            self.seen.append(f"{method} {target} {dict(headers)} {body.decode('utf-8', 'replace')}")
            return super().dispatch(method, target, headers, body)

    Recording.__name__ = f"Recording{kind.__name__}"
    return Recording


def state_dump(project: Project, schema: str = "main_activate") -> str:
    """Every row of every table in the state schema, as text."""
    tables = [r[0] for r in project.warehouse_query(
        f"select table_name from information_schema.tables where table_schema = '{schema}'")]
    assert tables, f"no state tables in {schema}"
    return "\n".join(f"{t}: {project.warehouse_query(f'select * from {schema}.{t}')}" for t in tables)


def files_under(path: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in path.rglob("*") if p.is_file() and p.suffix in
                     ("", ".json", ".jsonl", ".log", ".csv", ".txt"))


def assert_no_raw(raw: Iterable[str], **texts: str) -> None:
    """None of the ``raw`` personal values (compared case-insensitively) is in any of ``texts``."""
    for where, text in texts.items():
        lowered = text.lower()
        found = [value for value in raw if value.lower() in lowered]
        assert not found, f"raw personal data {found[:3]} found in {where}"


def outputs(*procs: subprocess.CompletedProcess[str]) -> str:
    return "\n".join(p.stdout + p.stderr for p in procs)


def person(i: int, **changes: Any) -> dict[str, Any]:
    """A seed row whose name is unmistakable in any output (``Zelda7 Quixote7``)."""
    return {**customer(i, name=f"Zelda{i} Quixote{i}"), **changes}


def raw_values(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The personal values of ``person`` rows as the model has them: email, names, phone (+44 7700 900NNN)."""
    return [v for r in rows for v in (r["email"], f"Zelda{r['customer_id']}", f"Quixote{r['customer_id']}",
                                      f"7700 900{r['customer_id']:03d}", f"447700900{r['customer_id']:03d}")]
