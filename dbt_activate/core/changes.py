"""Pure rules that turn a diff row into what is sent: the operation per mode, the record, the reason.

The diff yields ``add``, ``change`` and ``remove`` rows, plus ``null_key`` and ``duplicate_key`` rows
that are rejected with their reason. The modes are implemented here, once, for every destination.

Identity changes: a ``change`` row whose identity (its ``match`` value) is not the one the snapshot
saved as sent becomes a record with ``previous`` set to that saved identity, so the destination
updates the record it wrote before instead of creating one under the new value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from dbt_activate.core.types import Mode, Operation, Record

ADD, CHANGE, REMOVE = "add", "change", "remove"
NULL_KEY, DUPLICATE_KEY = "null_key", "duplicate_key"
NULL_KEY_LABEL = "<null>"


def operation_for(mode: Mode, op: str, on_delete: str) -> Operation | None:
    """The destination operation for one diff row, or None when the mode ignores it."""
    if op == REMOVE:
        return {"delete": Operation.DELETE, "clear": Operation.CLEAR}.get(
            "delete" if mode is Mode.MIRROR else on_delete)
    if op not in (ADD, CHANGE):
        return None
    if mode is Mode.CREATE:
        return Operation.CREATE if op == ADD else None
    return {
        Mode.UPSERT: Operation.UPSERT,
        Mode.MIRROR: Operation.UPSERT,
        Mode.UPDATE: Operation.UPDATE,
        Mode.APPEND: Operation.APPEND,
    }[mode]


def rejection_reason(op: str, key_names: Sequence[str], duplicates: int | None) -> str | None:
    """Why a null or duplicated key's row is rejected, naming the key as the activate block does."""
    names = ", ".join(key_names)
    if op == NULL_KEY:
        return f"primary key ({names}) is null"
    if op == DUPLICATE_KEY:
        return f"duplicate primary key ({names}): {duplicates or 'several'} rows share this value"
    return None


_PLAIN = frozenset({str, int, type(None)})
_new, _set = object.__new__, object.__setattr__


def _record(key: str, values: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> Record:
    """``Record(key, values, previous)``, without the frozen dataclass's ``__init__`` (a Python frame
    setting each field through ``object.__setattr__``): a fifth of routing a row, once per row sent.
    The same object: equality, hash and repr come from the dataclass (tests/core/test_changes.py)."""
    record = _new(Record)
    _set(record, "__dict__", {"key": key, "values": values, "previous": previous})
    return record


_quote = json.encoder.encode_basestring_ascii  # what json.dumps uses


def _plain(value: str | int | None) -> str:
    if value is None:
        return "null"
    return _quote(value) if isinstance(value, str) else int.__repr__(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def identity_json(identity: Mapping[str, Any]) -> str:
    """The identity fields as they were sent, kept in the snapshot to delete or clear the record later."""
    if all(type(v) in _PLAIN for v in identity.values()):
        # The common case (text and integer keys), written directly: json.dumps was a tenth of a
        # first sync's CPU. The text is the same json.dumps(sort_keys=True, separators=(",", ":")) gives.
        return "{" + ",".join(f"{_quote(k)}:{_plain(v)}" for k, v in sorted(identity.items())) + "}"
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in identity.items()}
    return json.dumps(clean, default=_json_default, sort_keys=True, separators=(",", ":"))


def previous_identity(saved: str | None, sent: str, current: Mapping[str, Any]) -> dict[str, Any] | None:
    """The identity a changed row was last sent with, when it is not the one it is sent with now.

    ``saved`` is the snapshot's identity json, ``sent`` the new one (both from ``identity_json``),
    ``current`` the new identity fields. None when nothing was saved, when it is the same identity
    (also when only its json spelling differs), when the old one had no value to find a record by,
    or when the new one lacks a value (the destination rejects an empty identity as before).
    """
    if not saved or saved == sent or any(v is None for v in current.values()):
        return None
    try:
        previous = json.loads(saved)
    except ValueError:
        return None
    if not isinstance(previous, dict) or all(v is None for v in previous.values()):
        return None
    if json.loads(sent) == previous:
        return None
    return previous


@dataclass(frozen=True)
class RowLayout:
    """Where things are in a diff row: op, key, fingerprint, identity json, duplicates, then fields."""

    fields: tuple[str, ...]  # destination field names, in the order of the selected columns
    identity: tuple[str, ...]
    # `nulls: keep` on a destination where an absent field keeps its value (Nulls.OMIT): NULL fields
    # other than the identity are left out of the record.
    drop_nulls: bool = False
    # The identity is a `match` apart from the primary key, so it can change while the key stays:
    # a changed row then carries the identity last sent as ``Record.previous``.
    follows_identity: bool = False
    # Fields whose NULL is always passed on, even where NULLs are left out: references, whose NULL
    # clears the link (links.py).
    keep_nulls: frozenset[str] = frozenset()
    # '{"email":' for a single identity field: the start of its identity json, written once.
    _identity_prefix: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        if len(self.identity) == 1:
            object.__setattr__(self, "_identity_prefix", "{" + _quote(self.identity[0]) + ":")

    def record(self, row: Sequence[Any]) -> tuple[Record, str | None, str]:
        """(record, fingerprint, identity json) for an add/change/remove row."""
        op, key, fingerprint, saved_identity = row[0], row[1], row[2], row[3]
        if op == REMOVE:
            values: dict[str, Any] = json.loads(saved_identity) if saved_identity else {}
            return _record(str(key), values), None, saved_identity or "{}"
        values = dict(zip(self.fields, row[5:], strict=True))
        if self._identity_prefix:
            only: Any = values.get(self.identity[0])
            kind = type(only)
            identity = (self._identity_prefix + _quote(only) + "}" if kind is str
                        else self._identity_prefix + _plain(only) + "}" if kind in _PLAIN
                        else identity_json({self.identity[0]: only}))
        else:
            identity = identity_json({f: values.get(f) for f in self.identity})
        previous = None
        if op == CHANGE and self.follows_identity and saved_identity != identity:
            previous = previous_identity(saved_identity, identity, {f: values.get(f) for f in self.identity})
        if self.drop_nulls:
            values = {f: v for f, v in values.items()
                      if v is not None or f in self.identity or f in self.keep_nulls}
        return _record(str(key), values, previous), fingerprint, identity
