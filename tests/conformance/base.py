"""``Harness``: how the conformance suite drives one destination type against its local server.

The suite (``test_conformance.py``) runs every case against every harness in
``harnesses.HARNESSES``. A harness knows four things about its destination: how to start its
server or emulator (``serve``), the ``destinations.yml`` entry that points at it (``config``), what
a record looks like (``values``), and how to read back what the server stored (``read_back``).
Everything else has a default; optional capabilities return ``None``/``False`` and the cases
that need them are skipped with the reason. A minimal harness::

    class AcmeHarness(Harness):
        name = "acme"
        destination = AcmeDestination
        identity = "external_id"
        fields = ("external_id", "name", "score")
        max_batch_size = 200                       # the vendor's documented maximum

        @contextlib.contextmanager
        def serve(self) -> Iterator[None]:
            with AcmeEmulator(token=self.secret) as self.emu:
                yield

        def config(self) -> dict[str, Any]:
            return {"type": "acme", "api_token": self.secret, "base_url": self.emu.base_url}

        def values(self, i: int) -> dict[str, Any]:
            return {"external_id": f"X-{i}", "name": f"Name {i}", "score": i * 1.5}

        def read_back(self) -> dict[str, dict[str, Any]]:
            return {r["external_id"].removeprefix("X-"): r for r in self.emu.records("Thing")}

then add ``AcmeHarness`` to ``HARNESSES`` in ``harnesses.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from dbt_activate.core.types import FieldSpec, MemoryIdStore, Mode, Operation, Record
from dbt_activate.destinations.base import Destination

SECRET = "conformance-secret-7c1e9a3f5b2d4e6f"
WRONG_SECRET = "wrong-secret-0a9b8c7d6e5f4a3b"


class Harness:
    """Subclass per destination type; one instance per test (``serve`` is entered once)."""

    name: ClassVar[str]  # the pytest id
    destination: ClassVar[type[Destination]]
    object: str = "people"  # the sync's object; may be set in serve() (e.g. a fresh schema's table)
    identity: ClassVar[str] = "id"  # the identity field (a destination field name)
    fields: ClassVar[tuple[str, ...]] = ("id", "name")  # mapped fields, identity included
    mutable_field: ClassVar[str] = "name"  # a text field the update cases change
    max_batch_size: ClassVar[int | None] = None  # the vendor's documented maximum, if any
    secret: ClassVar[str] = ""  # a credential the config carries ("" = the type has none)
    marks: ClassVar[tuple[pytest.MarkDecorator, ...]] = ()  # e.g. (pytest.mark.postgres,)
    emu: Any = None  # the vendor's emulator (dbt_activate.testing), when serve() starts one

    # -- required ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def serve(self) -> Iterator[None]:
        """Start the local server (emulator, receiver, database schema) for one test."""
        raise NotImplementedError
        yield  # pragma: no cover

    def config(self) -> dict[str, Any]:
        """The destinations.yml entry pointing at the running server (type included)."""
        raise NotImplementedError

    def values(self, i: int) -> dict[str, Any]:
        """Field values of record number ``i`` (its key is ``str(i)``), identity included."""
        raise NotImplementedError

    def read_back(self) -> dict[str, dict[str, Any]]:
        """What the server holds now: record key -> fields as stored (deleted records absent)."""
        raise NotImplementedError

    # -- defaults ------------------------------------------------------------------------------

    @property
    def operations(self) -> frozenset[Operation]:
        """Operations the destination supports; by default what its ``modes`` imply."""
        modes = self.destination.modes
        ops = {Operation.DELETE, Operation.CLEAR}
        ops.update({Operation.UPSERT} if modes & {Mode.UPSERT, Mode.MIRROR} else set())
        ops.update({Operation(m.value) for m in modes & {Mode.UPDATE, Mode.CREATE, Mode.APPEND}})
        return frozenset(ops)

    def build(self, **overrides: Any) -> Destination:
        return self.destination(self.name, {**self.config(), **overrides})

    def field_specs(self) -> tuple[FieldSpec, ...]:
        """Mapped fields; give ``data_type``s where the destination creates tables from them."""
        return tuple(FieldSpec(f, f) for f in self.fields)

    def record(self, i: int, **changes: Any) -> Record:
        return Record(str(i), {**self.values(i), **changes})

    def identity_record(self, i: int) -> Record:
        """What DELETE and CLEAR carry: the identity fields only."""
        return Record(str(i), {self.identity: self.values(i)[self.identity]})

    def expected(self, record: Record) -> dict[str, Any]:
        """``record`` as ``read_back`` shows it once stored (the destination's formatting applied)."""
        return dict(record.values)

    def expected_cleared(self, record: Record) -> dict[str, Any]:
        """A cleared record as ``read_back`` shows it: the identity kept, every other field empty."""
        stored = self.expected(record)
        return {f: (stored.get(f) if f == self.identity else None) for f in self.fields}

    def read_appended(self) -> list[dict[str, Any]]:
        """Records sent by APPEND, as stored."""
        return list(self.read_back().values())

    # -- optional capabilities -----------------------------------------------------------------

    def bad_record(self, i: int) -> Record | None:
        """A record the destination (or its server) refuses, e.g. an invalid value."""
        return None

    def fail_next_write(self) -> bool:
        """Make the next write fail in a passing way (5xx, dropped connection); False if impossible."""
        return False

    def bad_credentials(self) -> dict[str, Any] | None:
        """Config overrides carrying ``WRONG_SECRET`` so writes are refused; None without credentials."""
        return None

    def echo_secret_next(self) -> bool:
        """Make the server's next error body quote ``secret`` (so redaction is tested); False if impossible."""
        return False

    def requests_seen(self) -> int | None:
        """Requests the server received so far (an emulator counts them); None when it cannot tell."""
        return None if self.emu is None else int(self.emu.counters.requests)

    def moved_identity(self, i: int) -> Any | None:
        """A new identity value for record ``i`` that ``read_back`` still files under ``str(i)``.

        None when the destination has no identity apart from the primary key, or cannot change
        one in place (its docs say what happens instead): the identity-change cases are skipped.
        """
        return None

    def stored_identities(self) -> list[Any]:
        """Every identity value the server holds, one per record (duplicates kept)."""
        return [r.get(self.identity) for r in self.read_back().values()]


class HashedMembersHarness(Harness):
    """People kept by the vendor only as hashes (Google Ads Customer Match, Meta Custom Audiences).

    Removals name members by the hashes kept in the record-id store, which the harness shares between
    the destinations it builds, as the runner does between runs; ``keys`` maps the SHA-256 of each
    email ``values`` writes (``p<i>@example.com``) back to its record key, for ``read_back``.
    """

    identity = "id"
    mutable_field = "first_name"
    secret = SECRET

    @property
    def operations(self) -> frozenset[Operation]:
        return frozenset({Operation.UPSERT, Operation.DELETE})

    def start_store(self) -> None:
        """A fresh record-id store and hash table: called by ``serve`` before the emulator starts."""
        self.store = MemoryIdStore()
        self.keys = {hashlib.sha256(f"p{i}@example.com".encode()).hexdigest(): str(i) for i in range(2200)}

    def build(self, **overrides: Any) -> Destination:
        destination = super().build(**overrides)
        destination.id_store = self.store
        return destination
