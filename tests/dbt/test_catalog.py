"""`dbt-activate destinations`: what each installed type declares, relationships included."""

from __future__ import annotations

from dbt_activate.dbt.catalog import catalog_document, installed_types


def test_the_catalog_lists_the_relationships_references_may_set() -> None:
    listed = {d["type"]: d for d in catalog_document(installed_types())["destinations"]}
    assert listed["pipedrive"]["relationships"] == {"persons": {"org_id": "organizations"},
                                                    "deals": {"person_id": "persons", "org_id": "organizations"}}
    assert listed["hubspot"]["relationships"]["contacts"] == {"company": "companies"}
    assert listed["salesforce"]["relationships"]["Contact"] == {"AccountId": "Account"}
    assert listed["webhook"]["relationships"] == {}
