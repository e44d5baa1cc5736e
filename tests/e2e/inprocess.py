"""Run `dbt` and `dbt-activate` inside the test process, as a shell would run them, minus the start-up.

A subprocess of either command spends most of its time importing dbt (2-4 s of CPU before the
first statement); the end-to-end tests start hundreds of them. Here each command runs through its
own entry point in this process: `dbt-activate` through its click command (``dbt_activate.cli.main``,
the function the console script calls), `dbt` through ``dbt.cli.main.dbtRunner`` (dbt's documented
programmatic invocation). For the length of one command the process looks as it would to a fresh
one: the environment is exactly the one the subprocess would get, the working directory is the
project, stdout and stderr are captured apart, warnings and log records reach stderr as in a new
interpreter (not pytest's capture), and the exit code is what the process would have returned
(``sys.exit``'s code; an uncaught exception prints its traceback and gives 1, as Python does).
Afterwards the environment and directory are put back and every warehouse connection dbt's adapters
hold is closed, as the end of a process would close them, so the next command (or the test reading
the DuckDB file) finds the database as a new process would.

What cannot be made the same in one process is refused here rather than approximated:
environment variables read only when the interpreter starts or a module is first imported
(``PROCESS_ONLY_ENV``) make ``needs_subprocess`` true, and the caller runs a real subprocess.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# Read once per process, so a value set for one command would not reach code already imported:
# PYTHONPATH (sys.path at start-up: a plugin or a shim on it), TZ (the C library's zone, read at
# start-up), DBT_ACTIVATE_CRASH_AT (dbt_activate/crashpoints.py reads it on import; it SIGKILLs).
PROCESS_ONLY_ENV = frozenset({"PYTHONPATH", "TZ", "DBT_ACTIVATE_CRASH_AT"})


# Python's default filters (docs: warnings, "Default Warning Filter"), minus the one for __main__.
_DEFAULT_WARNING_FILTERS: tuple[tuple[warnings._ActionKind, type[Warning]], ...] = (
    ("ignore", DeprecationWarning), ("ignore", PendingDeprecationWarning), ("ignore", ImportWarning),
    ("ignore", ResourceWarning))


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """What the interpreter prints for a warning, to stderr (pytest records them instead)."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def needs_subprocess(env: Mapping[str, str]) -> str | None:
    """Why ``env`` cannot be honoured in this process (the variables), or None when it can."""
    differing = sorted(k for k in PROCESS_ONLY_ENV if env.get(k) != os.environ.get(k))
    return ", ".join(differing) or None


def dbt_activate(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``dbt-activate <args>`` in ``cwd`` with exactly ``env``: exit code, stdout and stderr."""
    from dbt_activate.cli import main

    argv = ["dbt-activate", *args]
    with _as_a_process(cwd, env) as (out, err):
        try:
            main.main(list(args), prog_name="dbt-activate", standalone_mode=True)
            code = 0
        except SystemExit as exc:
            code = _exit_code(exc.code)
        except Exception:  # what the interpreter does with an uncaught exception
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def dbt(args: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``dbt <args>`` through dbtRunner: 0 success, 1 a node failed, 2 dbt raised (as dbt's own CLI)."""
    from dbt.cli.main import dbtRunner

    argv = ["dbt", *args]
    with _as_a_process(cwd, env) as (out, err):
        result = dbtRunner().invoke(list(args))
        if result.exception is not None:
            print(f"{type(result.exception).__name__}: {result.exception}", file=sys.stderr)
    code = 0 if result.success else 2 if result.exception is not None else 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)  # sys.exit("message"): printed, exit 1
    return 1


@contextlib.contextmanager
def _as_a_process(cwd: Path, env: Mapping[str, str]) -> Iterator[tuple[io.StringIO, io.StringIO]]:
    if (why := needs_subprocess(env)) is not None:
        raise RuntimeError(f"cannot run in process with {why} changed: run a subprocess")
    # A new process holds no connection: one this test process opened outside the harness (a test
    # calling runner.run itself) would otherwise be reused by dbt-duckdb for an equal profile (every
    # DuckDB project's path is the relative "wh.duckdb"), and write to another project's database.
    _close_connections()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    # os.environ is changed in place: modules that bound it (a default argument) see the new values.
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
            # A new interpreter's warning filters and printer, and a root logger with no handler
            # (records of WARNING and up go to stderr through logging.lastResort), not pytest's.
            warnings.resetwarnings()
            for action, category in _DEFAULT_WARNING_FILTERS:
                warnings.simplefilter(action, category, append=True)
            warnings.showwarning = _show_warning
            root.handlers, root.level = [], logging.WARNING
            yield out, err
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        _close_connections()


def _close_connections() -> None:
    """What a process's exit does to dbt's connections: close them all, forget the adapters.

    dbt-duckdb keeps one DuckDB database per process open in a class attribute; while it is open a
    read-only connection from the test (or a different-config one from the next command) is
    refused, as another process's would be while this one ran."""
    if "dbt.adapters.factory" in sys.modules:
        from dbt.adapters.factory import reset_adapters

        with contextlib.suppress(Exception):
            reset_adapters()  # type: ignore[no-untyped-call]
    duckdb_module = sys.modules.get("dbt.adapters.duckdb.connections")
    if duckdb_module is not None:
        manager = duckdb_module.DuckDBConnectionManager
        with manager._LOCK:
            if manager._ENV is not None:
                with contextlib.suppress(Exception):
                    manager._ENV.close()
                manager._ENV = None
    # Cursors nobody holds any more release the database file now, not at some later point. What
    # survives this full collection is then frozen (gc.freeze), so the next one traverses only what
    # was made since, not again the ~200,000 objects of dbt's and the adapters' modules (0.15 CPU-s
    # a collection, two per command: most of a command's CPU). The price: a cycle that outlived one
    # command and dies during a later one of the same test waits for the end of the test, when
    # ``unfreeze_survivors`` (tests/conftest.py) hands the frozen objects back to the collector; the
    # next test's first command collects them. Connections do not wait for it: they are closed above.
    gc.collect()
    gc.freeze()


def unfreeze_survivors() -> None:
    """Let the collector see again what survived the commands run since the last call."""
    gc.unfreeze()
