"""What dbt gives us: the artifacts (manifest, run results, catalog), selectors, test gating and quarantine,
the sync-key tests, the invocation record, dbt Cloud's Admin API and the exposures written back to dbt.
"""
