"""How diff rows become records (changes.RowLayout): the values, the identity, NULLs left out."""

from __future__ import annotations

from dbt_activate.core.changes import ADD, CHANGE, REMOVE, RowLayout

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


def test_a_removed_row_is_its_saved_identity() -> None:
    row = (REMOVE, "k1", None, '{"email":"a@x.io"}', None, None, None, None, None)
    record, fingerprint, identity = RowLayout(FIELDS, ("email",), drop_nulls=True).record(row)
    assert record.values == {"email": "a@x.io"} and fingerprint is None and identity == '{"email":"a@x.io"}'
