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

from dbt_activate.errors import EXIT_CONFIG, ActivateError
from dbt_activate.version import __version__

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
        click.option("--state", type=click.Path(file_okay=False), envvar="DBT_STATE",
                     help="Directory of the manifest.json to compare with, for `-s state:modified` (as in dbt)."),
        click.option("--dbt-cloud-run-id", type=click.IntRange(min=1),
                     help="Read manifest.json and run_results.json from this dbt Cloud run's build step "
                          "(env: DBT_CLOUD_ACCOUNT_ID, DBT_CLOUD_API_TOKEN, DBT_CLOUD_HOST)."),
        click.option("--dbt-cloud-job-id", type=click.IntRange(min=1),
                     help="As --dbt-cloud-run-id, for the latest finished run of this dbt Cloud job."),
        click.option("--from-warehouse", is_flag=True,
                     help="Read the last dbt invocation's results from the state schema (written by the "
                          "package's on-run-end hook dbt_activate.record_invocation) instead of "
                          "target/run_results.json; the manifest still comes from target/ (`dbt parse`)."),
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
        dbt_cloud_run_id=kwargs.get("dbt_cloud_run_id"), dbt_cloud_job_id=kwargs.get("dbt_cloud_job_id"),
        state=kwargs.get("state"), from_warehouse=kwargs.get("from_warehouse", False),
        samples=kwargs.get("samples", 0), lock_timeout=kwargs.get("lock_timeout", 60.0),
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
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              envvar="DBT_ACTIVATE_LOCK_TIMEOUT",
              help="Seconds to wait when another run of the same sync is sending; then that sync fails (exit 1).")
def run(**kwargs: Any) -> None:
    _execute("run", kwargs)


@main.command(help="The same decisions and diff as `run`, with nothing sent and no state written: per sync the "
                   "counts of adds/changes/removes, the API calls it would make and sample payloads exactly as "
                   "the destination would send them. Run it on a pull request to review a model change.")
@_dbt_options
@click.option("--samples", type=click.IntRange(min=0), default=2, show_default=True,
              help="Sample payloads to show per sync and operation (0: none).")
def plan(**kwargs: Any) -> None:
    _execute("plan", kwargs)


@main.command(name="ls", help="List every declared sync: model, destination, object, mode, and the time and "
                               "status of its last run from the state schema. Sends nothing, writes nothing.")
@_project_options
def ls(**kwargs: Any) -> None:
    from dbt_activate import console
    from dbt_activate.commands import ls as history
    out = console.Console(output=kwargs["output"])
    with _exit_on_error(out):
        listings = history.list_syncs(_options(kwargs))
    out.document(history.ls_document(listings), console.ls_table(listings))


@main.command(help="Check every activate block against target/manifest.json and destinations.yml with no "
                   "network: columns, primary key, destination, mode, required fields, secrets. Columns are "
                   "checked against target/catalog.json or a model's enforced contract (a column missing only "
                   "from the documented columns is a warning); with --warehouse, against the relations, and "
                   "every `where` is compiled. Lists every problem (file and key path); exit 0 when clean, "
                   "2 otherwise. Run in CI after `dbt parse`.")
@click.option("--project-dir", envvar="DBT_PROJECT_DIR", help="dbt project directory (default: .).")
@click.option("--target-path", envvar="DBT_TARGET_PATH", help="Where dbt wrote its artifacts.")
@click.option("--destinations-dir", envvar="DBT_ACTIVATE_DESTINATIONS_DIR",
              help="Directory of destinations.yml (default: project dir, then ~/.dbt).")
@click.option("--warehouse", is_flag=True,
              help="Also read each model's columns from its relation through the dbt profile, and compile every "
                   "`where` (select … where … limit 0). Reads only; needs the models built.")
@click.option("--profiles-dir", envvar="DBT_PROFILES_DIR",
              help="With --warehouse: directory of profiles.yml (default: project dir if it has one, else ~/.dbt).")
@click.option("--profile", help="With --warehouse: profile to use instead of the project's.")
@click.option("-t", "--target", envvar="DBT_TARGET", help="With --warehouse: target of the profile.")
@click.option("--vars", "vars_", help="With --warehouse: YAML mapping of dbt vars, as for dbt.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(**kwargs: Any) -> None:
    from rich.markup import escape

    from dbt_activate import console, project
    from dbt_activate.commands import validate as checks
    out = console.Console(output=kwargs["output"])
    with _exit_on_error(out):
        paths = project.resolve_paths(kwargs["project_dir"], kwargs["profiles_dir"], kwargs["target_path"],
                                      kwargs["destinations_dir"])
        warehouse = (checks.Warehouse(paths, profile=kwargs["profile"], target=kwargs["target"],
                                      cli_vars=_vars(kwargs["vars_"])) if kwargs["warehouse"] else None)
        try:
            report = checks.validate(paths, warehouse)
        finally:
            if warehouse is not None:
                warehouse.close()
    lines = [f"warning: {w}" for w in report.warnings] + [f"error: {p}" for p in report.problems]
    lines.append(f"{len(report.problems)} problem(s) in {report.syncs} sync(s)" if report.problems
                 else f"OK: {report.syncs} sync(s) valid")
    out.document(report.document(), escape("\n".join(lines)))
    sys.exit(report.exit_code)


@main.command(help="List the installed destination types (built-in and plugins registered under the "
                   "`dbt_activate.destinations` entry point): objects, modes, batch size and default rate limit.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def destinations(output: str) -> None:
    from dbt_activate import console
    from dbt_activate.dbt import catalog
    out = console.Console(output=output)
    with _exit_on_error(out):
        types = catalog.installed_types()
    out.document(catalog.catalog_document(types), console.destinations_table(types))


@main.command(help="Write dbt exposures for the syncs: one per destination (type application, depends on the "
                   "models synced to it), so `dbt docs` lineage shows where rows go. Reads target/manifest.json "
                   "and destinations.yml (owner: {name, email} per destination); no network.")
@click.option("--exposures", is_flag=True, help="Write the exposures YAML file (the only kind of docs so far).")
@click.option("--path", "path", type=click.Path(dir_okay=False),
              help="File to write (default: <first model path>/dbt_activate_exposures.yml).")
@click.option("--project-dir", envvar="DBT_PROJECT_DIR", help="dbt project directory (default: .).")
@click.option("--target-path", envvar="DBT_TARGET_PATH", help="Where dbt wrote its artifacts.")
@click.option("--destinations-dir", envvar="DBT_ACTIVATE_DESTINATIONS_DIR",
              help="Directory of destinations.yml (default: project dir, then ~/.dbt).")
def docs(**kwargs: Any) -> None:
    from pathlib import Path

    from dbt_activate import console, project
    from dbt_activate.commands import exposures
    if not kwargs["exposures"]:
        raise click.UsageError("nothing to write: pass --exposures")
    out = console.Console()
    with _exit_on_error(out):
        paths = project.resolve_paths(kwargs["project_dir"], None, kwargs["target_path"], kwargs["destinations_dir"])
        written, count = exposures.write_exposures(paths, Path(kwargs["path"]) if kwargs["path"] else None)
    click.echo(f"Wrote {count} exposure(s) to {written}; run `dbt parse` or `dbt docs generate` to see them.")


@main.command(help="Receive dbt Cloud `job.run.completed` webhooks and run `dbt-activate run` on the artifacts "
                   "of each successful run of the allowed jobs (fetched like --dbt-cloud-run-id). Deliveries "
                   "must be signed with the webhook secret (else 401); retries are deduplicated on eventId.")
@_dbt_options
@click.option("--secret", envvar="DBT_CLOUD_WEBHOOK_SECRET",
              help="The webhook's secret from dbt Cloud (env: DBT_CLOUD_WEBHOOK_SECRET). Required.")
@click.option("--job-id", "job_ids", type=int, multiple=True,
              help="dbt Cloud job whose runs may be synced (repeat for several). Required.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
def listen(**kwargs: Any) -> None:
    import dataclasses

    from dbt_activate import console, runner
    from dbt_activate.commands import listen as webhooks
    from dbt_activate.delivery import observing_http

    out = console.Console(quiet=kwargs["quiet"], verbose=kwargs["verbose"])

    def start_run(run_id: int) -> None:
        run_out = console.Console(quiet=kwargs["quiet"], verbose=kwargs["verbose"])
        reporter = run_out.reporter()
        options = dataclasses.replace(_options(kwargs), dbt_cloud_run_id=run_id, dbt_cloud_job_id=None)
        try:
            with observing_http(on_request=reporter.request, on_warning=reporter.warning):
                result = runner.run(options, reporter)
        except ActivateError as exc:
            run_out.error(f"dbt Cloud run {run_id}: {exc}")
            return
        run_out.result(result)

    def ready(server: webhooks.WebhookListener) -> None:
        jobs = ", ".join(str(j) for j in sorted(server.job_ids))
        click.echo(f"Listening on {server.url} for dbt Cloud webhooks of job(s) {jobs} (Ctrl-C to stop)", err=True)

    with _exit_on_error(out):
        server = webhooks.WebhookListener(kwargs["secret"] or "", set(kwargs["job_ids"]), start_run,
                                          host=kwargs["host"], port=kwargs["port"],
                                          log=lambda line: click.echo(line, err=True))
    server.serve_forever(ready)


if __name__ == "__main__":  # pragma: no cover
    main()
