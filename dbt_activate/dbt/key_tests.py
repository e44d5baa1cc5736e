"""Which syncs' primary keys no dbt test guards, and the test to add (pure: reads the manifest).

A sync's key is guarded when its model has the package's ``activate_primary_key`` test over exactly
those columns, or, for a one-column key, dbt's ``unique`` and ``not_null`` on that column. Otherwise
dbt-activate suggests the YAML to add, so a bad key fails `dbt build` instead of rows being rejected.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbt_activate.dbt.artifacts import Manifest, TestNode
from dbt_activate.spec import SyncSpec

PACKAGE_TEST = "activate_primary_key"


@dataclass(frozen=True)
class KeySuggestion:
    model: str
    yaml_file: str
    columns: tuple[str, ...]
    syncs: tuple[str, ...]

    @property
    def yaml(self) -> str:
        """The `data_tests` entry to add under the model in its YAML file."""
        return (f"- dbt_activate.{PACKAGE_TEST}:\n    arguments:\n      columns: [{', '.join(self.columns)}]")

    @property
    def message(self) -> str:
        return (f"{self.yaml_file}: model {self.model}: no test guards the primary key "
                f"({', '.join(self.columns)}) of sync(s) {', '.join(self.syncs)}; add under `data_tests:`\n"
                f"{self.yaml}")


def _guarded_keys(tests: Iterable[TestNode]) -> set[tuple[str, ...]]:
    keys: set[tuple[str, ...]] = set()
    single: dict[str, set[str]] = {}
    for test in tests:
        column = test.test_kwargs.get("column_name") or test.column_name
        if test.test_name == PACKAGE_TEST:
            columns = test.test_kwargs.get("columns") or column
            keys.add(tuple(c.lower() for c in ([columns] if isinstance(columns, str) else columns or [])))
        elif test.test_name in ("unique", "not_null") and isinstance(column, str):
            single.setdefault(column.lower(), set()).add(test.test_name)
    keys.update((c,) for c, names in single.items() if names == {"unique", "not_null"})
    return keys


def missing_key_tests(manifest: Manifest, specs: Sequence[SyncSpec]) -> list[KeySuggestion]:
    """One suggestion per model and key that no test guards, naming the syncs that use that key."""
    by_model: dict[str, list[TestNode]] = {}
    for test in manifest.tests.values():
        for model_id in test.tested_models:
            by_model.setdefault(model_id, []).append(test)
    wanted: dict[tuple[str, tuple[str, ...]], list[SyncSpec]] = {}
    for spec in specs:
        wanted.setdefault((spec.model_id, spec.primary_key), []).append(spec)
    suggestions = []
    for (model_id, columns), users in sorted(wanted.items()):
        if tuple(c.lower() for c in columns) in _guarded_keys(by_model.get(model_id, ())):
            continue
        model = manifest.models[model_id]
        suggestions.append(KeySuggestion(model.name, model.yaml_file, columns, tuple(s.name for s in users)))
    return suggestions
