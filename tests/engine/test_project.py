"""destinations.yml: lookup order, env_var() rendering, errors that name the destination and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbt_activate.errors import ConfigError
from dbt_activate.project import load_destinations, resolve_paths


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: p\nprofile: p\ntarget-path: build\n")
    return project


def test_env_var_with_and_without_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_TOKEN", "s3cr3t-value")
    path = tmp_path / "destinations.yml"
    path.write_text("hook:\n  type: webhook\n  url: \"{{ env_var('HOOK_URL', 'http://127.0.0.1:1/x') }}\"\n"
                    "  headers: {Authorization: \"Bearer {{ env_var('HOOK_TOKEN') }}\"}\n")
    loaded = load_destinations(path)
    assert loaded.config("hook")["url"] == "http://127.0.0.1:1/x"
    assert loaded.config("hook")["headers"] == {"Authorization": "Bearer s3cr3t-value"}
    assert "s3cr3t-value" in loaded.secrets  # values from the environment are redacted from output


def test_missing_env_var_names_destination_key_and_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    path = tmp_path / "destinations.yml"
    path.write_text("crm:\n  type: hubspot\n  access_token: \"{{ env_var('NOPE_TOKEN') }}\"\n"
                    "files:\n  type: file\n  path: out\n")
    loaded = load_destinations(path)  # nothing is rendered until a destination is used
    assert loaded.build("files").kind == "file"  # a sync of `files` needs no NOPE_TOKEN
    assert loaded.destination_type("crm").kind == "hubspot"  # checked as written, no environment needed
    with pytest.raises(ConfigError) as info:
        loaded.build("crm")
    assert str(info.value) == (f"{path}: crm.access_token: environment variable 'NOPE_TOKEN' is not set "
                               "(and env_var() has no default)")


def test_environment_values_cannot_inject_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRICKY", "x\ntype: postgres")
    path = tmp_path / "destinations.yml"
    path.write_text("f:\n  type: file\n  path: \"{{ env_var('TRICKY') }}\"\n")
    assert load_destinations(path).config("f") == {"type": "file", "path": "x\ntype: postgres"}


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "destinations.yml"
    path.write_text("a:\n  type: file\n  path: [oops\n")
    with pytest.raises(ConfigError, match=r"destinations.yml: is not valid YAML: line \d+"):
        load_destinations(path)


def test_unknown_destination_and_type_errors(tmp_path: Path) -> None:
    path = tmp_path / "destinations.yml"
    path.write_text("a:\n  type: file\n  path: out\nb:\n  type: nope\n")
    loaded = load_destinations(path)
    with pytest.raises(ConfigError, match=r"destination 'zzz' is not defined .* \(defined: a, b\)"):
        loaded.build("zzz")
    with pytest.raises(ConfigError, match=r"\(defined: a, b\); did you mean 'a'\?"):
        loaded.build("A")
    with pytest.raises(ConfigError, match=r"unknown destination type 'fiel' .*; did you mean 'file'\?"):
        load_destinations(_write(tmp_path, "c:\n  type: fiel\n")).build("c")
    with pytest.raises(ConfigError, match=r"b\.type: unknown destination type 'nope'"):
        loaded.build("b")
    assert loaded.build("a").kind == "file"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "other.yml"
    path.write_text(text)
    return path


def test_lookup_order_flag_then_project_then_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _project(tmp_path)
    home = tmp_path / "home"
    (home / ".dbt").mkdir(parents=True)
    (home / ".dbt" / "destinations.yml").write_text("{}")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("DBT_PROFILES_DIR", raising=False)
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    paths = resolve_paths(str(project))
    assert paths.destinations_file == home / ".dbt" / "destinations.yml"
    assert paths.target_path == project / "build"  # target-path from dbt_project.yml
    (project / "destinations.yml").write_text("{}")
    assert resolve_paths(str(project)).destinations_file == project / "destinations.yml"
    elsewhere = tmp_path / "ci"
    elsewhere.mkdir()
    (elsewhere / "destinations.yml").write_text("{}")
    assert resolve_paths(str(project), destinations_dir=str(elsewhere)).destinations_file == \
        elsewhere / "destinations.yml"


def test_no_dbt_project_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no dbt_project\.yml"):
        resolve_paths(str(tmp_path))
