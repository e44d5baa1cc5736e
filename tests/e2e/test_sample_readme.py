"""The sample project's README, run as written (issue 19): its commands in order, in a fresh copy,
each exiting 0, with no server started by hand (`dbt-activate emulators start` starts them)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.project import BIN
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "sample_project" / "README.md"


def _commands() -> str:
    block = re.search(r"```bash\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert block is not None, "the sample README has no bash block"
    return block.group(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    return not cmdline.exists() or b"dbt_activate.testing" in cmdline.read_bytes()


@pytest.mark.slow  # a dozen subprocesses; CI runs it (.ci/run), as the quickstart test
def test_the_sample_readme_commands_work_as_written(tmp_path: Path) -> None:
    commands = _commands()
    assert "emulators start" in commands and "emulators stop" in commands
    shutil.copytree(ROOT / "sample_project", tmp_path / "sample_project",
                    ignore=shutil.ignore_patterns("target", "dbt_packages", "*.duckdb", "activate_output", "logs"))
    webhook, hubspot, google_ads = free_port(), free_port(), free_port()  # not 8765-8767: other runs may hold them
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
           "NO_COLOR": "1", "DBT_ACTIVATE_PACKAGE_DIR": str(ROOT),  # what `local: ..` is in a clone
           "CRM_WEBHOOK_URL": f"http://127.0.0.1:{webhook}/hooks/deals",
           "HUBSPOT_BASE_URL": f"http://127.0.0.1:{hubspot}",
           "GOOGLE_ADS_BASE_URL": f"http://127.0.0.1:{google_ads}"}
    env.pop("HUBSPOT_TOKEN", None)
    script = "set -euo pipefail\n" + commands.replace("\ncurl ", "\necho '== curl'; curl ")
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr

    started = [line for line in proc.stdout.splitlines() if " emulator at http://127.0.0.1:" in line]
    assert {line.split(":")[0] for line in started} == {"crm_hubspot", "crm_webhook", "google_ads"}, proc.stdout
    contacts, _ = json.JSONDecoder().raw_decode(proc.stdout.split("== curl\n", 1)[1])
    assert contacts and all("email" in c["properties"] for c in contacts)  # the GB segment reached "HubSpot"
    assert "Stopped 3 emulators" in proc.stdout
    pids = [int(re.search(r"pid (\d+)", line).group(1)) for line in started]  # type: ignore[union-attr]
    assert not any(_alive(pid) for pid in pids), "emulators left running"
    output = tmp_path / "sample_project" / "activate_output"
    assert any(output.rglob("*.jsonl")) and any(output.rglob("*.csv"))
