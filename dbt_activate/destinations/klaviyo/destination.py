"""``klaviyo``: profiles through Klaviyo's bulk import jobs.

Configuration (``destinations.yml``)::

    klaviyo:
      type: klaviyo
      api_key: "{{ env_var('KLAVIYO_PRIVATE_KEY') }}"   # private key with profiles:write (required)
      base_url: https://a.klaviyo.com                    # default; an emulator's URL in tests
      revision: "2026-07-15"                             # the API revision sent in the `revision` header
      list_id: Y6nRLr                                    # optional: also add the profiles to this list
      job_poll_interval: 2                               # seconds between polls of an import job
      job_timeout: 900                                   # give up waiting for a job after this long
      batch_size: 10000                                  # 1-10,000 profiles per job (default: the maximum)
      nulls: keep                                        # keep (default) | clear

A sync's ``object`` is ``profiles`` with mode ``upsert`` (``on_delete: clear`` empties the mapped
fields), or a metric name with mode ``append``, which sends each added or changed row as an event
(``klaviyo_events``: one ``POST /api/event-bulk-create-jobs`` per 1,000 events, acknowledged on 202).
Its identity (``match``, else the primary key) is one or more of Klaviyo's identifiers ``email``,
``phone_number`` (E.164) and ``external_id``. Fields named as Klaviyo's standard attributes
(``first_name``, ``last_name``, ``organization``, ``title``, ``image``, ``locale``…) are sent as
such, location fields (``address1``, ``city``, ``country``, ``region``, ``zip``, ``timezone``,
``latitude``…) under ``location``, every other field as a custom property.

One batch is one job, or several when its JSON would pass 5 MB (contracts SUMMARY §6; Klaviyo's
OpenAPI ``stable.json`` revision 2026-07-15; developers.klaviyo.com/en/reference/bulk_import_profiles):

1. ``POST /api/profile-bulk-import-jobs`` with ``{"data": {"type": "profile-bulk-import-job",
   "attributes": {"profiles": {"data": [{"type": "profile", "attributes": {…}}]}}}}`` (plus
   ``relationships.lists`` with ``list_id``), ``Authorization: Klaviyo-API-Key …`` and ``revision``;
   Klaviyo answers ``202`` with the job;
2. ``GET /api/profile-bulk-import-jobs/{id}`` every ``job_poll_interval`` until ``status`` is
   ``complete`` (``cancelled`` or ``job_timeout`` fail the batch: nothing is acknowledged);
3. when ``failed_count`` > 0, ``GET …/{id}/import-errors`` (every page): each error names its
   profile by ``source.pointer`` (``/data/attributes/profiles/data/<index>/…``) or its
   ``original_payload`` identifiers, and rejects that record with Klaviyo's ``code: detail``
   (``klaviyo_results``).

Steps 2 and 3, polling and reading a submitted job, are ``klaviyo.jobs.ImportJobPoller`` (on the
shared ``delivery.jobs`` poller).

Values (``klaviyo_profiles.profile_for``): identifiers and standard attributes as text; properties
as JSON (numbers, booleans, lists; dates and timestamps ISO 8601, which Klaviyo reads as dates). A
NULL is left out, so Klaviyo keeps its value, unless ``nulls: clear``, which sends ``null`` and
clears it. A record with an empty identifier, NaN/±Infinity, a profile over 100 KB, or the
identifiers of another record of the same batch is rejected before sending.

A changed identifier (``Record.previous``: a new email under the same primary key) is followed by
the profile's id: the profiles of the batch's moved records are looked up by their old values
(``GET /api/profiles?filter=any(email,[…])``, 100 per request) and imported with that ``id``, which
updates the profile's identifiers (the spec's ``ProfileUpsertQueryResourceObject.id``). A new value
another profile has rejects the row, never merged; a record with no profile under its old values is
imported by its new ones as usual.

Limits: the bulk import endpoints allow 10 requests/s (burst) and 150/min (steady) per account; the
default ``rate_limit`` of 10 per 4 s stays within both, polls included. A 429 (with
``Retry-After``) or 5xx on submitting a job is retried by the engine (a retried batch submits its
job again, harmless because import is an upsert by identifier); on a poll or an import-errors read
it is read again after ``Retry-After`` until ``job_timeout`` (``klaviyo_jobs``), so throttling
never resubmits a job.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from dbt_activate.core.types import Batch, BatchResult, Mode, Nulls, Operation, RateLimit, SyncTarget
from dbt_activate.delivery import HttpSession, UnencodableValue, body_snippet
from dbt_activate.destinations.api import ApiDestination
from dbt_activate.destinations.base import ConfigKey, skip_all
from dbt_activate.destinations.jobs import job_keys, job_polling
from dbt_activate.destinations.klaviyo.events import (
    EVENT_JOBS,
    check_event_fields,
    encode,
    event_entry,
    event_requests,
)
from dbt_activate.destinations.klaviyo.jobs import JOBS, ImportJobPoller
from dbt_activate.destinations.klaviyo.profiles import IDENTIFIERS
from dbt_activate.destinations.klaviyo.profiles import profile_for as profile_for  # the tests import it from here
from dbt_activate.destinations.klaviyo.results import Job, apply_import_errors, read_events_accepted, read_job_created
from dbt_activate.errors import ConfigError, DestinationError

MAX_BATCH = 10_000
MAX_BODY = 5 * 1024 * 1024
MAX_PROFILE = 100 * 1024
REVISION = "2026-07-15"
_ENVELOPE = 512  # bytes of a job body around its profiles
_JOB_KEYS = job_keys(interval=2.0, timeout=900.0, then="the batch fails (nothing acknowledged)",
                     interval_help="Seconds between two polls of an import job's status.",
                     old_interval="poll_interval", old_timeout="poll_timeout")


class KlaviyoDestination(ApiDestination):
    kind = "klaviyo"
    null_handling = Nulls.OWN
    description = ("Klaviyo profiles through bulk import jobs (10,000 per job), optionally added to a list; "
                   "append sends events of the metric named by object.")
    config_keys: ClassVar[tuple[ConfigKey, ...]] = (
        ConfigKey("api_key", str, required=True, secret=True,
                  help="Private API key with the profiles:write scope (lists:write with list_id)."),
        ConfigKey("revision", str, default=REVISION, help="API revision sent in the `revision` header."),
        ConfigKey("list_id", str, help="Also add every imported profile to this list."),
        *_JOB_KEYS,
    )
    key_help: ClassVar[Mapping[str, str]] = {
        "batch_size": f"Profiles per job, 1-{MAX_BATCH} (Klaviyo's maximum, the default); a job is also kept "
                      "under 5 MB.",
        "max_concurrency": "Batches (jobs) in flight at once.",
        "rate_limit": ", within the endpoints' documented burst (10/s) and steady (150/min) limits.",
        "nulls": "keep: a NULL is not sent and Klaviyo keeps its value; clear: a NULL clears the field.",
    }
    modes = frozenset({Mode.UPSERT, Mode.APPEND})
    default_base_url = "https://a.klaviyo.com"
    max_batch_size = MAX_BATCH
    batch_limit = "Klaviyo's job maximum"
    default_timeout = 60.0
    batch_size = MAX_BATCH
    max_concurrency = 2
    rate_limit = RateLimit(10, 4.0)
    objects = ("profiles",)

    def configure(self, name: str, config: Mapping[str, Any]) -> None:
        self.polling = job_polling(name, config, _JOB_KEYS)

    def check_target(self, target: SyncTarget) -> None:
        where = f"sync {target.sync_name}"
        if target.mode is Mode.APPEND:
            problem = check_event_fields(target.field_names)
            if target.object == "profiles" or not target.object.strip():
                problem = "append sends events: set object to the metric name (e.g. Placed Order)"
            if problem:
                raise ConfigError(problem, location=where)
            return
        if target.object != "profiles":
            raise ConfigError(f"object {target.object!r} is not supported with mode {target.mode.value}: use "
                              "profiles (append sends events of the metric named by object)", location=where)
        _identifiers(target)

    async def write(self, target: SyncTarget, batch: Batch) -> BatchResult:
        if target.mode is Mode.APPEND and batch.operation is not Operation.APPEND:
            # on_delete of an events sync: an event that happened cannot be taken back.
            return skip_all(batch, "Klaviyo events cannot be deleted or cleared")
        result = BatchResult()
        session = self.session()
        if batch.operation is Operation.APPEND:
            for keys, body in self._event_requests(target, batch, result):
                response = await session.request("POST", EVENT_JOBS, content=body, headers=self._headers())
                read_events_accepted(response, keys, result, self.redactor)
            return result
        moved = await self._moves(target, batch, result, session) if batch.operation is Operation.UPSERT else {}
        jobs = self._jobs(target, batch, result, moved)
        submitted: list[tuple[str, Job]] = []
        for job in jobs:
            response = await session.request("POST", JOBS, content=self._body(job), headers=self._headers())
            job_id = read_job_created(response, job, result, self.redactor)
            if job_id:
                submitted.append((job_id, job))
        poller = ImportJobPoller(self.name, self.redactor, self.polling)
        for job_id, job in submitted:
            failed = await poller.wait(session, job_id)
            if failed:
                errors = await poller.import_errors(session, job_id)
                apply_import_errors(errors, failed, job, result, self.redactor)
        return result

    def describe_request(self, target: SyncTarget, batch: Batch) -> Mapping[str, Any]:
        if batch.operation is Operation.APPEND:
            requests = self._event_requests(target, batch, BatchResult())
            return {"method": "POST", "url": self.base_url + EVENT_JOBS, "headers": {"revision": self.revision},
                    "body": json.loads(requests[0][1]) if requests else None, "requests": len(requests)}
        jobs = self._jobs(target, batch, BatchResult())
        job_url = f"{self.base_url}{JOBS}/<job id>"
        return {"method": "POST", "url": self.base_url + JOBS, "headers": {"revision": self.revision},
                "body": json.loads(self._body(jobs[0])) if jobs else None, "jobs": len(jobs),
                "then": [{"method": "GET", "url": job_url,
                          "repeat": f"every {self.polling.interval:g}s until complete"},
                         {"method": "GET", "url": job_url + "/import-errors", "when": "failed_count > 0"}]}

    # -- requests ------------------------------------------------------------------------------

    @property
    def revision(self) -> str:
        return str(self.settings.text("revision"))

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/vnd.api+json", "Accept": "application/vnd.api+json"}

    def session_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Klaviyo-API-Key {self.settings.text('api_key')}", "revision": self.revision,
                "Accept": "application/vnd.api+json"}

    def _body(self, job: Job) -> bytes:
        head: dict[str, Any] = {"type": "profile-bulk-import-job",
                                "attributes": {"profiles": {"data": ["\x00"]}}}
        list_id = self.settings.text("list_id")
        if list_id:
            head["relationships"] = {"lists": {"data": [{"type": "list", "id": str(list_id)}]}}
        # The profiles are already encoded (to size them); splice them into the envelope.
        envelope = json.dumps({"data": head}, separators=(",", ":")).encode()
        return envelope.replace(b'"\\u0000"', b",".join(job.encoded))

    async def _moves(self, target: SyncTarget, batch: Batch, result: BatchResult,
                     session: HttpSession) -> dict[str, str]:
        """The Klaviyo profile id of each record whose identifiers changed (``Record.previous``), found
        by the old values (``GET /api/profiles?filter=any(<field>,[…])``): its profile is then sent with
        that ``id``, which updates the profile's identifiers instead of creating one. A new value another
        profile has rejects the row, never merged; a record with no profile under its old values is
        imported by its new ones as usual."""
        identifiers = _identifiers(target, during_write=True)
        moves: dict[str, tuple[str, str, dict[str, str]]] = {}  # key -> (field found by, old value, new values)
        for record in batch.records:
            if record.previous is None:
                continue
            old = {f: _identifier_text(record.previous.get(f)) for f in identifiers}
            new = {f: _identifier_text(record.values.get(f)) for f in identifiers}
            changed = {f: v for f, v in new.items() if v and _folded(f, v) != _folded(f, old[f])}
            found_by = next((f for f in identifiers if old[f]), None)
            if changed and found_by is not None:
                moves[record.key] = (found_by, old[found_by], changed)
        if not moves:
            return {}
        olds: dict[str, set[str]] = {}
        news: dict[str, set[str]] = {}
        for found_by, value, changed in moves.values():
            olds.setdefault(found_by, set()).add(value)
            for name, new_value in changed.items():
                news.setdefault(name, set()).add(new_value)
        owners = {name: await self._profile_ids(session, name, values) for name, values in olds.items()}
        holders = {name: await self._profile_ids(session, name, values) for name, values in news.items()}
        moved: dict[str, str] = {}
        for key, (found_by, value, changed) in moves.items():
            profile_id = owners[found_by].get(_folded(found_by, value))
            if profile_id is None:
                continue
            taken = [(name, v, holders[name][_folded(name, v)]) for name, v in changed.items()
                     if holders[name].get(_folded(name, v)) not in (None, profile_id)]
            if taken:
                name, v, holder = taken[0]
                result.rejected[key] = (f"{name} changed to {v!r}, which Klaviyo profile {holder} already has: "
                                        "not merged into it")
                continue
            moved[key] = profile_id
        return moved

    async def _profile_ids(self, session: HttpSession, name: str, values: set[str]) -> dict[str, str]:
        """Profile ids by folded ``name`` value, for ``values`` (100 per request, Klaviyo's ``any`` maximum)."""
        ids: dict[str, str] = {}
        ordered = sorted(values)
        for start in range(0, len(ordered), 100):
            chunk = ordered[start:start + 100]
            response = await session.request("GET", "/api/profiles", params={
                "filter": f"any({name},{json.dumps(chunk, ensure_ascii=False)})", "page[size]": "100",
                "fields[profile]": ",".join(IDENTIFIERS)})
            if response.status_code != 200:
                raise DestinationError(self.redactor(f"{self.name}: GET /api/profiles answered HTTP "
                                                     f"{response.status_code}: {body_snippet(response)}; "
                                                     "the batch is not confirmed"))
            for item in response.json().get("data") or []:
                found = (item.get("attributes") or {}).get(name) if name != "id" else item.get("id")
                if found not in (None, "") and item.get("id"):
                    ids[_folded(name, str(found))] = str(item["id"])
        return ids

    def _jobs(self, target: SyncTarget, batch: Batch, result: BatchResult,
              moved: Mapping[str, str] | None = None) -> list[Job]:
        """The batch's profiles, encoded and split into jobs under 5 MB; unsendable records go to ``result``.
        A record in ``moved`` (key -> profile id) is sent with its profile's ``id``."""
        moved = moved or {}
        identifiers = _identifiers(target, during_write=True)
        clear = batch.operation is Operation.CLEAR
        if batch.operation not in (Operation.UPSERT, Operation.CLEAR):
            raise DestinationError(f"sync {target.sync_name}: Klaviyo bulk import cannot {batch.operation.value}")
        cleared = [f for f in target.field_names if f not in identifiers] if clear else []
        seen: dict[tuple[str, ...], str] = {}
        jobs: list[Job] = [Job()]
        for record in batch.records:
            if record.key in result.rejected:
                continue
            try:
                profile = profile_for(record, identifiers, clear_nulls=self.clears_nulls(target), cleared=cleared)
                if record.key in moved:
                    profile["id"] = moved[record.key]
                ids = tuple(str(profile["attributes"].get(i, "")).lower() for i in identifiers)
                earlier = seen.setdefault(ids, record.key)
                if earlier != record.key:
                    raise UnencodableValue(f"record {earlier!r} of the same batch has the same identifiers")
                encoded = json.dumps(profile, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
                if len(encoded) > MAX_PROFILE:
                    raise UnencodableValue(f"the profile is {len(encoded)} bytes; Klaviyo takes at most 100 KB "
                                           f"({MAX_PROFILE} bytes) per profile")
            except UnencodableValue as exc:
                result.rejected[record.key] = str(exc)
                continue
            job = jobs[-1]
            if job.keys and job.size + len(encoded) + 1 > MAX_BODY - _ENVELOPE:
                job = Job()
                jobs.append(job)
            job.add(record.key, encoded, profile["attributes"], identifiers)
        return [j for j in jobs if j.keys]

    def _event_requests(self, target: SyncTarget, batch: Batch, result: BatchResult) -> list[tuple[list[str], bytes]]:
        encoded: list[tuple[str, bytes]] = []
        for record in batch.records:
            try:
                entry = encode(event_entry(record, target))
                if len(entry) > MAX_PROFILE:
                    raise UnencodableValue(f"the event is {len(entry)} bytes; Klaviyo takes at most 100 KB per string")
            except (UnencodableValue, ValueError) as exc:
                result.rejected[record.key] = str(exc)
                continue
            encoded.append((record.key, entry))
        return event_requests(encoded)


# -- pure helpers ----------------------------------------------------------------------------------


def _identifier_text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _folded(name: str, value: str) -> str:
    """How Klaviyo compares an identifier: emails without case."""
    return value.lower() if name == "email" else value


def _identifiers(target: SyncTarget, *, during_write: bool = False) -> tuple[str, ...]:
    wrong = [i for i in target.identity if i not in IDENTIFIERS]
    if target.identity and not wrong:
        return target.identity
    message = (f"Klaviyo finds a profile by {', '.join(IDENTIFIERS)}, but this sync identifies records by "
               f"{', '.join(target.identity) or 'nothing'}; set `match: {{column: email}}` (or phone_number, "
               "external_id)")
    if during_write:
        raise DestinationError(f"sync {target.sync_name}: {message}")
    raise ConfigError(message, location=f"sync {target.sync_name}")
