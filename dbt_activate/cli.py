"""The `dbt-activate` command line. Thin: parse flags, call the runner, render, exit.

Exit codes: 0 everything synced; 1 some sync or some rows failed; 2 configuration, usage or
unexpected error. This is the only module that exits.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from dbt_activate import __version__
from dbt_activate.errors import EXIT_CONFIG, ActivateError

_COMMON_HELP = """
Reads dbt's artifacts (target/manifest.json, target/run_results.json) and the `activate` blocks in
your models' YAML (config.meta.activate), diffs each model against what was last synced (in the
warehouse), and sends only the changes to the destinations declared in destinations.yml.
"""


def _vars(value: str | None) -> dict[str, Any]:
    if not value:
        return {}
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"--vars is not valid YAML: {exc}") from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter("--vars must be a YAML mapping, e.g. '{key: value}'")
    return parsed


def _apply(options: list[Callable[..., Any]], func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        func = option(func)
    return func


def _project_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The dbt flags dbt-activate shares with dbt, with the same environment variables."""
    return _apply([
        click.option("--project-dir", envvar="DBT_PROJECT_DIR", help="dbt project directory (default: .)."),
        click.option("--profiles-dir", envvar="DBT_PROFILES_DIR",
                     help="Directory of profiles.yml (default: project dir if it has one, else ~/.dbt)."),
        click.option("--profile", help="Profile to use instead of the project's."),
        click.option("-t", "--target", envvar="DBT_TARGET", help="Target of the profile."),
        click.option("--target-path", envvar="DBT_TARGET_PATH", help="Where dbt wrote its artifacts."),
        click.option("--vars", "vars_", help="YAML mapping of dbt vars, as for dbt."),
        click.option("--destinations-dir", envvar="DBT_ACTIVATE_DESTINATIONS_DIR",
                     help="Directory of destinations.yml (default: project dir, then ~/.dbt)."),
        click.option("--state-schema", envvar="DBT_ACTIVATE_STATE_SCHEMA",
                     help="Warehouse schema for sync state (default: <target schema>_activate)."),
        click.option("-s", "--select", multiple=True,
                     help="Syncs to consider: model or sync name, tag:x, path:models/crm, destination:x."),
        click.option("--exclude", multiple=True, help="Syncs to leave out (same syntax as --select)."),
        click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="json: one JSON document on stdout (schema: dbt_activate/schemas)."),
    ], func)


def _dbt_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` and ``plan``: the project flags plus what decides and shows a run."""
    return _apply([
        _project_options,
        click.option("--all", "run_all", is_flag=True, help="Sync even models that were not rebuilt."),
        click.option("--full-resync", is_flag=True,
                     help="Ignore saved state for the selected syncs: send every row again."),
        click.option("--fail-fast", is_flag=True, help="Stop at the first sync that fails."),
        click.option("-q", "--quiet", is_flag=True,
                     help="No progress bars or per-sync lines on stderr: the summary and errors only."),
        click.option("-v", "--debug", "verbose", is_flag=True,
                     help="Also log every HTTP request: method, path, status, duration (never bodies or secrets)."),
    ], func)


def _options(kwargs: dict[str, Any]) -> Any:
    from dbt_activate.runner import RunOptions

    return RunOptions(
        project_dir=kwargs["project_dir"], profiles_dir=kwargs["profiles_dir"], profile=kwargs["profile"],
        target=kwargs["target"], target_path=kwargs["target_path"], vars=_vars(kwargs["vars_"]),
        destinations_dir=kwargs["destinations_dir"], select=kwargs["select"], exclude=kwargs["exclude"],
        run_all=kwargs.get("run_all", False), full_resync=kwargs.get("full_resync", False),
        fail_fast=kwargs.get("fail_fast", False), state_schema=kwargs["state_schema"],
    )


def _execute(command: str, kwargs: dict[str, Any]) -> None:
    from dbt_activate import console, runner
    from dbt_activate.delivery import observing_http

    out = console.Console(output=kwargs["output"], quiet=kwargs["quiet"], verbose=kwargs["verbose"])
    reporter = out.reporter()
    with _exit_on_error(out), observing_http(on_request=reporter.request, on_warning=reporter.warning):
        result = runner.run(_options(kwargs), reporter, command=command)
    out.result(result)
    sys.exit(result.exit_code)


@contextmanager
def _exit_on_error(out: Any) -> Iterator[None]:
    """Every command's errors: one clear line on stderr and the exit code of the error tree (2 for
    configuration and anything unexpected)."""
    try:
        yield
    except ActivateError as exc:
        out.error(str(exc))
        sys.exit(exc.exit_code)
    except Exception as exc:
        out.error(f"unexpected error: {type(exc).__name__}: {exc}. Please report it with the command you ran.")
        sys.exit(EXIT_CONFIG)


@click.group(help=_COMMON_HELP)
@click.version_option(__version__, prog_name="dbt-activate")
def main() -> None:
    pass


@main.command(help="Sync every sync whose model changed in the last dbt invocation. Run after `dbt build`. "
                   "Progress and a summary go to stderr; rules under `alerts:` in destinations.yml announce "
                   "failures, recoveries and rejected rows.")
@_dbt_options
def run(**kwargs: Any) -> None:
    _execute("run", kwargs)


@main.command(help="The same decisions and diff as `run`, with nothing sent and no state written: "
                   "counts of adds/changes/removes per sync.")
@_dbt_options
def plan(**kwargs: Any) -> None:
    _execute("plan", kwargs)


@main.command(name="ls", help="List every declared sync: model, destination, object, mode, and the time and "
                               "status of its last run from the state schema. Sends nothing, writes nothing.")
@_project_options
def ls(**kwargs: Any) -> None:
    from dbt_activate import console, history

    out = console.Console(output=kwargs["output"])
    with _exit_on_error(out):
        listings = history.list_syncs(_options(kwargs))
    out.document(history.ls_document(listings), console.ls_table(listings))


if __name__ == "__main__":  # pragma: no cover
    main()
