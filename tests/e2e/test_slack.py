"""End to end: dbt build -> dbt-activate run (subprocess) -> DuckDB -> SlackEmulator over HTTP.

"Tell sales when an account converts": a ``create`` sync posts one message per row new to the
model (or its segment), rendered from a Jinja template; later runs announce only the new rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dbt_activate.testing.slack.emulator import SlackEmulator
from tests.e2e.project import Project, customer

pytestmark = pytest.mark.in_process  # dbt and dbt-activate in this process: tests/e2e/inprocess.py

HOOK_TOKEN = "e2eXoXo0123456789abcdefSECRET"
SEGMENT = "country in ('FR', 'GB')"
TEXT = ":tada: *{{ row.full_name }}* converted ({{ row.email }}, score {{ row.score }})"


@pytest.fixture
def emu() -> Iterator[SlackEmulator]:
    with SlackEmulator(token=HOOK_TOKEN) as emulator:
        yield emulator
    assert emulator.errors == []


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path, "duckdb")


def setup(project: Project, emu: SlackEmulator, rows: list[dict[str, Any]], mode: str = "create",
          **config: Any) -> None:
    project.write(rows, [{"destination": "sales", "object": "conversions", "mode": mode,
                          "primary_key": "customer_id", "where": SEGMENT, "name": "conversions_slack",
                          "fields": ["email", "full_name", "score"]}],
                  {"sales": {"type": "slack", "webhook_url": emu.url, "text": TEXT, **config}})
    project.dbt("build")


def sync(project: Project, expect_exit: int = 0) -> dict[str, Any]:
    proc = project.activate("run")
    assert proc.returncode == expect_exit, proc.stderr[-3000:]
    assert HOOK_TOKEN not in proc.stderr + proc.stdout
    return project.result_of("conversions_slack")


def test_a_message_per_new_row_and_only_new_rows_later(project: Project, emu: SlackEmulator) -> None:
    rows = [customer(i) for i in range(1, 10)]
    rows[2]["full_name"] = "Ben & <Jerry>"  # customer 3 (FR): escaped for mrkdwn
    setup(project, emu, rows)
    first = sync(project)
    in_segment = [r for r in rows if r["country"] in ("FR", "GB")]
    assert first["counts"]["sent"] == len(in_segment) == len(emu.messages)
    assert ":tada: *Customer 1* converted (user1@example.com, score 1.5)" in emu.texts()
    assert ":tada: *Ben &amp; &lt;Jerry&gt;* converted (user3@example.com, score 4.5)" in emu.texts()

    rows[0]["full_name"] = "Renamed"  # changed: create does not announce it again
    rows.append(customer(12))  # new, FR
    project.write_rows(rows)
    project.dbt("build")
    second = sync(project)
    assert second["counts"]["sent"] == 1
    assert emu.texts()[-1].startswith(":tada: *Customer 12* converted")
    assert len(emu.messages) == len(in_segment) + 1


@pytest.mark.slow
def test_a_digest_per_batch_and_a_throttle_is_waited_out(project: Project, emu: SlackEmulator) -> None:
    rows = [customer(i) for i in range(1, 13)]
    digest = "{{ count }} new conversions:{% for r in rows %}\n• {{ r.full_name }}{% endfor %}"
    setup(project, emu, rows, text=digest, message="digest", batch_size=5)
    emu.inject("throttle")  # the first post: 429 with Retry-After
    result = sync(project)
    assert result["counts"]["sent"] == 8
    assert [t.splitlines()[0] for t in emu.texts()] == ["5 new conversions:", "3 new conversions:"]
    assert emu.counters.throttled == 1


@pytest.mark.slow
def test_modes_other_than_create_and_append_are_refused_naming_the_sync(project: Project,
                                                                        emu: SlackEmulator) -> None:
    setup(project, emu, [customer(1)], mode="mirror")
    proc = project.activate("run")
    assert proc.returncode == 2, proc.stderr
    # The spec check refuses it before the destination is opened, at the block's YAML path.
    assert "models/schema.yml: customers.config.meta.activate[0].mode" in proc.stderr
    assert "does not support mode 'mirror' (supported: append, create)" in proc.stderr
    assert emu.messages == []
