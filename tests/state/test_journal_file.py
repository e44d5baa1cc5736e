"""The journal's files: rows reach the OS at every flush (a killed process keeps them) and the disk at close."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dbt_activate.state.journal import JournalFile, csv_text


def test_flush_hands_rows_to_the_os_and_close_syncs_them_to_disk(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    journal = JournalFile(tmp_path / "00000001.acks.csv")
    journal.append(("add", "42", "0f" * 16, '{"id":42}'))
    journal.flush()
    # Another process (the next run, after a kill) reads what was flushed, without any fsync.
    assert (tmp_path / "00000001.acks.csv").read_text() == 'add,42,' + "0f" * 16 + ',"{""id"":42}"\n'
    assert synced == []
    journal.close()
    assert len(synced) == 1


def test_identity_text_is_what_json_dumps_gives_for_every_kind_of_key() -> None:
    import datetime as dt
    import json

    from dbt_activate.core.changes import identity_json

    for identity in ({"email": "ada@example.com"}, {"id": 42, "region": "éu\u2028"}, {"b": None, "a": "x"},
                     {"id": True}, {"day": dt.date(2024, 1, 2)}, {"n": 1.5}, {"id": None}, {"id": -7},
                     {"e\u00e9": "quote \" and \\ and \n"}):
        expected = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
        assert identity_json(identity) == expected


def test_extend_writes_the_same_rows_as_appending_them_one_by_one(tmp_path: Path) -> None:
    rows = [("add", "1", "ab" * 16, '{"id":1}'), ("change", "a,b", None, '{"id":"a,b"}'), ("add", 'q"', "", "{}")]
    one_by_one, at_once = JournalFile(tmp_path / "one.csv"), JournalFile(tmp_path / "many.csv")
    for row in rows:
        one_by_one.append(row)
    at_once.extend(rows)
    one_by_one.close()
    at_once.close()
    assert at_once.rows == one_by_one.rows == 3
    assert (tmp_path / "many.csv").read_bytes() == (tmp_path / "one.csv").read_bytes()


_FIELD = st.one_of(st.none(), st.integers(), st.text(alphabet=st.sampled_from('ab,"\r\n {}:é'), max_size=6))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_FIELD, min_size=0, max_size=5), max_size=5))
def test_the_fast_csv_text_is_the_csv_modules_or_declines(rows: list[list[object]]) -> None:
    # csv_text writes the journal's usual rows without the csv module; whatever it writes is byte for
    # byte what csv.writer writes (what COPY ... csv reads back), and it declines anything else.
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows(rows)
    text = csv_text(rows)  # type: ignore[arg-type]
    assert text is None or text == expected.getvalue()


def test_acknowledgement_and_inflight_rows_take_the_fast_path(tmp_path: Path) -> None:
    rows = [("add", "ada@example.com", "0f" * 16, '{"email":"ada@example.com"}'),
            ("change", "42", "1e" * 16, '{"a":1,"b":"x"}'), ("add", "7", "2d" * 16, "{}")]
    assert csv_text(rows) == ('add,ada@example.com,' + "0f" * 16 + ',"{""email"":""ada@example.com""}"\n'
                              'change,42,' + "1e" * 16 + ',"{""a"":1,""b"":""x""}"\n'
                              'add,7,' + "2d" * 16 + ",{}\n")
    journal = JournalFile(tmp_path / "00000001.acks.csv")
    journal.extend(rows)
    journal.extend([("remove", "8", None, '{"id":8}'), ("add", "a,b", "3c" * 16, '{"id":"a,b"}')])
    journal.close()
    expected = io.StringIO()
    csv.writer(expected, lineterminator="\n").writerows([*rows, ("remove", "8", None, '{"id":8}'),
                                                         ("add", "a,b", "3c" * 16, '{"id":"a,b"}')])
    assert (tmp_path / "00000001.acks.csv").read_text() == expected.getvalue()
