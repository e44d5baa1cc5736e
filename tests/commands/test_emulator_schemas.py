"""`dbt-activate emulators start`: a project's emulators/<destination>.json is passed as the emulator's --schema."""

from __future__ import annotations

from pathlib import Path

from dbt_activate.commands.emulators import wanted
from dbt_activate.project import ProjectPaths


def _paths(root: Path) -> ProjectPaths:
    (root / "destinations.yml").write_text(
        "crm:\n  type: hubspot\n  access_token: t\n  base_url: http://127.0.0.1:18766\n"
        "other:\n  type: hubspot\n  access_token: t\n  base_url: http://127.0.0.1:18767\n", encoding="utf-8")
    return ProjectPaths(root, root, root / "target", root / "destinations.yml")


def test_a_destination_with_a_schema_file_gets_it_and_the_others_do_not(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    (tmp_path / "emulators").mkdir()
    schema = tmp_path / "emulators" / "crm.json"
    schema.write_text('{"properties": {"deals": [{"name": "lead_id", "unique": true}]}}', encoding="utf-8")
    found, notes = wanted(paths)
    assert notes == []
    assert {w.destination: w.schema for w in found} == {"crm": str(schema), "other": None}
