"""The `dbt-activate` command line. Thin: parse flags, call the runner, render, exit.

Exit codes: 0 everything synced; 1 some sync or some rows failed; 2 configuration, usage or
unexpected error. This is the only module that exits.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
import yaml

from dbt_activate.core.interruption import Interruption
from dbt_activate.core.wording import plural
from dbt_activate.errors import EXIT_CONFIG, ActivateError
from dbt_activate.version import __version__

_COMMON_HELP = """
Reads dbt's artifacts (target/manifest.json, target/run_results.json) and the `activate` blocks in
your models' YAML (config.meta.activate), diffs each model against what was last synced (in the
warehouse), and sends only the changes to the destinations declared in destinations.yml.
"""


def _vars(ctx: click.Context, param: click.Parameter, value: str | None) -> dict[str, Any]:
    """``--vars`` parsed as dbt does, at parse time: invalid YAML is a usage error (exit 2)."""
    if not value:
        return {}
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise click.BadParameter(f"not valid YAML: {' '.join(str(exc).split())}", ctx, param) from exc
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a YAML mapping, e.g. '{key: value}'", ctx, param)
    return parsed


def _option(*decls: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click.option that lists the environment variable it reads in ``--help``."""
    if attrs.get("envvar"):
        attrs.setdefault("show_envvar", True)
    return click.option(*decls, **attrs)


def _apply(options: list[Callable[..., Any]], func: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(options):
        func = option(func)
    return func


def _project_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The dbt flags dbt-activate shares with dbt, with the same environment variables. Every command
    that reads the project takes all of them, so one set of flags works for a whole CI job; a command
    ignores those that do not apply to it (``validate`` has no use for ``--profiles-dir``)."""
    return _apply([
        _option("--project-dir", envvar="DBT_PROJECT_DIR", help="dbt project directory (default: .)."),
        _option("--profiles-dir", envvar="DBT_PROFILES_DIR",
                help="Directory of profiles.yml (default: project dir if it has one, else ~/.dbt)."),
        _option("--profile", envvar="DBT_PROFILE", help="Profile to use instead of the project's."),
        _option("-t", "--target", envvar="DBT_TARGET", help="Target of the profile."),
        _option("--target-path", envvar="DBT_TARGET_PATH", help="Where dbt wrote its artifacts."),
        _option("--vars", "vars_", callback=_vars, help="YAML mapping of dbt vars, as for dbt."),
        _option("--destinations-dir", envvar="DBT_ACTIVATE_DESTINATIONS_DIR",
                help="Directory of destinations.yml (default: project dir, then ~/.dbt)."),
        _option("--state-schema", envvar="DBT_ACTIVATE_STATE_SCHEMA",
                help="Warehouse schema for sync state (default: <target schema>_activate)."),
        _option("-s", "--select", multiple=True,
                help="Syncs to consider: model or sync name, tag:x, path:models/crm, destination:x."),
        _option("--exclude", multiple=True, help="Syncs to leave out (same syntax as --select)."),
        _option("--state", type=click.Path(file_okay=False), envvar="DBT_STATE",
                help="Directory of the manifest.json to compare with, for `-s state:modified` (as in dbt)."),
        _option("--warn-error", is_flag=True, envvar="DBT_WARN_ERROR",
                help="As in dbt: a --select/--exclude term that matches no sync is an error (exit 2) instead "
                     "of a warning, so a typo in a CI job fails it rather than syncing nothing."),
        _option("-q", "--quiet", is_flag=True, envvar="DBT_QUIET",
                help="No progress bars or per-sync lines on stderr: the summary and errors only."),
        _option("-d", "-v", "--debug", "verbose", is_flag=True, envvar="DBT_DEBUG",
                help="Also log every HTTP request: method, path, status, duration (never bodies or secrets)."),
    ], func)


def _output_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return _option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True,
                   help="json: one JSON document on stdout (schema: dbt_activate/schemas).")(func)


def _dbt_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` and ``plan``: the project flags plus what decides and shows a run."""
    return _apply([
        _project_options,
        _output_option,
        _option("--all", "run_all", is_flag=True, help="Sync even models that were not rebuilt."),
        _option("--full-resync", is_flag=True,
                help="Ignore saved state for the selected syncs: send every row again."),
        _option("--fail-fast", is_flag=True, help="Stop at the first sync that fails."),
        _option("--dbt-cloud-run-id", type=click.IntRange(min=1),
                help="Read manifest.json and run_results.json from this dbt Cloud run's build step "
                     "(env: DBT_CLOUD_ACCOUNT_ID, DBT_CLOUD_API_TOKEN, DBT_CLOUD_HOST)."),
        _option("--dbt-cloud-job-id", type=click.IntRange(min=1),
                help="As --dbt-cloud-run-id, for the latest finished run of this dbt Cloud job."),
        _option("--from-warehouse", is_flag=True,
                help="Read the last dbt invocation's results from the state schema (written by the "
                     "package's on-run-end hook dbt_activate.record_invocation) instead of "
                     "target/run_results.json; the manifest still comes from target/ (`dbt parse`)."),
    ], func)


def _options(kwargs: dict[str, Any]) -> Any:
    from dbt_activate.invocation import RunOptions

    return RunOptions(
        project_dir=kwargs["project_dir"], profiles_dir=kwargs["profiles_dir"], profile=kwargs["profile"],
        target=kwargs["target"], target_path=kwargs["target_path"], vars=kwargs["vars_"],
        destinations_dir=kwargs["destinations_dir"], select=kwargs["select"], exclude=kwargs["exclude"],
        run_all=kwargs.get("run_all", False), full_resync=kwargs.get("full_resync", False),
        fail_fast=kwargs.get("fail_fast", False), state_schema=kwargs["state_schema"],
        dbt_cloud_run_id=kwargs.get("dbt_cloud_run_id"), dbt_cloud_job_id=kwargs.get("dbt_cloud_job_id"),
        state=kwargs.get("state"), from_warehouse=kwargs.get("from_warehouse", False),
        samples=kwargs.get("samples", 0), lock_timeout=kwargs.get("lock_timeout", 60.0),
        warn_error=kwargs.get("warn_error", False),
    )


def _execute(command: str, kwargs: dict[str, Any]) -> None:
    from dbt_activate import console, runner
    from dbt_activate.delivery import observing_http

    out = console.Console(output=kwargs["output"], quiet=kwargs["quiet"], verbose=kwargs["verbose"])
    reporter = out.reporter()
    # While syncs send, SIGINT/SIGTERM stop the run cleanly (core/interruption.py); the result, with
    # what was sent, is printed like any other and the exit code is the signal's (130/143).
    interruption = Interruption(on_request=reporter.warning)
    with _exit_on_error(out), observing_http(on_request=reporter.request, on_warning=reporter.warning):
        result = runner.run(_options(kwargs), reporter, command=command, interruption=interruption)
    out.result(result)
    sys.exit(result.exit_code)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job) while no sync is sending: handled as Ctrl-C, with SIGTERM's exit code."""


def _terminate(signum: int, frame: Any) -> None:
    raise _Terminated()


@contextmanager
def _exit_on_error(out: Any) -> Iterator[None]:
    """Every command's errors: one clear line on stderr and the exit code of the error tree (2 for
    configuration and anything unexpected)."""
    previous = signal.getsignal(signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    except KeyboardInterrupt as exc:
        # Outside the sending phase (loading, validating, writing results): nothing is in flight.
        signum = signal.SIGTERM if isinstance(exc, _Terminated) else signal.SIGINT
        out.error(f"interrupted by {signum.name} while no sync was sending: nothing is lost")
        sys.exit(128 + signum)
    except ActivateError as exc:
        out.error(str(exc))
        sys.exit(exc.exit_code)
    except Exception as exc:
        out.error(f"unexpected error: {type(exc).__name__}: {exc}. Please report it with the command you ran.")
        sys.exit(EXIT_CONFIG)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


@click.group(help=_COMMON_HELP)
@click.version_option(__version__, prog_name="dbt-activate")
def main() -> None:
    pass


@main.command(help="Sync every sync whose model changed in the last dbt invocation. Run after `dbt build`. "
                   "Progress and a summary go to stderr; rules under `alerts:` in destinations.yml announce "
                   "failures, recoveries and rejected rows.")
@_dbt_options
@_option("--lock-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
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
                               "status of its last run from the state schema. Sends nothing, writes nothing, "
                               "and needs none of the destinations' secrets.")
@_project_options
@_output_option
def ls(**kwargs: Any) -> None:
    from dbt_activate import console
    from dbt_activate.commands import ls as history
    from dbt_activate.delivery import observing_http
    out = console.Console(output=kwargs["output"])
    with _exit_on_error(out), observing_http(on_warning=out.reporter().warning):
        listings = history.list_syncs(_options(kwargs), out.reporter())
    out.document(history.ls_document(listings), console.ls_table(listings))


@main.command(help="Check every activate block against target/manifest.json and destinations.yml with no "
                   "network: columns, primary key, destination, mode, required fields, secrets. Columns are "
                   "checked against target/catalog.json or a model's enforced contract (a column missing only "
                   "from the documented columns is a warning); with --warehouse, against the relations, and "
                   "every `where` is compiled. Lists every problem (file and key path); exit 0 when clean, "
                   "2 otherwise. Run in CI after `dbt parse`. --select/--exclude check only the syncs they pick "
                   "and the destinations those use; the other dbt flags of `run` are accepted, so one set of "
                   "flags works for a whole CI job (--profiles-dir, --profile, -t and --vars serve --warehouse).")
@_project_options
@click.option("--warehouse", is_flag=True,
              help="Also read each model's columns from its relation through the dbt profile, and compile every "
                   "`where` (select … where … limit 0). Reads only; needs the models built.")
@_output_option
def validate(**kwargs: Any) -> None:
    from rich.markup import escape

    from dbt_activate import console
    from dbt_activate.commands import validate as checks
    out = console.Console(output=kwargs["output"])
    with _exit_on_error(out):
        paths = _paths(kwargs)
        warehouse = (checks.Warehouse(paths, profile=kwargs["profile"], target=kwargs["target"],
                                      cli_vars=kwargs["vars_"]) if kwargs["warehouse"] else None)
        try:
            report = checks.validate(paths, warehouse, kwargs["select"], kwargs["exclude"])
        finally:
            if warehouse is not None:
                warehouse.close()
    lines = [f"warning: {w}" for w in report.warnings] + [f"error: {p}" for p in report.problems]
    lines.append(f"{plural(len(report.problems), 'problem')} in {plural(report.syncs, 'sync')}" if report.problems
                 else f"OK: {plural(report.syncs, 'sync')} valid")
    out.document(report.document(), escape("\n".join(lines)))
    sys.exit(report.exit_code)


def _paths(kwargs: dict[str, Any]) -> Any:
    from dbt_activate import project
    return project.resolve_paths(kwargs["project_dir"], kwargs["profiles_dir"], kwargs["target_path"],
                                 kwargs["destinations_dir"])


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
@_project_options
def docs(**kwargs: Any) -> None:
    from pathlib import Path

    from dbt_activate import console
    from dbt_activate.commands import exposures
    if not kwargs["exposures"]:
        raise click.UsageError("nothing to write: pass --exposures")
    out = console.Console()
    with _exit_on_error(out):
        written, count = exposures.write_exposures(_paths(kwargs), Path(kwargs["path"]) if kwargs["path"] else None)
    click.echo(f"Wrote {plural(count, 'exposure')} to {written}; run `dbt parse` or `dbt docs generate` to see them.")


@main.group(help="Run the bundled vendor emulators that destinations.yml points at, in the background, to try a "
                 "project with no vendor account (as the sample project's README does). Only destinations whose "
                 "base_url (url for webhook) is a port on this machine get one; each emulator accepts the token "
                 "'test-token' and shows what it received at <url>/_emulator/records/<object>.")
def emulators() -> None:
    pass


@emulators.command(name="start", help="Start, detached from this terminal, one emulator per destination whose "
                                      "URL is a port on this machine (already running ones are kept); print "
                                      "their URLs. Stop them with `dbt-activate emulators stop`.")
@_project_options
def emulators_start(**kwargs: Any) -> None:
    from dbt_activate import console
    from dbt_activate.commands import emulators as launcher
    out = console.Console()
    with _exit_on_error(out):
        running, notes = launcher.start(_paths(kwargs))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    for r in running:
        click.echo(f"{r.destination}: {r.emulator} emulator at {r.url} (records: {r.records_url}; pid {r.pid})")
    if not running:
        click.echo("No destination of destinations.yml points at a port on this machine: nothing to start.")


@emulators.command(name="stop", help="Stop the emulators `dbt-activate emulators start` started for this project.")
@_project_options
def emulators_stop(**kwargs: Any) -> None:
    from dbt_activate import console
    from dbt_activate.commands import emulators as launcher
    out = console.Console()
    with _exit_on_error(out):
        stopped = launcher.stop(_paths(kwargs))
    click.echo(f"Stopped {plural(len(stopped), 'emulator')}"
               + (f": {', '.join(f'{r.destination} ({r.url})' for r in stopped)}" if stopped else "."))


@main.command(help="Receive dbt Cloud `job.run.completed` webhooks and run `dbt-activate run` on the artifacts "
                   "of each successful run of the allowed jobs (fetched like --dbt-cloud-run-id). Deliveries "
                   "must be signed with the webhook secret (else 401); retries are deduplicated on eventId.")
@_dbt_options
@_option("--secret", envvar="DBT_CLOUD_WEBHOOK_SECRET", help="The webhook's secret from dbt Cloud. Required.")
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
