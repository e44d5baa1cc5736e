"""`dbt-activate emulators start|stop`: the bundled emulators a destinations.yml points at, in the background.

For trying a project (the sample's README) without a vendor account and without starting servers by
hand. ``start`` reads destinations.yml (``env_var()`` rendered, defaults included) and, for every
destination whose type has a bundled emulator (``dbt_activate/testing/<type>``) and whose ``base_url``
(``url`` for ``webhook``) is on this machine with an explicit port, starts ``python -m
dbt_activate.testing <type> --port <port>`` detached from the terminal, waits until it listens, and
records it in ``<target>/activate/emulators.json``. ``stop`` ends the recorded processes (SIGTERM, by
pid, only those still running the emulator module) and forgets them. A destination on a remote host
is left alone: ``start`` never stands in for a real account. A project that needs custom properties
or fields in an emulator (a unique HubSpot deal property to upsert by) gives them in
``emulators/<destination>.json`` beside destinations.yml, passed as ``--schema`` (``testing/registry.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from dbt_activate.errors import ConfigError
from dbt_activate.project import ProjectPaths, load_destinations

# Destination type -> emulator name, where they differ (`python -m dbt_activate.testing --help`).
_EMULATOR_OF = {"http": "rest"}
_URL_KEYS = ("base_url", "url")
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_MODULE = "dbt_activate.testing"
_START_SECONDS = 30.0  # an emulator imports in about a second; a loaded CI machine may need more


@dataclass(frozen=True)
class RunningEmulator:
    destination: str
    emulator: str
    url: str  # base URL the emulator printed once listening
    pid: int
    log: str  # its stderr

    @property
    def records_url(self) -> str:
        return f"{self.url}/_emulator/records/<object>"


@dataclass(frozen=True)
class Wanted:
    destination: str
    emulator: str
    host: str
    port: int
    schema: str | None = None  # emulators/<destination>.json: the emulator's custom schema


def state_file(paths: ProjectPaths) -> Path:
    return paths.target_path / "activate" / "emulators.json"


def _installed() -> frozenset[str]:
    from dbt_activate.testing.registry import EMULATORS  # imported only by this command

    return frozenset(EMULATORS)


def wanted(paths: ProjectPaths) -> tuple[list[Wanted], list[str]]:
    """The emulators destinations.yml points at, and a note for each destination left alone."""
    destinations = load_destinations(paths.destinations_file)
    installed = _installed()
    found: list[Wanted] = []
    notes: list[str] = []
    for name in destinations.names():
        kind = str(destinations.raw[name].get("type"))
        emulator = _EMULATOR_OF.get(kind, kind)
        if emulator not in installed:
            continue  # files, databases, plugins: nothing to emulate
        config = destinations.config(name, used_at=f"{destinations.path}: {name}")
        url = next((str(config[k]) for k in _URL_KEYS if config.get(k)), None)
        parts = urlsplit(url) if url else None
        if parts is None or parts.hostname not in _LOCAL_HOSTS or parts.port is None:
            notes.append(f"{name} ({kind}): {url or 'its default URL'} is not a port on this machine; left alone")
            continue
        schema = paths.destinations_file.parent / "emulators" / f"{name}.json"
        found.append(Wanted(name, emulator, parts.hostname, parts.port, str(schema) if schema.is_file() else None))
    return found, notes


def _read(path: Path) -> list[RunningEmulator]:
    if not path.exists():
        return []
    try:
        return [RunningEmulator(**entry) for entry in json.loads(path.read_text(encoding="utf-8"))]
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"cannot be read ({exc}); delete it and stop the emulators by hand",
                          location=str(path)) from exc


def _write(path: Path, running: list[RunningEmulator]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(r) for r in running], indent=2), encoding="utf-8")


def _alive(pid: int) -> bool:
    """The process runs, and (where /proc tells) it is an emulator, not a process that reused the pid."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: never ours to stop
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():
        try:
            return _MODULE.encode() in cmdline.read_bytes()
        except OSError:
            return False
    return True


def start(paths: ProjectPaths) -> tuple[list[RunningEmulator], list[str]]:
    """Start the emulators destinations.yml points at (those already running are kept)."""
    path = state_file(paths)
    running = [r for r in _read(path) if _alive(r.pid)]
    targets, notes = wanted(paths)
    logs = path.parent / "emulators"
    logs.mkdir(parents=True, exist_ok=True)
    for want in targets:
        if any(r.destination == want.destination for r in running):
            continue
        running.append(_launch(want, logs))
        _write(path, running)
    _write(path, running)
    return running, notes


def _launch(want: Wanted, logs: Path) -> RunningEmulator:
    out, err = logs / f"{want.destination}.url", logs / f"{want.destination}.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", _MODULE, want.emulator, "--host", want.host, "--port", str(want.port),
             *(["--schema", want.schema] if want.schema else [])],
            stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr,
            start_new_session=True,  # not in the terminal's process group: Ctrl-C there leaves it running
        )
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        url = out.read_text(encoding="utf-8").strip()
        if url:
            return RunningEmulator(want.destination, want.emulator, url.splitlines()[0], proc.pid, str(err))
        if proc.poll() is not None:
            detail = err.read_text(encoding="utf-8").strip().splitlines()[-1:] or ["no output"]
            raise ConfigError(f"the {want.emulator} emulator for destination {want.destination!r} did not start "
                              f"on {want.host}:{want.port} ({detail[0]}); is the port taken? "
                              "`dbt-activate emulators stop` ends the ones this command started")
        time.sleep(0.05)
    proc.terminate()
    raise ConfigError(f"the {want.emulator} emulator for destination {want.destination!r} did not listen within "
                      f"{_START_SECONDS:g} s; see {err}")


def stop(paths: ProjectPaths) -> list[RunningEmulator]:
    """Stop the emulators ``start`` recorded; returns those that were still running."""
    path = state_file(paths)
    stopped = []
    for emulator in _read(path):
        if not _alive(emulator.pid):
            continue
        os.kill(emulator.pid, signal.SIGTERM)
        stopped.append(emulator)
    deadline = time.monotonic() + 10
    while any(_alive(e.pid) for e in stopped) and time.monotonic() < deadline:
        time.sleep(0.05)
    path.unlink(missing_ok=True)
    return stopped
