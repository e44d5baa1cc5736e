"""Suite-wide: the `slow` marker for end-to-end variants left out of the default run (CI's 30 minutes).

Every destination keeps its main end-to-end test in the default run, and its per-record errors and
throttling are covered there by the conformance suite over real HTTP. The variants below repeat the
whole dbt build + dbt-activate run cycle for one more behaviour each; run them with
`bash scripts/test.sh -m slow` (or everything with `-m ""`).
"""

from __future__ import annotations

import pytest

SLOW: dict[str, frozenset[str]] = {
    "tests/test_braze_e2e.py": frozenset({
        "test_append_records_an_event_per_change",
        "test_a_minor_error_rejects_one_row_and_the_next_run_sends_only_it",
        "test_throttling_waits_for_the_reset_and_every_row_arrives"}),
    "tests/test_customerio_e2e.py": frozenset({
        "test_append_sends_each_change_as_an_event",
        "test_a_refused_row_is_rejected_with_the_reason_and_the_next_run_sends_only_it"}),
    "tests/test_klaviyo_e2e.py": frozenset({
        "test_an_import_error_rejects_its_row_and_throttling_is_retried",
        "test_append_sends_an_event_per_added_or_changed_row"}),
    "tests/test_mailchimp_e2e.py": frozenset({
        "test_a_refused_member_is_rejected_with_mailchimps_reason_and_the_others_sync",
        "test_create_skips_existing_members",
        "test_throttling_and_server_errors_are_retried"}),
    "tests/test_intercom_e2e.py": frozenset({
        "test_mirror_deletes_the_contacts_of_rows_that_left_the_segment",
        "test_a_refused_row_is_rejected_with_intercoms_reason_and_retried_next_run"}),
    "tests/test_zendesk_e2e.py": frozenset({
        "test_a_failed_job_item_is_rejected_with_zendesks_details_and_retried_next_run",
        "test_email_identity_with_on_delete_fails_before_anything_is_sent"}),
    "tests/test_google_sheets_e2e.py": frozenset({
        "test_upsert_leaves_hand_made_columns_alone",
        "test_a_cell_over_50000_characters_rejects_its_row_only",
        "test_an_untrusted_key_fails_the_sync_without_printing_it"}),
    "tests/test_slack_e2e.py": frozenset({
        "test_a_digest_per_batch_and_a_throttle_is_waited_out",
        "test_modes_other_than_create_and_append_are_refused_naming_the_sync"}),
    "tests/test_http_e2e.py": frozenset({
        "test_a_refused_record_is_rejected_by_key_and_retried_next_run",
        "test_a_bad_jsonpath_is_a_config_error_naming_the_key"}),
    "tests/test_mysql_e2e.py": frozenset({"test_a_value_too_long_is_rejected_alone_and_retried_next_run"}),
    "tests/integration/test_validate.py": frozenset({
        "test_missing_manifest_is_exit_2",
        "test_mode_not_supported_by_the_destination_type",
        "test_activate_defaults_are_merged_like_run",
        "test_destination_target_checks_see_on_delete",
        "test_a_catalog_that_is_not_a_dbt_catalog_is_a_warning"}),
}


# The first end-to-end files: their first tests (sync, modes) stay in the default run, the rest are slow.
KEEP_FIRST: dict[str, int] = {
    "tests/test_webhook_e2e.py": 4,
    "tests/test_hubspot_e2e.py": 4,
    "tests/test_salesforce_e2e.py": 4,
    "tests/test_pipedrive_e2e.py": 4,
}
# dbt-redshift (through the local proxy) keeps the mode tests, the package test and the proxy's own in the
# default run; the other integration tests run on it with -m slow (their SQL is the PostgreSQL path's).
REDSHIFT_DEFAULT = frozenset({"tests/integration/test_modes.py", "tests/test_dbt_package.py",
                              "tests/test_redshift_proxy.py"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    seen: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        seen[path] = seen.get(path, 0) + 1
        slow = (getattr(item, "originalname", item.name) in SLOW.get(path, frozenset())
                or seen[path] > KEEP_FIRST.get(path, seen[path])
                or ("[redshift" in item.nodeid and path not in REDSHIFT_DEFAULT))
        if slow:
            item.add_marker(pytest.mark.slow)
