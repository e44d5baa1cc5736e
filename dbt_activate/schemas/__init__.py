"""JSON Schemas of what dbt-activate writes for machines, shipped with the package.

``activate_results.v1.json`` describes target/activate_results.json and ``--output json`` of `run`
and `plan`; ``activate_ls.v1.json`` describes ``dbt-activate ls --output json``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

RESULTS = "activate_results.v1.json"
LS = "activate_ls.v1.json"


def load(name: str) -> dict[str, Any]:
    """The parsed schema file ``name`` (one of the constants above)."""
    text = resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
