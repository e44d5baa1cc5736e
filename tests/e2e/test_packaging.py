"""The wheel and the sdist as a user or a distributor gets them: built from this checkout, then opened."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

# Builds a wheel and an sdist with pip (15 CPU-s): slow, run by CI (.ci/run).
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the test venv's setuptools (pinned >=77 by the dev extra); no index needed.
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    wheel = next(out.glob("*.whl"))
    sdist = next(out.glob("*.tar.gz"))
    return wheel, sdist, done.stdout + done.stderr


def test_the_build_prints_no_setuptools_deprecation(dist: tuple[Path, Path, str]) -> None:
    log = dist[2]
    assert "Deprecat" not in log, log[-3000:]
    assert "project.license" not in log


def test_the_wheel_ships_the_license_the_type_marker_and_every_vendor_package(dist: tuple[Path, Path, str]) -> None:
    names = set(zipfile.ZipFile(dist[0]).namelist())
    assert "dbt_activate/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") or n.endswith(".dist-info/LICENSE") for n in names)
    assert "dbt_activate/schemas/activate_results.v1.json" in names
    for vendor in ("hubspot", "salesforce", "pipedrive", "klaviyo", "zendesk", "mailchimp"):
        assert f"dbt_activate/destinations/{vendor}/__init__.py" in names
        assert f"dbt_activate/testing/{vendor}/__init__.py" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(dist[0]).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text


def test_the_sdist_carries_what_its_tests_need(dist: tuple[Path, Path, str]) -> None:
    with tarfile.open(dist[1]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("LICENSE", "tests/conftest.py", "tests/factories.py", "tests/e2e/conftest.py",
                   "tests/e2e/project.py", "tests/support/redshift_proxy.py", "tests/core/test_changes.py",
                   "tests/conformance/test_conformance.py", "sample_project/dbt_project.yml",
                   "macros/fingerprint.sql", "dbt_project.yml", "scripts/test.sh", "scripts/bootstrap.sh"):
        assert needed in names, needed
    assert not any("__pycache__" in n for n in names)
