"""Bulk API 2.0 path of SalesforceDestination with httpx.MockTransport: the switch, the job, its results."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from dbt_activate.core.types import Batch, BatchResult, Operation, Record
from dbt_activate.destinations.salesforce.destination import SalesforceDestination
from dbt_activate.errors import DestinationError, RetryableDestinationError
from tests.destinations.salesforce.test_unit import API, INSTANCE, Org, body, destination, ok, rec, send, target

JOBS = f"{API}/jobs/ingest"


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


class BulkOrg:
    """Scripted Bulk API: each job's final info, failed and unprocessed rows come from ``outcomes``,
    decided from the uploaded CSV (so a test can fail rows by content)."""

    def __init__(self, outcomes: list[dict[str, Any]], polls_in_progress: int = 1) -> None:
        self.outcomes = outcomes
        self.polls_in_progress = polls_in_progress
        self.jobs: dict[str, dict[str, Any]] = {}
        self.uploads: dict[str, str] = {}
        self.poll_failures: list[httpx.Response] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path, method = request.url.path, request.method
        if path.startswith(f"{API}/composite/sobjects"):
            return httpx.Response(200, json=ok(len(body(request)["records"])))
        if (method, path) == ("POST", JOBS):
            job_id = f"750J{len(self.jobs) + 1}"
            self.jobs[job_id] = {"create": body(request), "state": "Open", "polls": 0}
            return httpx.Response(200, json={"id": job_id, "state": "Open", "object": "Contact"})
        job_id = path.removeprefix(JOBS + "/").split("/")[0]
        job = self.jobs[job_id]
        if method == "PUT":
            assert request.headers["Content-Type"] == "text/csv"
            self.uploads[job_id] = request.content.decode()
            return httpx.Response(201)
        if method == "PATCH":
            job["state"] = body(request)["state"]
            return httpx.Response(200, json={"id": job_id, "state": job["state"]})
        header, *rows = list(csv.reader(io.StringIO(self.uploads[job_id])))
        outcome = self.outcomes[len(self.jobs) - 1]
        failed = [["", outcome["failed"][r[0]], *r] for r in rows if r[0] in outcome.get("failed", {})]
        unprocessed = [r for r in rows if r[0] in outcome.get("unprocessed", ())]
        if path.endswith("/failedResults/"):
            return httpx.Response(200, text=_csv(["sf__Id", "sf__Error", *header], failed))
        if path.endswith("/successfulResults/"):
            written = [[f"003J{r[0]}", "true", *r] for r in rows if r not in unprocessed and r[0] not in
                       outcome.get("failed", {})]
            return httpx.Response(200, text=_csv(["sf__Id", "sf__Created", *header], written))
        if path.endswith("/unprocessedrecords/"):
            return httpx.Response(200, text=_csv(header, unprocessed))
        if self.poll_failures:
            return self.poll_failures.pop()
        job["polls"] += 1
        state = "InProgress" if job["polls"] <= self.polls_in_progress else outcome.get("state", "JobComplete")
        processed = outcome.get("processed", len(rows) - len(unprocessed))
        return httpx.Response(200, json={"id": job_id, "state": state, "numberRecordsProcessed": processed,
                                         "numberRecordsFailed": len(failed),
                                         **({"errorMessage": outcome["error"]} if "error" in outcome else {})})


def _batch(*keys: int, **values: Any) -> Batch:
    return Batch(Operation.UPSERT, [rec(str(k), LastName=f"L{k}", **values) for k in keys])


def test_the_first_rows_go_by_collections_and_the_rest_by_bulk_jobs() -> None:
    fake = BulkOrg([{"failed": {"E4": "STRING_TOO_LONG:Last Name: data value too large:LastName --"}}],
                   polls_in_progress=2)
    org = Org(fake)
    dest = destination(org, bulk_threshold=2)
    results = send(dest, target(), _batch(1, 2), _batch(3, 4, 5, Score__c=None))
    assert results == [BatchResult(), BatchResult(rejected={
        "4": "STRING_TOO_LONG: Last Name: data value too large (fields: LastName)"})]
    assert len(org.sent("PATCH", "/composite/sobjects")) == 1  # the first two rows
    [(job_id, job)] = fake.jobs.items()
    assert job["create"] == {"object": "Contact", "operation": "upsert", "externalIdFieldName": "Ext__c",
                             "contentType": "CSV", "lineEnding": "LF", "columnDelimiter": "COMMA"}
    assert fake.uploads[job_id] == "Ext__c,LastName\nE3,L3\nE4,L4\nE5,L5\n"  # nulls kept: not sent
    assert job["state"] == "UploadComplete"
    assert job["polls"] == 3  # polled until JobComplete
    requests = [f"{r.method} {r.url.path.removeprefix(JOBS)}" for r in org.sent(contains="/jobs/")]
    assert requests == ["POST ", f"PUT /{job_id}/batches", f"PATCH /{job_id}", f"GET /{job_id}", f"GET /{job_id}",
                        f"GET /{job_id}", f"GET /{job_id}/failedResults/", f"GET /{job_id}/successfulResults/",
                        f"GET /{job_id}/unprocessedrecords/"]
    assert results[1].ids == {"3": "003JE3", "5": "003JE5"}  # sf__Id of the rows written, for references


def test_polling_backs_off_between_checks() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    fake = BulkOrg([{}], polls_in_progress=6)
    dest = SalesforceDestination("sf", {"type": "salesforce", "instance_url": INSTANCE, "access_token": "tok-0",
                                        "bulk_threshold": 1}, transport=httpx.MockTransport(Org(fake)), sleep=sleep)
    [result] = send(dest, target(), _batch(1, 2))
    assert result == BatchResult()
    assert slept == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # doubling, at most 10 s


def test_unprocessed_rows_are_retried_in_a_new_job_with_only_those_rows() -> None:
    fake = BulkOrg([{"unprocessed": ["E2"], "state": "Aborted"}, {}])
    org = Org(fake)
    [result] = send(destination(org, bulk_threshold=1), target(), _batch(1, 2, 3))
    assert result == BatchResult()
    assert list(fake.uploads.values()) == ["Ext__c,LastName\nE1,L1\nE2,L2\nE3,L3\n", "Ext__c,LastName\nE2,L2\n"]


def test_unprocessed_rows_that_persist_raise_a_retryable_error() -> None:
    fake = BulkOrg([{"unprocessed": ["E1"], "state": "Aborted"}] * 5)
    with pytest.raises(RetryableDestinationError, match="1 rows unprocessed; they are sent again"):
        send(destination(Org(fake), bulk_threshold=1), target(), _batch(1, 2))
    assert len(fake.jobs) == 4  # FAST allows 4 attempts


def test_a_failed_job_fails_the_batch_and_keeps_its_rows() -> None:
    fake = BulkOrg([{"state": "Failed", "error": "InvalidBatch : Field name not found : Foo__c",
                     "unprocessed": ["E1", "E2"], "processed": 0}])
    with pytest.raises(DestinationError, match="ended Failed: InvalidBatch : Field name not found") as caught:
        send(destination(Org(fake), bulk_threshold=1), target(), _batch(1, 2))
    assert not caught.value.retryable
    assert len(fake.jobs) == 1


def test_a_poll_that_fails_resumes_the_same_job_on_retry() -> None:
    fake = BulkOrg([{}])
    fake.poll_failures = [httpx.Response(503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])]
    [result] = send(destination(Org(fake), bulk_threshold=1), target(), _batch(1, 2))
    assert result == BatchResult()
    assert len(fake.jobs) == 1  # not uploaded twice


def test_results_that_do_not_account_for_every_row_are_not_acknowledged() -> None:
    fake = BulkOrg([{"processed": 1}])
    with pytest.raises(DestinationError, match="do not account for every row"):
        send(destination(Org(fake), bulk_threshold=1), target(), _batch(1, 2, 3))


def test_rows_that_cannot_be_written_are_rejected_before_the_upload() -> None:
    fake = BulkOrg([{}])
    [result] = send(destination(Org(fake), bulk_threshold=1), target(),
                    Batch(Operation.UPSERT, [rec("1", LastName="A"), rec("2", LastName="B", Score__c=float("inf")),
                                             rec("3", LastName="")]))
    assert set(result.rejected) == {"2"}
    [upload] = fake.uploads.values()
    assert upload == "Ext__c,LastName\nE1,A\nE3,\n"  # "" is NULL, kept out like any NULL


def test_failed_rows_map_back_by_external_id_whatever_its_case() -> None:
    fake = BulkOrg([{"failed": {"e1": "INVALID_EMAIL_ADDRESS:Email: invalid email address: x:Email --"}}])
    [result] = send(destination(Org(fake), bulk_threshold=1), target(),
                    Batch(Operation.UPSERT, [rec("1", Ext__c="e1", LastName="A"), rec("2", LastName="B")]))
    assert result.rejected == {"1": "INVALID_EMAIL_ADDRESS: Email: invalid email address: x (fields: Email)"}


def test_numeric_external_ids_map_back_by_the_uploaded_text() -> None:
    fake = BulkOrg([{"failed": {"42.5": "INVALID_FIELD:bad:LastName --"}}])
    sync = target(fields=("Num__c", "LastName"), identity=("Num__c",))
    batch = Batch(Operation.UPSERT, [Record("1", {"Num__c": 42.5, "LastName": "A"}),
                                     Record("2", {"Num__c": 7, "LastName": "B"})])
    [result] = send(destination(Org(fake), bulk_threshold=1), sync, batch)
    assert result.rejected == {"1": "INVALID_FIELD: bad (fields: LastName)"}
    assert list(fake.uploads.values()) == ["Num__c,LastName\n42.5,A\n7,B\n"]
