"""Which adapters have a dialect, and the refusal of every other one (no generic SQL anywhere)."""

from __future__ import annotations

import pytest

from dbt_activate.errors import EXIT_CONFIG, ConfigError
from dbt_activate.warehouse.adapter import profile_adapter_type
from dbt_activate.warehouse.messages import warehouse_message
from dbt_activate.warehouse.registry import dialect_for, supported


@pytest.mark.parametrize("adapter", ["duckdb", "postgres", "redshift", "snowflake", "bigquery", "spark", "databricks"])
def test_each_supported_adapter_has_its_own_dialect(adapter: str) -> None:
    assert dialect_for(adapter).name == adapter


@pytest.mark.parametrize("adapter", ["trino", "sqlserver"])
def test_an_adapter_without_a_dialect_is_a_config_error_naming_it_and_the_supported_list(adapter: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dialect_for(adapter)
    assert caught.value.exit_code == EXIT_CONFIG
    assert repr(adapter) in str(caught.value)
    assert "supported: " + ", ".join(supported()) in str(caught.value)


def test_the_profile_type_is_read_without_dbt(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (root / "profiles.yml").write_text("p:\n  target: dev\n  outputs:\n"
                                       "    dev: {type: trino}\n    ci: {type: duckdb}\n")
    assert profile_adapter_type(root, root, None, None) == "trino"
    assert profile_adapter_type(root, root, None, "ci") == "duckdb"
    assert profile_adapter_type(root, root, "missing", None) is None  # dbt reports that itself
    (root / "profiles.yml").write_text("p:\n  target: dev\n  outputs:\n    dev: {type: \"{{ env_var('T') }}\"}\n")
    assert profile_adapter_type(root, root, None, None) is None


class _DbtDatabaseError(Exception):
    """What dbt-spark's cursor raises: a title line, the warehouse's words below it."""


def test_warehouse_message_keeps_the_warehouse_words_not_the_title_line() -> None:
    exc = _DbtDatabaseError("Database Error\n  [PARSE_SYNTAX_ERROR] Syntax error at or near '\"acme_activate\"'.")
    assert warehouse_message(exc) == "[PARSE_SYNTAX_ERROR] Syntax error at or near '\"acme_activate\"'."
    try:
        try:
            raise ValueError("relation \"x\" does not exist\nLINE 1: select * from x")
        except ValueError as inner:
            raise _DbtDatabaseError("Database Error") from inner
    except _DbtDatabaseError as outer:
        assert warehouse_message(outer) == "relation \"x\" does not exist LINE 1: select * from x"
