"""activate_results.json and `--output json` follow the JSON Schema shipped in the package."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]  # no stubs installed; only tests use it

from dbt_activate import schemas
from dbt_activate.core.outcomes import InvocationResult, results_document
from tests.engine.test_console import sample_result
from tests.support.schemas import errors


def test_shipped_schemas_are_valid_json_schemas() -> None:
    for name in (schemas.RESULTS, schemas.LS):
        schema = schemas.load(name)
        assert jsonschema.validators.validator_for(schema) is jsonschema.Draft202012Validator, name
        jsonschema.Draft202012Validator.check_schema(schema)  # raises SchemaError on an invalid schema


def test_results_document_of_success_rejections_failure_and_skip_is_valid() -> None:
    document = json.loads(json.dumps(results_document(sample_result()), default=str))
    assert errors(document, schemas.RESULTS) == []
    plan = results_document(InvocationResult("r1", "plan", "nothing was rebuilt", []))
    assert errors(json.loads(json.dumps(plan, default=str)), schemas.RESULTS) == []


def test_schema_catches_a_document_that_breaks_the_contract() -> None:
    document = json.loads(json.dumps(results_document(sample_result()), default=str))
    broken = copy.deepcopy(document)
    broken["results"][0]["status"] = "ok"
    del broken["results"][1]["counts"]["sent"]
    broken["metadata"]["schema_version"] = "activate_results/v2"
    assert sorted(errors(broken, schemas.RESULTS)) == [
        "metadata/schema_version: 'activate_results/v1' was expected",
        "results/0/status: 'ok' is not one of ['success', 'partial', 'error', 'skipped', 'planned']",
        "results/1/counts: 'sent' is a required property",
    ]


def test_every_result_key_is_documented_in_the_schema() -> None:
    document = results_document(sample_result())
    schema = schemas.load(schemas.RESULTS)
    sync = schema["$defs"]["sync_result"]["properties"]
    assert set(document) == set(schema["properties"])
    assert set(document["metadata"]) == set(schema["properties"]["metadata"]["properties"])
    assert set(document["results"][0]) == set(sync)
    assert set(document["results"][0]["counts"]) == set(sync["counts"]["properties"])


def test_readme_documents_the_schema_file() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "dbt_activate/schemas/activate_results.v1.json" in readme
