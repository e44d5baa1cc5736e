"""Helpers for end-to-end tests that install the repository's dbt package into the test project."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.e2e.project import Project

REPO = Path(__file__).resolve().parents[2]
RECORD_HOOK = "{{ dbt_activate.record_invocation(results) }}"
# A generic test whose failing rows are whole model rows, as most custom data-quality tests are.
VALID_EMAIL_TEST = """
{% test valid_email(model, column_name) %}
select * from {{ model }} where {{ column_name }} not like '%@%'
{% endtest %}
"""


def install_package(project: Project, *, record_invocations: bool = False) -> None:
    """packages.yml -> the repo root (dbt deps links it, offline); optionally the on-run-end hook."""
    (project.root / "packages.yml").write_text(yaml.safe_dump({"packages": [{"local": str(REPO)}]}))
    (project.root / "macros").mkdir(exist_ok=True)
    (project.root / "macros" / "valid_email.sql").write_text(VALID_EMAIL_TEST)
    if record_invocations:
        path = project.root / "dbt_project.yml"
        config = yaml.safe_load(path.read_text())
        config["on-run-end"] = [RECORD_HOOK]
        path.write_text(yaml.safe_dump(config))
    project.dbt("deps")


def set_column_tests(project: Project, tests: Mapping[str, Sequence[Any]]) -> None:
    """Replace the model's column tests: {column: [test, ...]} in schema.yml."""
    path = project.root / "models" / "schema.yml"
    doc = yaml.safe_load(path.read_text())
    doc["models"][0]["columns"] = [{"name": column, "data_tests": list(t)} for column, t in tests.items()]
    path.write_text(yaml.safe_dump(doc))
