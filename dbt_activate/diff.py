"""Which SQL yields a sync's changes, and what they count to.

A first sync scans the model (every row is new, duplicate keys found by a query of their own); later
syncs diff the model against the sync's snapshot (``warehouse/dialect.py`` writes both queries), with
the unchanged rows too after ``--full-resync`` or a changed field mapping; rows a failing test
quarantined are held out of both sides (``dbt/quarantine.py``). ``plan`` counts the same rows per
operation instead of sending them. The shape of a diff row is ``core/changes.py``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from dbt_activate.core.changes import ADD, CHANGE, REMOVE, RowLayout, operation_for
from dbt_activate.core.outcomes import SyncOutcome
from dbt_activate.core.types import Batch, Mode, Nulls, Operation, Record, SyncTarget
from dbt_activate.dbt.quarantine import HeldBack
from dbt_activate.destinations.base import Destination
from dbt_activate.planner import Decision
from dbt_activate.spec import ResolvedSync
from dbt_activate.state.store import SyncRecord, WarehouseStateStore
from dbt_activate.sync import Chunks
from dbt_activate.warehouse.connection import WarehouseConnection
from dbt_activate.warehouse.dialect import KEY, OP, Column, snapshot_table_name

# Rows per read from the warehouse. 10,000 wide rows are ~7 MB of Python objects held at once;
# 5,000 measured 10 MB less peak RSS at 1M rows (benchmarks/README.md, Memory) and fewer round trips
# than smaller chunks on remote warehouses (Redshift FETCH FORWARD).
FETCH_ROWS = 5_000


def needs_everything(decision: Decision, previous: SyncRecord | None, rs: ResolvedSync) -> bool:
    """--full-resync, or a field mapping changed since the last run: the unchanged rows are sent too."""
    mapping_changed = previous is not None and previous.fields_signature not in ("", rs.fields_signature)
    return decision.full_resync or mapping_changed


def row_layout(rs: ResolvedSync, destination: Destination, target: SyncTarget) -> RowLayout:
    """How diff rows become records; NULL fields are left out where an absent field keeps its value."""
    drop_nulls = (destination.null_handling is Nulls.OMIT and rs.spec.mode is not Mode.APPEND
                  and not destination.clears_nulls(target))
    # With a `match` apart from the primary key, the identity of a row can change (a new email).
    follows_identity = bool(rs.spec.match) and ({c.lower() for c, _ in rs.spec.match}
                                              != {c.lower() for c in rs.spec.primary_key})
    return RowLayout(tuple(f.field for f in rs.fields), rs.identity, drop_nulls=drop_nulls,
                     follows_identity=follows_identity,
                     keep_nulls=frozenset(r.relationship for r in rs.spec.references))


class WarehouseSource:
    """The ``Source`` of a sync in the warehouse: its diff rows, streamed over ``reader``."""

    def __init__(self, reader: WarehouseConnection, resolved: ResolvedSync, held: HeldBack | None = None) -> None:
        self.reader, self.resolved, self.held = reader, resolved, held
        self.dialect = reader.dialect

    def sql(self, snapshot: str | None, *, everything: bool) -> str:
        """The diff against ``snapshot``; with None (nothing synced yet) a plain scan of the model."""
        spec = self.resolved.spec
        keys, fields = self._columns()
        relation = spec.relation
        if self.held is not None:
            relation = self.held.relation(spec.relation)
            snapshot = self.held.snapshot(snapshot, spec.relation) if snapshot is not None else None
        if snapshot is None:
            return self.dialect.initial_query(relation, keys, fields, spec.where).sql
        return self.dialect.diff_query(
            relation, snapshot, keys, fields, spec.where,
            include_changed=spec.mode.value != "create",
            include_removed=spec.sends_deletes,
            include_unchanged=everything,
        ).sql

    def rows(self, snapshot: str | None, *, everything: bool) -> Chunks:
        if snapshot is not None:
            self.reader.reserve_memory_for(snapshot)
        # A generator: the query runs at the first read, and closing it closes the server-side cursor.
        return self.reader.stream(self.sql(snapshot, everything=everything), FETCH_ROWS)

    def _columns(self) -> tuple[list[Column], list[Column]]:
        types = dict(self.resolved.column_types)
        keys = [Column(c, types.get(c, "")) for c in self.resolved.key_columns]
        return keys, [Column(f.column, f.data_type) for f in self.resolved.fields]

    def row_count(self) -> int:
        """Rows of the model in the sync's segment."""
        spec = self.resolved.spec
        where = f" where ({spec.where})" if spec.where else ""
        return int(self.reader.query(f"select count(*) from {spec.relation}{where}")[0][0])

    def duplicate_keys(self) -> dict[str, int]:
        keys, _ = self._columns()
        spec = self.resolved.spec
        relation = spec.relation if self.held is None else self.held.relation(spec.relation)
        sql = self.dialect.duplicate_keys_query(relation, keys, spec.where)
        return {str(k): int(n) for k, n in self.reader.query(sql)}


def plan_counts(source: WarehouseSource, state: WarehouseStateStore, decision: Decision,
                previous: SyncRecord | None, destination: Destination, target: SyncTarget, outcome: SyncOutcome,
                *, samples: int, redact: Callable[[str], str]) -> None:
    """`plan`: the sync's diff counted per operation, the requests it would make and sample payloads."""
    rs, reader, d = source.resolved, source.reader, source.dialect
    exists = reader.columns(state.schema, snapshot_table_name(rs.spec.name))
    snapshot = (state.table(snapshot_table_name(rs.spec.name)) if exists else
                f"(select cast(null as {d.key_type}) as sync_key, cast(null as {d.varchar(32)}) as fingerprint, "
                f"cast(null as {d.text_type}) as record_identity where 1 = 0)")
    if exists:
        reader.reserve_memory_for(snapshot)
    sql = source.sql(snapshot, everything=needs_everything(decision, previous, rs))
    rows_by_op = {str(op): int(n) for op, n in reader.query(f"select {OP}, count(*) from ({sql}) d group by {OP}")}
    c = outcome.counts
    c.added, c.changed, c.removed = (rows_by_op.pop(op, 0) for op in (ADD, CHANGE, REMOVE))
    c.rejected = sum(rows_by_op.values())  # null and duplicate keys
    per_operation: dict[Operation, int] = {}
    for op, n in ((ADD, c.added), (CHANGE, c.changed), (REMOVE, c.removed)):
        operation = operation_for(rs.spec.mode, op, rs.spec.on_delete)
        if operation is not None and n:
            per_operation[operation] = per_operation.get(operation, 0) + n
    outcome.api_calls = sum(destination.planned_requests(target, op, n) for op, n in per_operation.items())
    if samples:
        outcome.samples = _samples(reader, rs, destination, target, sql, samples, redact)


def _samples(reader: WarehouseConnection, rs: ResolvedSync, destination: Destination, target: SyncTarget,
             sql: str, limit: int, redact: Callable[[str], str]) -> list[dict[str, Any]]:
    """Up to ``limit`` records per operation, rendered by the destination as ``write`` would send them."""
    layout = row_layout(rs, destination, target)
    batches: dict[Operation, list[Record]] = {}
    for op in (ADD, CHANGE, REMOVE):
        operation = operation_for(rs.spec.mode, op, rs.spec.on_delete)
        if operation is None:
            continue
        rows = reader.query(f"select * from ({sql}) d where {OP} = '{op}' order by {KEY} limit {int(limit)}")
        records = batches.setdefault(operation, [])
        records.extend(layout.record(row)[0] for row in rows if len(records) < limit)
    samples = []
    for operation, records in batches.items():
        if not records:
            continue
        request = destination.describe_request(target, Batch(operation, records))
        # Rendered requests may carry credentials (a webhook URL, a header): redact like every output.
        clean = json.loads(redact(json.dumps(request, default=str)))
        samples.append({"operation": operation.value, "records": len(records), "request": clean})
    return samples
