"""Every package of dbt_activate says what it is for (DESIGN §5: the folders are the architecture): its
``__init__.py`` opens with a docstring whose first paragraph is at least one full sentence, so that a
reader who opens a folder, or ``help()`` on it, learns its part before reading its modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "dbt_activate"
PACKAGES = sorted(init.parent for init in ROOT.rglob("__init__.py"))
# A sentence: at least five words, the last of them closed by a full stop (a parenthesis or a code
# literal may stand before it).
SENTENCE = re.compile(r"(?:\S+\s+){4,}\S*\.\Z")


def _name(package: Path) -> str:
    return ".".join(package.relative_to(ROOT.parent).parts)


def test_every_folder_of_python_modules_is_a_package() -> None:
    # A folder without __init__.py would escape the check below (and be a namespace package by accident).
    folders = {path.parent for path in ROOT.rglob("*.py") if "__pycache__" not in path.parts}
    assert sorted(_name(f) for f in folders - set(PACKAGES)) == []


def test_the_packages_include_each_vendor() -> None:
    names = {_name(p) for p in PACKAGES}
    assert {"dbt_activate.destinations.hubspot", "dbt_activate.testing.hubspot", "dbt_activate.warehouse"} <= names


@pytest.mark.parametrize("package", PACKAGES, ids=_name)
def test_the_package_docstring_says_what_it_is_for(package: Path) -> None:
    docstring = ast.get_docstring(ast.parse((package / "__init__.py").read_text(encoding="utf-8")))
    assert docstring, f"{_name(package)}: __init__.py has no module docstring saying what the package is for"
    first = " ".join(docstring.split("\n\n", 1)[0].split())
    assert SENTENCE.search(first), f"{_name(package)}: its docstring does not open with a full sentence: {first!r}"
