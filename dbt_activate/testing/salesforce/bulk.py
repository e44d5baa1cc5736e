"""Bulk API 2.0 ingest jobs: create, upload CSV, UploadComplete, poll, results as CSV.

``Open -> UploadComplete -> InProgress -> JobComplete | Failed | Aborted``. Records are applied when
the job is closed; polls report ``InProgress`` for ``processing_seconds`` after that. CSV conventions
of Bulk 2.0: the first row is the header (field names, case-insensitive), an empty value leaves the
field unchanged, ``#N/A`` sets it to null. A header naming an unknown field fails the whole job.
One upload per job: a second ``PUT`` is refused (the job data must be sent once, then closed).
Row errors in ``failedResults`` read ``CODE:message:fields --``.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dbt_activate.testing.faults import Fault
from dbt_activate.testing.messages import ApiError, Request, Response
from dbt_activate.testing.salesforce.schema import SalesforceField, SObject, normalize_id, parse, record_id
from dbt_activate.testing.salesforce.store import RecordError, error, now_iso

if TYPE_CHECKING:
    from dbt_activate.testing.salesforce.emulator import SalesforceEmulator

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
_CSV = "text/csv;charset=UTF-8"


@dataclass
class _Job:
    id: str
    sobject: SObject
    operation: str
    external_id: str | None
    delimiter: str
    line_ending: str
    version: str
    created: str
    state: str = "Open"
    data: str | None = None
    fault: Fault | None = None
    closed_at: float = 0.0
    error_message: str = ""
    header: list[str] = field(default_factory=list)
    successful: list[list[str]] = field(default_factory=list)
    failed: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)


class SalesforceBulk:
    def __init__(self, emulator: SalesforceEmulator, processing_seconds: float) -> None:
        self.emu = emulator
        self.processing_seconds = processing_seconds
        self.jobs: dict[str, _Job] = {}
        self._numbers = 0

    def register(self, prefix: str) -> None:
        jobs, job = prefix + r"/jobs/ingest/?", prefix + r"/jobs/ingest/(?P<job>\w+)"
        self.emu.route("POST", jobs, self.create)
        self.emu.route("GET", jobs, self.list_jobs)
        self.emu.route("PUT", job + r"/batches/?", self.upload, writes=True)
        self.emu.route("PATCH", job + r"/?", self.change_state)
        self.emu.route("GET", job + r"/?", self.info)
        self.emu.route("DELETE", job + r"/?", self.delete)
        self.emu.route("GET", job + r"/(?P<kind>successfulResults|failedResults|unprocessedrecords)/?", self.results)

    def create(self, req: Request) -> Response:
        body = req.json_object()
        sobject = self.emu.sobject(str(body.get("object") or ""))
        operation, external = body.get("operation"), body.get("externalIdFieldName")
        if operation not in OPERATIONS:
            raise ApiError(400, f"InvalidJob : Invalid operation: {operation}", "INVALIDJOB")
        if body.get("contentType", "CSV") != "CSV" or body.get("columnDelimiter", "COMMA") not in DELIMITERS:
            raise ApiError(400, "InvalidJob : contentType must be CSV and columnDelimiter one of "
                           + ", ".join(DELIMITERS), "INVALIDJOB")
        key = sobject.field(str(external or ""))
        if operation == "upsert" and (key is None or not key.external_id):
            raise ApiError(400, f"InvalidJob : External ID was blank or is not an external id field for "
                           f"{sobject.name}: {external}", "INVALIDJOB")
        with self.emu.lock:
            self._numbers += 1
            job = _Job(record_id("750", self._numbers), sobject, operation, key.name if key else None,
                       DELIMITERS[body.get("columnDelimiter", "COMMA")], body.get("lineEnding", "LF"),
                       req.params["version"], now_iso())
            self.jobs[job.id] = job
        return Response.json(self._info(job, brief=True))

    def list_jobs(self, req: Request) -> Response:
        with self.emu.lock:
            records = [self._info(job, brief=True) for job in self.jobs.values()]
        return Response.json({"done": True, "records": records, "nextRecordsUrl": None})

    def upload(self, req: Request) -> Response:
        with self.emu.lock:
            job = self._job(req)
            if job.data is not None:
                raise ApiError(409, f"Found multiple contents for job: <{job.id}>, please 'Close' / 'Abort' / "
                               "'Delete' the current Job then create a new Job and make sure you only do 'PUT' once "
                               "on a given Job.", "INVALIDJOBSTATE")
            if job.state != "Open":
                raise ApiError(409, f"InvalidJobState : Job {job.id} is not Open", "INVALIDJOBSTATE")
            job.data, job.fault = req.text(), req.fault
        self.emu.count_records(max(sum(1 for _ in csv.reader(io.StringIO(job.data), delimiter=job.delimiter)) - 1, 0))
        return Response.empty(201)

    def change_state(self, req: Request) -> Response:
        state = req.json_object().get("state")
        with self.emu.lock:
            job = self._job(req)
            if state == "UploadComplete" and job.state == "Open":
                job.state, job.closed_at = "UploadComplete", time.monotonic()
                self._process(job)
                info = self._info(job, brief=True)
                info["state"] = "UploadComplete"
                return Response.json(info)
            if state == "Aborted" and job.state in ("Open", "UploadComplete"):
                job.state = "Aborted"
                if not (job.successful or job.failed):
                    job.header, job.unprocessed = self._rows(job)
                return Response.json(self._info(job, brief=True))
        raise ApiError(400, f"InvalidJobState : Can not change state of job {job.id} from {job.state} to {state}",
                       "INVALIDJOBSTATE")

    def info(self, req: Request) -> Response:
        with self.emu.lock:
            return Response.json(self._info(self._job(req)))

    def delete(self, req: Request) -> Response:
        with self.emu.lock:
            job = self._job(req)
            if job.state == "Open":
                raise ApiError(400, "InvalidJobState : Can not delete an Open job; close or abort it first",
                               "INVALIDJOBSTATE")
            del self.jobs[job.id]
        return Response.empty(204)

    def results(self, req: Request) -> Response:
        kind = req.params["kind"]
        with self.emu.lock:
            job = self._job(req)
            finished = self._state(job) in ("JobComplete", "Failed", "Aborted")
            if kind == "successfulResults":
                head, rows = ["sf__Id", "sf__Created", *job.header], job.successful if finished else []
            elif kind == "failedResults":
                head, rows = ["sf__Id", "sf__Error", *job.header], job.failed if finished else []
            else:
                head, rows = job.header, job.unprocessed
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(head)
        writer.writerows(rows)
        return Response.text(out.getvalue(), content_type=_CSV)

    # -- processing --------------------------------------------------------------------------------

    def _job(self, req: Request) -> _Job:
        job = self.jobs.get(normalize_id(req.params["job"]) or req.params["job"])
        if job is None:
            raise ApiError(404, f"The requested resource does not exist: job {req.params['job']}", "NOT_FOUND")
        return job

    def _rows(self, job: _Job) -> tuple[list[str], list[list[str]]]:
        rows = list(csv.reader(io.StringIO(job.data or ""), delimiter=job.delimiter))
        return (rows[0], rows[1:]) if rows else ([], [])

    def _process(self, job: _Job) -> None:
        job.header, rows = self._rows(job)
        fields: list[SalesforceField] = []
        for name in job.header:
            found = job.sobject.field(name.strip())
            if found is None:
                job.state, job.error_message, job.unprocessed = "Failed", f"InvalidBatch : Field name not found : " \
                    f"{name}", rows
                return
            fields.append(found)
        for index, row in enumerate(rows):
            try:
                if job.fault is not None and job.fault.fails(index, len(rows)):
                    raise RecordError([error("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this "
                                             "record or 1 records (injected fault)")])
                rid, created = self._apply(job, fields, row)
                job.successful.append([rid, "true" if created else "false", *row])
            except RecordError as refused:
                first = refused.errors[0]
                job.failed.append(["", f"{first['statusCode']}:{first['message']}:{','.join(first['fields'])} --",
                                   *row])
        job.state = "JobComplete"

    def _apply(self, job: _Job, fields: list[SalesforceField], row: list[str]) -> tuple[str, bool]:
        values: dict[str, Any] = {}
        record: str | None = None
        for f, raw in zip(fields, row, strict=False):  # short rows: the rest unchanged
            if f.name == "Id":
                record = normalize_id(raw) if raw else None
            elif raw != "":  # an empty value leaves the field as it is
                try:
                    values[f.name] = None if raw == "#N/A" else parse(f, raw, from_csv=True)
                except ValueError:
                    raise RecordError([error("INVALID_FIELD", f"Failed to deserialize field {f.name}: '{raw}' is not "
                                             f"a valid value for the type {f.type}", [f.name])]) from None
        store, sobject = self.emu.store, job.sobject
        if job.operation in ("delete", "hardDelete", "update") and record is None:
            raise RecordError([error("MISSING_ARGUMENT", "Id not specified in an update or delete call", ["Id"])])
        if job.operation in ("delete", "hardDelete"):
            assert record is not None
            if store.of(sobject).get(record) is None:
                raise RecordError([error("ENTITY_IS_DELETED", "entity is deleted")])
            store.delete(sobject, record)
            return record, False
        if job.operation == "upsert":
            assert job.external_id is not None
            key = values.get(job.external_id)
            if key in (None, ""):
                raise RecordError([error("MISSING_ARGUMENT", f"{job.external_id} not specified", [job.external_id])])
            record = store.find_by(sobject, job.external_id, key)
        elif job.operation == "insert" and record is not None:
            raise RecordError([error("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])])
        return store.save(sobject, values, record, now_iso()), record is None

    def _state(self, job: _Job) -> str:
        if job.state in ("JobComplete", "Failed") and time.monotonic() - job.closed_at < self.processing_seconds:
            return "InProgress"
        return job.state

    def _info(self, job: _Job, brief: bool = False) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.sobject.name,
            "createdById": "0058d0000000001AAA", "createdDate": job.created, "systemModstamp": job.created,
            "state": self._state(job), "concurrencyMode": "Parallel", "contentType": "CSV",
            "apiVersion": float(job.version), "jobType": "V2Ingest", "lineEnding": job.line_ending,
            "columnDelimiter": next(k for k, v in DELIMITERS.items() if v == job.delimiter),
            "contentUrl": f"services/data/v{job.version}/jobs/ingest/{job.id}/batches",
        }
        if job.external_id:
            info["externalIdFieldName"] = job.external_id
        if not brief:
            done = info["state"] in ("JobComplete", "Failed", "Aborted")
            info.update(numberRecordsProcessed=len(job.successful) + len(job.failed) if done else 0,
                        numberRecordsFailed=len(job.failed) if done else 0, retries=0, totalProcessingTime=0,
                        apiActiveProcessingTime=0, apexProcessingTime=0)
            if job.error_message and done:
                info["errorMessage"] = job.error_message
        return info
