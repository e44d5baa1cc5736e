"""``AdPlatformDestination``: what the ad platforms (Google Ads, Meta) are, declared once.

An ad platform takes two kinds of object: events (Google's click conversions, Meta's Conversions API
events), only ever appended, and audiences (Customer Match lists, Custom Audiences), kept in sync with
a model by ``upsert`` and ``mirror``. People are named by the SHA-256 hashes of their personal values
(``pii``), never in clear; so a sync's identity, which the state keeps as it is, must not be a
personal field. An audience member is removed by the hashes it was added with, which are kept in
the record-id table (hashes only) under ``member_key``; ``plan`` has no table and shows where they
would come from (``KEPT_HASHES``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TypeVar

from dbt_activate.core.types import Batch, BatchResult, Mode, Operation, Record, RecordIdStore, SyncTarget
from dbt_activate.destinations.api import ApiDestination
from dbt_activate.destinations.pii import UnhashableValue
from dbt_activate.errors import ConfigError

T = TypeVar("T")

KEPT_HASHES = "<the hashes sent when the row was added, from the record-id table>"
Owner = tuple[str, str, "str | None"]  # (record key, member_key, the hashes to keep; None: forget them)


class AdPlatformDestination(ApiDestination):
    """An ad platform type: events appended, audiences kept by upsert and mirror, and the record-id
    store for the hashes its audience members were added with."""

    modes = frozenset({Mode.APPEND, Mode.UPSERT, Mode.MIRROR})
    uses_id_store = True

    @staticmethod
    def check_identity(target: SyncTarget, personal_fields: Collection[str], also: str = "") -> None:
        """Refuse a sync identified by a personal field: the state keeps the identity in clear.
        ``also`` ends the advice."""
        personal = sorted(set(target.identity) & set(personal_fields))
        if personal:
            raise ConfigError(f"the identity {', '.join(personal)} is personal data: the state would keep it in "
                              f"clear. Identify rows by a primary key such as a customer id{also}",
                              location=f"sync {target.sync_name}")


def hashed_each(batch: Batch, result: BatchResult, build: Callable[[Record], T]) -> tuple[list[T], list[str]]:
    """``build`` each record's event, with the record keys in the same order; a record with a personal
    value that cannot be normalised is rejected in ``result`` with the reason instead."""
    built: list[T] = []
    keys: list[str] = []
    for record in batch.records:
        try:
            built.append(build(record))
        except UnhashableValue as exc:
            result.rejected[record.key] = str(exc)
            continue
        keys.append(record.key)
    return built, keys


def member_key(target: SyncTarget, record: Record) -> str:
    """The record-id table key of the audience member a row is."""
    return f"{target.sync_name}|{record.key}"


def member_changes(target: SyncTarget, batch: Batch, result: BatchResult, store: RecordIdStore,
                   hash_member: Callable[[Record], tuple[T, str]]) -> Iterator[tuple[Owner, str | None, T | None]]:
    """What an upsert or delete batch changes in an audience, per row: (its owner, the kept hashes to
    remove, the member to add), each None when there is nothing of it.

    A deleted row removes the member by the hashes kept when it was added; with none kept (the store
    is written before a batch is acknowledged, so only a wiped record-id table loses them) nothing can
    name it any more, and the row is passed over. Any other row adds the member ``hash_member`` makes,
    with the text of its hashes to keep, after removing the old one when the kept hashes differ. A row
    whose personal value cannot be normalised is rejected in ``result``.
    """
    previous = store.get_many([member_key(target, r) for r in batch.records])
    for record in batch.records:
        store_key = member_key(target, record)
        old = previous.get(store_key)
        if batch.operation is Operation.DELETE:
            if old is not None:
                yield (record.key, store_key, None), old, None
            continue
        try:
            member, kept = hash_member(record)
        except UnhashableValue as exc:
            result.rejected[record.key] = str(exc)
            continue
        yield (record.key, store_key, kept), (old if old is not None and old != kept else None), member


def remember_members(store: RecordIdStore, owners: Iterable[Owner], rejected: Mapping[str, str], *,
                     keep: bool = True) -> None:
    """After the vendor took a request's members: keep the hashes of the rows added (with ``keep``),
    forget those of the rows removed; a rejected row changes nothing."""
    kept = {key: hashes for record, key, hashes in owners if hashes is not None and record not in rejected}
    forget = [key for record, key, hashes in owners if hashes is None and record not in rejected]
    if kept and keep:
        store.put_many(kept)
    if forget:
        store.delete_many(forget)
