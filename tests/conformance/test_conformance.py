"""The destination conformance suite: every case runs against every harness in ``HARNESSES``.

What every destination promises the engine (DESIGN §4.4, §4.5, and the seam in
``destinations/base.py``): what it acknowledges is stored as sent; a refused record is reported
with a reason and does not stop the others; a passing failure raises
``RetryableDestinationError`` rather than returning; secrets never appear in error text;
``describe_request`` touches no network; batches stay within the documented maximum; and its
declared config keys, modes and limits are consistent.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from dbt_activate.core.types import Batch, BatchResult, Mode, Operation, Record, SyncTarget
from dbt_activate.destinations.base import COMMON_CONFIG_KEYS, Destination, check_config, load_destination_type
from dbt_activate.errors import ActivateError, ConfigError, DestinationError, RetryableDestinationError
from tests.conformance.base import SECRET, WRONG_SECRET, Harness
from tests.conformance.harnesses import HARNESSES

MODE_OF = {Operation.UPSERT: Mode.UPSERT, Operation.UPDATE: Mode.UPDATE, Operation.CREATE: Mode.CREATE,
           Operation.APPEND: Mode.APPEND, Operation.DELETE: Mode.MIRROR, Operation.CLEAR: Mode.UPSERT}


@pytest.fixture(params=[pytest.param(h, id=h.name, marks=h.marks) for h in HARNESSES])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    instance: Harness = request.param()
    with instance.serve():
        yield instance


def target(harness: Harness, operation: Operation) -> SyncTarget:
    return SyncTarget("conformance__sync", harness.object, MODE_OF[operation], harness.field_specs(),
                      (harness.identity,), run_id="conformance-run")


def write(harness: Harness, operation: Operation, records: Sequence[Record],
          destination: Destination | None = None) -> BatchResult:
    """Open a destination for ``operation``'s mode, write one batch, close."""
    dest = destination or harness.build()
    tgt = target(harness, operation)

    async def run() -> BatchResult:
        await dest.open(tgt)
        try:
            return await dest.write(tgt, Batch(operation, list(records)))
        finally:
            await dest.close()

    return asyncio.run(run())


def needs(harness: Harness, *operations: Operation) -> None:
    missing = [o.value for o in operations if o not in harness.operations]
    if missing:
        pytest.skip(f"{harness.name} does not support {', '.join(missing)}")


def seed(harness: Harness, *numbers: int) -> None:
    operation = Operation.UPSERT if Operation.UPSERT in harness.operations else Operation.CREATE
    assert write(harness, operation, [harness.record(i) for i in numbers]) == BatchResult()


def changed(harness: Harness, i: int) -> Record:
    return harness.record(i, **{harness.mutable_field: f"Changed {i}"})


def assert_outcome(harness: Harness, result: BatchResult, record: Record, before: dict[str, Any] | None) -> None:
    """Acknowledged -> stored as sent; skipped -> left as it was."""
    stored = harness.read_back().get(record.key)
    assert record.key not in result.rejected, result.rejected
    if record.key in result.skipped:
        assert result.skipped[record.key], "a skipped record needs a reason"
        assert stored == before
    else:
        assert stored == harness.expected(record)


# -- every supported operation round-trips ------------------------------------------------------


def test_upsert_creates_then_updates(harness: Harness) -> None:
    needs(harness, Operation.UPSERT)
    assert write(harness, Operation.UPSERT, [harness.record(1), harness.record(2)]) == BatchResult()
    assert write(harness, Operation.UPSERT, [changed(harness, 2), harness.record(3)]) == BatchResult()
    stored = harness.read_back()
    assert stored == {"1": harness.expected(harness.record(1)), "2": harness.expected(changed(harness, 2)),
                      "3": harness.expected(harness.record(3))}


def test_update_changes_existing_records_and_reports_unknown_ones(harness: Harness) -> None:
    needs(harness, Operation.UPDATE)
    seed(harness, 1)
    result = write(harness, Operation.UPDATE, [changed(harness, 1), harness.record(9)])
    assert harness.read_back()["1"] == harness.expected(changed(harness, 1))
    assert_outcome(harness, result, harness.record(9), None)


def test_create_adds_new_records_and_leaves_existing_ones(harness: Harness) -> None:
    needs(harness, Operation.CREATE)
    assert write(harness, Operation.CREATE, [harness.record(1), harness.record(2)]) == BatchResult()
    assert harness.read_back() == {"1": harness.expected(harness.record(1)), "2": harness.expected(harness.record(2))}
    before = harness.read_back()["1"]
    result = write(harness, Operation.CREATE, [changed(harness, 1)])
    assert_outcome(harness, result, changed(harness, 1), before)


def test_append_stores_every_record(harness: Harness) -> None:
    needs(harness, Operation.APPEND)
    records = [harness.record(i) for i in (1, 2, 3)]
    assert write(harness, Operation.APPEND, records) == BatchResult()
    appended = harness.read_appended()
    for record in records:
        assert harness.expected(record) in appended


def test_delete_removes_records_and_acknowledges_missing_ones(harness: Harness) -> None:
    needs(harness, Operation.DELETE)
    seed(harness, 1, 2)
    result = write(harness, Operation.DELETE, [harness.identity_record(1), harness.identity_record(9)])
    assert result.rejected == {}
    assert set(harness.read_back()) == {"2"}


def test_clear_empties_every_field_but_the_identity(harness: Harness) -> None:
    needs(harness, Operation.CLEAR)
    seed(harness, 1, 2)
    assert write(harness, Operation.CLEAR, [harness.identity_record(1)]) == BatchResult()
    stored = harness.read_back()
    assert stored["1"] == harness.expected_cleared(harness.record(1))
    assert stored["2"] == harness.expected(harness.record(2))


# -- identity changes ---------------------------------------------------------------------------


def moved(harness: Harness, i: int, operation: Operation = Operation.UPSERT) -> Record:
    """Record ``i`` under a new identity (same key), with the one last sent as ``previous``."""
    new = harness.moved_identity(i)
    if new is None:
        pytest.skip(f"{harness.name}: no identity apart from the primary key that changes in place")
    needs(harness, operation)
    old = harness.values(i)[harness.identity]
    return Record(str(i), {**harness.values(i), harness.identity: new, harness.mutable_field: f"Moved {i}"},
                  previous={harness.identity: old})


@pytest.mark.parametrize("operation", [Operation.UPSERT, Operation.UPDATE], ids=["upsert", "update"])
def test_a_changed_identity_updates_the_same_record(harness: Harness, operation: Operation) -> None:
    record = moved(harness, 1, operation)
    seed(harness, 1, 2)
    assert write(harness, operation, [record, changed(harness, 2)]) == BatchResult()
    assert harness.read_back() == {"1": harness.expected(record), "2": harness.expected(changed(harness, 2))}
    identities = harness.stored_identities()
    assert len(identities) == 2, "the record under the old identity must be the one updated, not a new one"
    assert harness.expected(harness.record(1))[harness.identity] not in identities


def test_a_changed_identity_another_record_holds_is_rejected(harness: Harness) -> None:
    taken = moved(harness, 1)
    taken = Record(taken.key, {**taken.values, harness.identity: harness.values(2)[harness.identity]},
                   previous=taken.previous)
    seed(harness, 1, 2)
    before = harness.read_back()
    result = write(harness, Operation.UPSERT, [taken, changed(harness, 3)])
    assert set(result.rejected) == {"1"}, result
    assert result.rejected["1"].strip()
    after = harness.read_back()
    assert after["1"] == before["1"] and after["2"] == before["2"]  # never merged into record 2
    assert after["3"] == harness.expected(changed(harness, 3))


def test_a_changed_identity_whose_record_is_gone_is_written_by_the_new_one(harness: Harness) -> None:
    record = moved(harness, 1)
    seed(harness, 2)
    assert write(harness, Operation.UPSERT, [record]) == BatchResult()
    assert harness.read_back() == {"1": harness.expected(record), "2": harness.expected(harness.record(2))}
    # Sent again (a retry, or a run that died before its answer was saved): the same record.
    assert write(harness, Operation.UPSERT, [record]) == BatchResult()
    assert len(harness.stored_identities()) == 2


# -- failures -----------------------------------------------------------------------------------


def test_a_rejected_record_does_not_stop_the_others(harness: Harness) -> None:
    bad = harness.bad_record(5)
    if bad is None:
        pytest.skip(f"{harness.name}: no record it refuses")
    operation = Operation.UPSERT if Operation.UPSERT in harness.operations else Operation.CREATE
    result = write(harness, operation, [harness.record(4), bad, harness.record(6)])
    assert set(result.rejected) == {bad.key}
    assert result.rejected[bad.key].strip(), "a rejection needs a reason"
    stored = harness.read_back()
    assert stored["4"] == harness.expected(harness.record(4))
    assert stored["6"] == harness.expected(harness.record(6))


def test_a_passing_failure_raises_retryable_and_the_retry_lands(harness: Harness) -> None:
    dest = harness.build()
    operation = Operation.UPSERT if Operation.UPSERT in harness.operations else Operation.CREATE
    tgt = target(harness, operation)
    batch = Batch(operation, [harness.record(1)])

    async def run() -> BatchResult:
        await dest.open(tgt)
        try:
            if not harness.fail_next_write():
                pytest.skip(f"{harness.name}: cannot inject a passing failure")
            with pytest.raises(RetryableDestinationError) as caught:
                await dest.write(tgt, batch)
            assert SECRET not in str(caught.value)
            return await dest.write(tgt, batch)
        finally:
            await dest.close()

    assert asyncio.run(run()) == BatchResult()
    assert harness.read_back()["1"] == harness.expected(harness.record(1))


def test_secrets_never_appear_in_error_text(harness: Harness) -> None:
    overrides = harness.bad_credentials()
    if overrides is None:
        pytest.skip(f"{harness.name}: no credentials")
    with pytest.raises(ActivateError) as caught:
        write(harness, Operation.UPSERT if Operation.UPSERT in harness.operations else Operation.CREATE,
              [harness.record(1)], harness.build(**overrides))
    assert not isinstance(caught.value, RetryableDestinationError), "bad credentials must not be retried"
    assert WRONG_SECRET not in str(caught.value)
    assert SECRET not in str(caught.value)
    if harness.echo_secret_next():
        with pytest.raises(DestinationError) as echoed:
            write(harness, Operation.UPSERT, [harness.record(1)])
        assert SECRET not in str(echoed.value)
        assert "***" in str(echoed.value)


def test_describe_request_makes_no_network_call(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    before = harness.requests_seen()
    dest = harness.build()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("describe_request opened a connection")

    with monkeypatch.context() as patched:
        patched.setattr(socket.socket, "connect", refuse)
        patched.setattr(socket, "create_connection", refuse)
        for operation in sorted(harness.operations, key=lambda o: o.value):
            records = ([harness.identity_record(1)] if operation in (Operation.DELETE, Operation.CLEAR)
                       else [harness.record(1), harness.record(2)])
            described = dest.describe_request(target(harness, operation), Batch(operation, records))
            assert described, f"{operation.value}: describe_request described nothing"
            json.dumps(described, default=str)  # plan prints it
            assert SECRET not in json.dumps(described, default=str)
    assert harness.requests_seen() == before


# -- declarations -------------------------------------------------------------------------------


def test_batch_size_respects_the_documented_maximum(harness: Harness) -> None:
    kind = harness.destination
    dest = harness.build()
    assert kind.batch_size >= 1
    if harness.max_batch_size is not None:
        assert kind.batch_size <= harness.max_batch_size
        with pytest.raises(ConfigError):
            harness.build(batch_size=harness.max_batch_size + 1)
        assert harness.build(batch_size=harness.max_batch_size).effective_batch_size == harness.max_batch_size
    # A full batch is accepted as one request (capped to keep the suite fast).
    size = min(dest.effective_batch_size, 2000)
    operation = Operation.UPSERT if Operation.UPSERT in harness.operations else Operation.CREATE
    result = write(harness, operation, [harness.record(i) for i in range(100, 100 + size)])
    assert result == BatchResult()
    assert len(harness.read_back()) == size


def test_declared_config_modes_and_limits_are_consistent(harness: Harness) -> None:
    kind = harness.destination
    assert kind.kind and load_destination_type(kind.kind) is kind, "registered under its kind"
    assert kind.modes and kind.modes <= frozenset(Mode)
    assert kind.max_concurrency >= 1
    assert kind.rate_limit is None or (kind.rate_limit.requests >= 1 and kind.rate_limit.per_seconds > 0)
    names = [k.name for k in kind.config_keys]
    assert len(names) == len(set(names)), "a config key is declared twice"
    for key in (*COMMON_CONFIG_KEYS, *kind.config_keys):
        assert key.help.strip(), f"config key {key.name!r} has no help"
        assert not (key.required and key.default is not None), f"{key.name!r} is required yet has a default"
        assert key.default is None or isinstance(key.default, key.type), f"{key.name!r} default has the wrong type"
    config = harness.config()
    check_config(kind, harness.name, config, "destinations.yml")
    dest = harness.build()
    for key in kind.config_keys:
        if key.secret and isinstance(config.get(key.name), str):
            assert config[key.name] in dest.secrets(), f"secret {key.name!r} is not in secrets()"
    for key in kind.config_keys:
        if key.required:
            with pytest.raises(ConfigError):
                check_config(kind, harness.name, {k: v for k, v in config.items() if k != key.name},
                             "destinations.yml")
