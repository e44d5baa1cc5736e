"""Validation of machine-readable output against the JSON Schemas shipped in dbt_activate/schemas."""

from __future__ import annotations

from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs installed; only tests use it

from dbt_activate import schemas


def errors(document: Any, name: str) -> list[str]:
    """Every violation of schema ``name`` in ``document``, as readable strings (empty: valid)."""
    validator = jsonschema.Draft202012Validator(schemas.load(name),
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
