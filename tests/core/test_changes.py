"""How diff rows become records (changes.RowLayout): the values, the identity, NULLs left out."""

from __future__ import annotations

import dataclasses

import pytest

from dbt_activate.core.changes import ADD, CHANGE, REMOVE, RowLayout, identity_json, previous_identity
from dbt_activate.core.types import Record

FIELDS = ("id", "email", "name", "score")


def _row(op: str, *values: object) -> tuple[object, ...]:
    return (op, "k1", "FP", None, None, *values)


def test_a_record_carries_every_field_and_its_identity() -> None:
    record, fingerprint, identity = RowLayout(FIELDS, ("email",)).record(_row(ADD, 1, "a@x.io", None, 2))
    assert record.values == {"id": 1, "email": "a@x.io", "name": None, "score": 2}
    assert (record.key, fingerprint, identity) == ("k1", "FP", '{"email":"a@x.io"}')


def test_nulls_are_left_out_but_never_the_identity() -> None:
    layout = RowLayout(FIELDS, ("email",), drop_nulls=True)
    record, _, identity = layout.record(_row(CHANGE, 1, None, None, 0))
    assert record.values == {"id": 1, "email": None, "score": 0}  # 0 and False are values, not NULLs
    assert identity == '{"email":null}'


def test_a_null_reference_is_kept_where_nulls_are_left_out_so_the_link_is_cleared() -> None:
    layout = RowLayout(FIELDS, ("email",), drop_nulls=True, keep_nulls=frozenset({"score"}))
    record, _, _ = layout.record(_row(CHANGE, 1, "a@x.io", None, None))
    assert record.values == {"id": 1, "email": "a@x.io", "score": None}


def test_a_removed_row_is_its_saved_identity() -> None:
    row = (REMOVE, "k1", None, '{"email":"a@x.io"}', None, None, None, None, None)
    record, fingerprint, identity = RowLayout(FIELDS, ("email",), drop_nulls=True).record(row)
    assert record.values == {"email": "a@x.io"} and fingerprint is None and identity == '{"email":"a@x.io"}'


# -- identity changes: Record.previous --------------------------------------------------------------

def _changed(saved: str | None, *values: object, op: str = CHANGE) -> tuple[object, ...]:
    return (op, "k1", "FP", saved, None, *values)


@pytest.mark.parametrize(("row", "previous"), [
    # A new email under the same primary key: the one last sent comes along.
    (_changed('{"email":"old@x.io"}', 1, "new@x.io", "Ada", 2), {"email": "old@x.io"}),
    # The same identity: a plain change.
    (_changed('{"email":"a@x.io"}', 1, "a@x.io", "Ada", 2), None),
    # The same identity in another json spelling (spacing): still the same.
    (_changed('{"email": "a@x.io"}', 1, "a@x.io", "Ada", 2), None),
    # Nothing saved (a snapshot row from before identities were kept).
    (_changed(None, 1, "new@x.io", "Ada", 2), None),
    (_changed("", 1, "new@x.io", "Ada", 2), None),
    # The old identity had no value: there is no record to find by it.
    (_changed('{"email":null}', 1, "new@x.io", "Ada", 2), None),
    # The new identity has no value: the destination rejects the row as before.
    (_changed('{"email":"old@x.io"}', 1, None, "Ada", 2), None),
    # An added row never has one, whatever the snapshot says.
    (_changed('{"email":"old@x.io"}', 1, "new@x.io", "Ada", 2, op=ADD), None),
    # Unreadable saved text is no identity.
    (_changed("{not json", 1, "new@x.io", "Ada", 2), None),
])
def test_a_changed_identity_carries_the_one_last_sent(row: tuple[object, ...], previous: object) -> None:
    record, _, identity = RowLayout(FIELDS, ("email",), follows_identity=True).record(row)
    assert record.previous == previous
    assert identity == identity_json({"email": record.values.get("email")})  # what the snapshot saves


def test_an_identity_that_is_the_primary_key_is_never_followed() -> None:
    # Without a match apart from the key, a different spelling of the saved key is no move.
    record, _, _ = RowLayout(FIELDS, ("id",)).record(_changed('{"id":"1"}', 1, "a@x.io", "Ada", 2))
    assert record.previous is None


def test_a_composite_identity_changes_when_one_field_does() -> None:
    layout = RowLayout(FIELDS, ("email", "name"), follows_identity=True, drop_nulls=True)
    record, _, identity = layout.record(_changed('{"email":"a@x.io","name":"Ada"}', 1, "a@x.io", "Eve", None))
    assert record.previous == {"email": "a@x.io", "name": "Ada"}
    assert record.values == {"id": 1, "email": "a@x.io", "name": "Eve"}
    assert identity == '{"email":"a@x.io","name":"Eve"}'


@pytest.mark.parametrize(("saved", "sent", "current", "expected"), [
    ('{"email":"a@x.io"}', '{"email":"b@x.io"}', {"email": "b@x.io"}, {"email": "a@x.io"}),
    ('{"id":1}', '{"id":1}', {"id": 1}, None),
    ('{"id":1}', '{"id":1.0}', {"id": 1.0}, None),  # equal values in another spelling
    ('["a@x.io"]', '{"email":"b@x.io"}', {"email": "b@x.io"}, None),  # not an identity object
])
def test_previous_identity(saved: str, sent: str, current: dict[str, object], expected: object) -> None:
    assert previous_identity(saved, sent, current) == expected


def test_the_records_a_layout_builds_are_records_like_any_other() -> None:
    # RowLayout builds a Record without its dataclass __init__ (for speed): it must be the same object.
    layout = RowLayout(FIELDS, ("email",), follows_identity=True)
    row = (CHANGE, "k1", "FP", '{"email":"old@x.io"}', None, 1, "a@x.io", "Ada", 2)
    record, _, _ = layout.record(row)
    made = Record("k1", {"id": 1, "email": "a@x.io", "name": "Ada", "score": 2}, {"email": "old@x.io"})
    assert record == made and repr(record) == repr(made) and type(record) is Record
    assert [f.name for f in dataclasses.fields(Record)] == ["key", "values", "previous"]  # every field set
    assert layout.record(_row(ADD, 1, "a@x.io", None, 2))[0].previous is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.key = "k2"  # type: ignore[misc]
