"""Opt-in pytest plugin: CPU seconds per test, for comparing test costs on a loaded machine.

Wall-clock ``--durations`` mostly measure the other tenants of a shared machine; CPU time does not.
Each test's figure is this process's user+system time plus that of the child processes it waited
for (the `dbt`/`dbt-activate` subprocesses), setup and teardown included; long-lived servers
started once per session (fakesnow, the Redshift proxy) are not in it. Works under xdist.

    python -m pytest -p tests.support.cpu_time --cpu-times=/tmp/cpu.tsv tests/e2e/test_modes.py
    sort -t$'\\t' -k1 -rn /tmp/cpu.tsv | head      # seconds <TAB> test id
"""

from __future__ import annotations

import resource
from collections.abc import Generator

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--cpu-times", metavar="PATH", help="append '<cpu seconds>\\t<test id>' per test to PATH")


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, None, None]:
    start = _cpu_seconds()
    yield
    path = item.config.getoption("--cpu-times")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{_cpu_seconds() - start:.2f}\t{item.nodeid}\n")
