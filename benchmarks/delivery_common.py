"""Shared by the delivery benchmarks: an emulator in its own process, its counters, the machine."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any


@dataclass
class Emulator:
    """A ``python -m dbt_activate.testing`` process."""

    process: subprocess.Popen[str]
    base_url: str

    def control(self, what: str, payload: Any = None, *, timeout: float = 10.0) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.base_url}/_emulator/{what}", data=data,
                                         method="GET" if data is None else "POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.process.pid)


@contextlib.contextmanager
def emulator(vendor: str, *args: str) -> Iterator[Emulator]:
    """Start ``python -m dbt_activate.testing <vendor> --port 0 <args>`` and wait for its URL."""
    process = subprocess.Popen([sys.executable, "-m", "dbt_activate.testing", vendor, "--port", "0", *args],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http"):
            raise RuntimeError(f"the {vendor} emulator did not start (exit code {process.poll()})")
        yield Emulator(process, base_url)
    finally:
        process.terminate()
        process.wait(timeout=10)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115 - one read
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    at: float  # seconds since the poller started
    requests: int
    throttled: int
    records: int


@dataclass
class CounterPoller:
    """Reads the emulator's counters every ``interval`` seconds in a thread: a timeline of the run."""

    emu: Emulator
    interval: float = 0.05
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    started: float = 0.0

    def __enter__(self) -> CounterPoller:
        self.started = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        counts = self.emu.control("counters")
        self.samples.append(Sample(time.perf_counter() - self.started, counts["requests"], counts["throttled"],
                                   counts["records"]))

    def first(self, predicate: Any) -> Sample | None:
        return next((s for s in self.samples if predicate(s)), None)


def versions(packages: Sequence[str] = ("dbt-activate", "httpx", "httpcore", "anyio", "sniffio", "dbt-core",
                                        "dbt-duckdb")) -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in packages:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):  # noqa: SIM115 - read once
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"cpu": model or platform.processor(), "cpus": os.cpu_count(), "system": platform.platform(),
            "load_average_1m_after": round(os.getloadavg()[0], 2)}


def report(title: str, results: dict[str, Any], as_json: bool) -> None:
    results = {"benchmark": title, **results, "machine": machine(), "versions": versions()}
    if as_json:
        print(json.dumps(results, indent=2))
        return
    print(f"# {title}")
    for key, value in results.items():
        if key != "benchmark":
            print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
