"""The match key -> record id map of one sync in one run, for vendors that cannot upsert by a field.

Intercom and Pipedrive need a record's id to write it. Ids come, in this order, from what this run
already learnt, from the runner's ``RecordIdStore`` (kept across runs; read once per batch), and only
then from the vendor's search, which the destination type runs (``intercom_ids``, ``pipedrive_ids``).
What a search finds and what a create returns is written back to the store at the end of each batch
(``flush``); a record deleted, or an id the vendor no longer knows, is forgotten. A negative search
is never stored: the record may be created meanwhile. Two rows with the same match value are written
one after the other (``locked``), so the second finds the record the first created.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from dbt_activate.core.types import Batch, BatchResult, Operation, Record, RecordIdStore
from dbt_activate.errors import DestinationError, RetryableDestinationError

Outcome = tuple[str, str]  # ("ok" | "rejected" | "skipped", reason)
OK: Outcome = ("ok", "")
MOVES = (Operation.UPSERT, Operation.UPDATE)  # operations that follow a changed match value (Record.previous)


class RecordFailed(Exception):
    """The vendor refused one record (a 4xx, several records matching its value): the message is the
    rejection reason of its row, and the other rows go on."""


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class RecordIdCache(abc.ABC):
    """What a run knows of record ids: a write-back cache of a ``RecordIdStore``, plus a lock per key.

    A destination type says how a match value becomes a store key (``key``) and how the vendor is
    searched (``lookup``), and words the messages: its ``match_name``, the ``records`` a search finds
    and what to do ``if_several`` match one value.
    """

    if_several: ClassVar[str]  # what the user can do when several records match one value
    match_name: str  # the match field, as the sync's mapping names it
    records: str  # what a search finds, for messages: "Intercom contacts (user)", "Pipedrive persons"

    def __init__(self, store: RecordIdStore) -> None:
        self._store = store
        self._known: dict[str, str] = {}  # learnt this run, or read from the store
        self._asked: set[str] = set()  # keys already looked up in the store this run
        self._put: dict[str, str] = {}
        self._forget: set[str] = set()
        self._locks: dict[str, _KeyLock] = {}

    @abc.abstractmethod
    def key(self, term: str) -> str:
        """The store key of a match value (unique within one destination account)."""

    @abc.abstractmethod
    async def lookup(self, term: str) -> list[str]:
        """The ids of the vendor's records whose match field is ``term``."""

    async def search(self, key: str, term: str) -> str | None:
        """Ask the vendor for the record's id (``learn`` what is found); None when there is none.
        Several hits reject the row: which of them is meant is not ours to guess."""
        ids = await self.lookup(term)
        if len(ids) > 1:
            raise RecordFailed(f"{len(ids)} {self.records} match {self.describe(term)} (ids {', '.join(ids[:5])}): "
                               f"{self.if_several}")
        if ids:
            self.learn(key, ids[0])
            return ids[0]
        return None

    def load(self, keys: Iterable[str]) -> None:
        """Read the store once for the keys of a batch that this run has not looked up yet."""
        wanted = [k for k in dict.fromkeys(keys) if k not in self._known and k not in self._asked]
        if wanted:
            self._asked.update(wanted)
            self._known.update(self._store.get_many(wanted))

    def known(self, key: str) -> str | None:
        """The id learnt this run or read from the store, if any (call ``load`` first)."""
        return self._known.get(key)

    def learn(self, key: str, record_id: str) -> None:
        self._known[key] = record_id
        self._put[key] = record_id
        self._forget.discard(key)

    def forget(self, key: str) -> None:
        self._known.pop(key, None)
        self._put.pop(key, None)
        self._forget.add(key)

    def flush(self) -> None:
        """Write what the batch learnt and forgot to the store (also after a failed batch)."""
        put, forget = self._put, self._forget
        self._put, self._forget = {}, set()
        if forget:
            self._store.delete_many(sorted(forget))
        if put:
            self._store.put_many(put)

    async def move(self, old: tuple[str, str], new: tuple[str, str], update: Callable[[str], Awaitable[bool]],
                   noun: str) -> Outcome | None:
        """A record whose match value changed (``Record.previous``): ``update`` the record found by the
        old value (its known id, else a search), whose body carries the new value, and file its id under
        the new value. ``old`` and ``new`` are (store key, match value); hold ``locked`` on both keys.

        None when the vendor has no record under the old value (deleted there, or moved by a run
        that died before its answer was saved): the caller writes by the new value as usual. When
        another record already has the new value the row is rejected, never merged into it: the
        vendors that keep ids do not all refuse two records with one value (Pipedrive does not, nor
        Intercom for leads), so the new value is looked up first. ``update`` returns False when the id
        is gone.
        """
        (old_key, old_term), (key, term) = old, new
        record_id = await self.find(old_key, old_term)
        if record_id is None:
            return None
        holder = await self.find(key, term)
        if holder is not None and holder != record_id:
            return ("rejected", f"{self.describe(old_term)} changed to {term!r}, which {noun} {holder} already "
                                "has: not merged into it (merge the two in the destination if they are one person, "
                                "or correct the model)")
        updated = await update(record_id)
        self.forget(old_key)  # moved, or gone since its id was stored
        if not updated:
            return None
        self.learn(key, record_id)
        return OK

    async def write(self, operation: Operation, key: str, term: str, *,
                    on_existing: Callable[[str], Awaitable[bool]],
                    create: Callable[[], Awaitable[tuple[str | None, Outcome]]], one: str, none: str) -> Outcome:
        """Write one record found by its match value ``term`` (hold ``locked`` on ``key``).

        create: skipped when the vendor has a record with the value, else ``create()``; update, upsert,
        delete and clear: ``on_existing(id)`` on the record found (its id forgotten after a delete);
        when there is none, update is skipped, upsert calls ``create()``, delete and clear have nothing
        to do. ``create`` returns the id to learn (None: none) and the outcome. ``one`` and ``none``
        name the record in the skip reasons: "an Intercom contact", "no Intercom contact".
        """
        if operation is Operation.CREATE:
            record_id = await self.find(key, term)
            if record_id is not None:
                return ("skipped", f"{one} with {self.describe(term)} exists (id {record_id})")
        elif await self.apply(key, term, on_existing) is not None:
            if operation is Operation.DELETE:
                self.forget(key)
            return OK
        if operation is Operation.UPDATE:
            return ("skipped", f"{none} with {self.describe(term)}")
        if operation not in (Operation.UPSERT, Operation.CREATE):
            return OK  # delete or clear of a record that is not there: nothing to do
        created, outcome = await create()
        if created is not None:
            self.learn(key, created)
        return outcome

    async def find(self, key: str, term: str) -> str | None:
        """The record's id: known this run or stored, else searched for; None when there is none."""
        return self.known(key) or await self.search(key, term)

    async def apply(self, key: str, term: str, act: Callable[[str], Awaitable[bool]]) -> str | None:
        """``act`` on the record of ``term`` (its known id, else a search); the id it succeeded on, or
        None when the vendor has no such record. ``act`` returns False when the id is gone (deleted or
        merged in the vendor): a stored id is then forgotten and searched for again, a searched one is not."""
        record_id, searched = self.known(key), False
        if record_id is None:
            record_id, searched = await self.search(key, term), True
        while record_id is not None:
            if await act(record_id):
                return record_id
            self.forget(key)
            if searched:
                return None
            record_id, searched = await self.search(key, term), True
        return None

    def describe(self, term: str) -> str:
        """A match value for messages: ``field='value'``."""
        return f"{self.match_name}={term!r}"

    @contextlib.asynccontextmanager
    async def locked(self, *keys: str) -> AsyncIterator[None]:
        """Serialise the records of these keys across the batches in flight (always taken in the
        same order, so two records moving between the same values cannot wait on each other)."""
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted(set(keys)):
                await stack.enter_async_context(self._locked(key))
            yield

    @contextlib.asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]


class PerRecordWrites:
    """A batch written one request per record, in flight together, whose retries skip what is done.

    Records of a batch's earlier attempt that reached an outcome are remembered, so ``deliver()``
    retrying the batch re-sends only the records that failed. A record's own refusal is an outcome
    (rejected or skipped); any other error fails the batch, the fatal ones first.
    """

    def __init__(self) -> None:
        self._memo: dict[tuple[Operation, str], Outcome] = {}

    async def write(self, batch: Batch, one: Callable[[Record], Awaitable[Outcome]],
                    ids: RecordIdCache | None = None, term: Callable[[Record], str] | None = None) -> BatchResult:
        """Run ``one`` for every record not done yet; with ``ids``, load their stored ids first
        (``term`` gives a record's match value, also of ``Record.as_previous()``) and write back what
        was learnt, also on failure."""
        operation = batch.operation
        todo = [r for r in batch.records if (operation, r.key) not in self._memo]
        if ids is not None and term is not None:
            # A record whose identity changed is found by the one last sent: load that id too.
            found_by = [*todo, *(r.as_previous() for r in todo if r.previous is not None)]
            ids.load(ids.key(t) for t in (term(r) for r in found_by) if t)
        try:
            outcomes = await asyncio.gather(*(one(r) for r in todo), return_exceptions=True)
        finally:
            if ids is not None:
                ids.flush()
        errors: list[BaseException] = []
        for record, outcome in zip(todo, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                errors.append(outcome)
            else:
                self._memo[(operation, record.key)] = outcome
        if errors:
            raise min(errors, key=lambda e: (isinstance(e, RetryableDestinationError),
                                              not isinstance(e, DestinationError)))
        result = BatchResult()
        for record in batch.records:
            status, reason = self._memo.pop((operation, record.key))
            if status == "rejected":
                result.rejected[record.key] = reason
            elif status == "skipped":
                result.skipped[record.key] = reason
        return result
