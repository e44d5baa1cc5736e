"""dbt's parse of an empty project, made once per test process and copied into new projects.

A first ``dbt build`` in a new project spends most of its CPU parsing the macros of dbt and the
adapter (about a thousand files, the same for every project). dbt's partial parsing keeps that parse
in ``target/partial_parse.msgpack`` and reuses it when the dbt version, ``dbt_project.yml``, the
profile's connection settings, the command-line vars and the env vars the project reads are
unchanged; it then parses only the files added or changed since. Projects whose ``dbt_project.yml``
and ``profiles.yml`` are the same bytes (every DuckDB project of tests/e2e/project.py: its database
path is relative) can therefore start from the parse of an empty project with those two files. dbt
checks the saved parse itself and parses everything when it does not apply, so a wrong guess here
costs time, never correctness; ``DBT_ACTIVATE_TESTS_FULL_PARSE=1`` turns the template off.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

Run = Callable[[Path, list[str]], "subprocess.CompletedProcess[str]"]

_templates: dict[str, Path | None] = {}
_root: list[Path] = []


def template(project_file: Path, profiles_file: Path, run: Run) -> Path | None:
    """The saved parse of an empty project with these two files (made on first use with ``run(cwd,
    dbt args)``), or None when dbt could not parse it."""
    project_text, profiles_text = project_file.read_bytes(), profiles_file.read_bytes()
    key = hashlib.sha256(project_text + b"\0" + profiles_text).hexdigest()[:16]
    if key not in _templates:
        _templates[key] = _parse_empty_project(key, project_text, profiles_text, run)
    return _templates[key]


def _parse_empty_project(key: str, project_text: bytes, profiles_text: bytes, run: Run) -> Path | None:
    if not _root:
        _root.append(Path(tempfile.mkdtemp(prefix="dbt-parse-templates-")))
        atexit.register(shutil.rmtree, _root[0], True)
    root = _root[0] / key
    (root / "models").mkdir(parents=True)
    (root / "dbt_project.yml").write_bytes(project_text)
    (root / "profiles.yml").write_bytes(profiles_text)
    proc = run(root, ["parse", "--project-dir", str(root), "--profiles-dir", str(root)])
    saved = root / "target" / "partial_parse.msgpack"
    return saved if proc.returncode == 0 and saved.exists() else None
